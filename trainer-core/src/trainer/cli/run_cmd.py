"""``trainer run``: fine-tune a model."""

from __future__ import annotations

import time
from typing import Any

import click

from trainer.cli.options import ALL_FLAGS, config_options, load_config, quiet_libraries, show_library_logs
from trainer.errors import TrainerError


@click.command(short_help="Fine-tune a model on a dataset through a profile.")
@config_options(ALL_FLAGS)
@click.option(
    "--dry-run", is_flag=True, help="Load and prepare everything, report on the data, do not train."
)
@click.option("--overwrite", is_flag=True, help="Replace the contents of a non-empty output directory.")
@click.option(
    "--resume",
    is_flag=False,
    flag_value="latest",
    default=None,
    metavar="[PATH]",
    help="Continue from the latest checkpoint in the output directory, or from the checkpoint at PATH.",
)
@click.option(
    "--resume-anyway",
    is_flag=True,
    help="With --resume, continue even if the batch, schedule, data, model or seed differ from the "
    "checkpoint's (refused otherwise).",
)
def run(dry_run: bool, overwrite: bool, resume: str | None, resume_anyway: bool, **options: Any) -> None:
    """Fine-tune a causal LM on a dataset rendered through a profile.

    With no --model, a tiny embedded Qwen3 model is trained (the offline demo);
    with no --dataset, a built-in sample dataset is used.

    SIGINT (Ctrl-C) or SIGTERM (cluster pre-emption) stops after the current
    step with a checkpoint saved and exits 130 or 143; the same command with
    --resume continues. A second signal stops at once. --resume checks the
    checkpoint is whole (passing over a damaged newest one) and that the
    settings that define the run are the checkpoint's.
    """
    from trainer.core import TrainerEngine

    if resume_anyway and not resume:
        raise TrainerError("--resume-anyway goes with --resume: add --resume, or leave --resume-anyway out")
    config, _ = load_config(options)
    if config.debug.verbose:
        show_library_logs()
    else:
        quiet_libraries()
    if dry_run:
        config.debug.dry_run = True
    started = time.perf_counter()
    engine = TrainerEngine(
        on_message=lambda line: click.echo(line, err=True),
        on_report=lambda report: click.echo(report.format()),  # stdout, before training starts
    )
    result = engine.run_job(config, overwrite=overwrite, resume=resume, resume_anyway=resume_anyway)
    elapsed = time.perf_counter() - started
    if not result.main_process:  # one of several processes: the main one reports
        return
    if result.status == "dry_run":
        click.echo(f"Dry run: nothing trained ({elapsed:.1f} s).")
        return
    metrics = result.metrics
    first, final = metrics.get("first_loss"), metrics.get("final_loss")
    loss = f"loss {first:.4f} -> {final:.4f}, " if first is not None and final is not None else ""
    resumed = metrics.get("resumed_from_step")
    if resumed:  # this process ran the steps after the checkpoint; the run is all of them
        total = metrics.get("elapsed_seconds")
        in_all = f", {total:.1f} s of training over every part of the run" if total is not None else ""
        done = (
            f"Trained steps {resumed + 1}-{result.steps} in {elapsed:.1f} s "
            f"(resumed from step {resumed}{in_all}; "
        )
    else:
        done = f"Trained {result.steps} steps in {elapsed:.1f} s ("
    speed = metrics.get("tokens_per_second")
    speed_text = f"{speed:,.0f} tokens/s, " if speed else ""
    click.echo(f"{done}{loss}{speed_text}precision {metrics.get('precision')}).")
    size = f" ({_gigabytes(result.output_bytes)} in all)" if result.output_bytes is not None else ""
    click.echo(f"Model saved to {result.output_dir}{size}; status in {result.status_file}")
    click.echo(f'Try it: trainer generate --model {result.output_dir} "<your prompt>"')


def _gigabytes(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"
