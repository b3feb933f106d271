"""``trainer eval``: judge a model on a whole dataset, and compare it with another."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from trainer.cli.options import complete_paths, prompting_options, quiet_libraries
from trainer.errors import TrainerError


@click.command("eval", short_help="Judge a model on every row of a dataset.")
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="A run's output directory, or any Hugging Face model directory (a base model too).",
)
@click.option(
    "--dataset",
    required=True,
    shell_complete=complete_paths("file"),
    help="The rows to evaluate: JSONL, JSON, CSV, or a saved dataset.",
)
@prompting_options
@click.option(
    "-n", "--limit", type=click.IntRange(min=1), default=None, help="Evaluate the first N rows only."
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=16, show_default=True, help="Prompts per batch."
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Generations per row (needs --temperature > 0): reports pass@1, pass@K and majority-vote accuracy.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of sampling; each row draws its own."
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Per-row results (JSONL); default: MODEL/eval/<dataset name>.jsonl. The summary goes beside it "
    "as <name>.summary.json.",
)
@click.option(
    "--baseline",
    "baseline_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="A second model evaluated on the same rows with the same prompts; prints both, the paired "
    "counts and an exact McNemar p-value.",
)
@click.option(
    "--resume", is_flag=True, help="Continue an interrupted evaluation after the last rows written."
)
@click.option("--overwrite", is_flag=True, help="Replace the results of an earlier evaluation.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def eval_command(
    model_dir: str,
    dataset: str,
    profile: str | None,
    system_prompt: str | None,
    limit: int | None,
    batch_size: int,
    max_new_tokens: int | None,
    temperature: float | None,
    samples: int,
    seed: int,
    output: str | None,
    baseline_dir: str | None,
    resume: bool,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Generate for every row of --dataset and judge each answer with the profile.

    Prints the format rate, the accuracy with its 95% interval, generated tokens and
    speed; writes one JSON line per row. Rows the profile cannot render are counted
    and listed, not fatal.
    """
    from trainer.data.sources import DatasetError, iter_rows
    from trainer.evaluation.decode import DecodeSettings
    from trainer.evaluation.evaluator import EvalSettings
    from trainer.evaluation.items import eval_items
    from trainer.generation import SavedRun, generation_defaults

    if resume and overwrite:
        raise TrainerError("--resume continues the results file and --overwrite replaces it; choose one")
    saved = SavedRun.read(model_dir)
    if baseline_dir is not None:
        SavedRun.read(baseline_dir)  # a missing directory fails now, not after the first model
    run = generation_defaults(saved, profile, system_prompt, max_new_tokens, temperature)
    if samples > 1 and run.temperature <= 0:
        raise TrainerError(
            f"--samples {samples} draws several answers per row, which greedy decoding (temperature 0) "
            "makes identical; add --temperature 0.7 (or another value above 0)"
        )
    try:
        rows = list(iter_rows(dataset, limit=limit))
    except DatasetError as exc:
        raise TrainerError(str(exc)) from None
    items = eval_items(rows, run.profile, run.system_prompt, run.stop_sequences)
    if not items:
        raise TrainerError(f"dataset '{dataset}' has no rows; give a file with at least one row")
    if all(item.error is not None for item in items):
        raise TrainerError(
            f"profile '{run.profile.name}' cannot render any of the {len(items)} rows of '{dataset}' "
            f"(row {items[0].row}: {items[0].error}); choose the profile for this data with --profile"
        )
    settings = EvalSettings(
        batch_size=batch_size,
        samples=samples,
        decode=DecodeSettings(
            stop_sequences=tuple(run.stop_sequences),
            penalized_strings=tuple(run.profile.penalized_strings),
            max_new_tokens=run.max_new_tokens,
            temperature=run.temperature,
            seed=seed,
        ),
    )
    target = Path(output) if output else Path(model_dir) / "eval" / f"{_stem(dataset)}.jsonl"
    described = {
        "dataset": dataset,
        "limit": limit,
        "profile": run.profile.name,
        "system_prompt": run.system_prompt,
        **settings.to_dict(),
    }
    jobs = [(model_dir, target)]
    if baseline_dir is not None:
        jobs.append((baseline_dir, target.with_name(target.name.removesuffix(".jsonl") + ".baseline.jsonl")))
    for directory, path in jobs:
        _check_output(path, {"model": directory, **described}, resume, overwrite)

    quiet_libraries()
    results = [
        _evaluate(directory, path, items, run.profile, settings, {"model": directory, **described}, resume)
        for directory, path in jobs
    ]
    summaries = [summary for summary, _ in results]
    paired = None
    if len(results) > 1:
        from trainer.evaluation.compare import compare

        paired = compare(results[0][1], results[1][1])
    if as_json:
        data: dict[str, Any] = dict(summaries[0])
        if paired is not None:
            data = {"model": summaries[0], "baseline": summaries[1], "paired": paired}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    from trainer.evaluation.display import comparison_lines, summary_lines

    lines = (
        summary_lines(summaries[0])
        if paired is None
        else comparison_lines(summaries[0], summaries[1], paired)
    )
    for line in lines:
        click.echo(line)


def _read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _evaluate(
    directory: str,
    path: Path,
    items: list[Any],
    profile: Any,
    settings: Any,
    described: dict[str, Any],
    resume: bool,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Evaluate one model; its summary and its records, in row order."""
    from trainer.evaluation.evaluator import Evaluator, summarize
    from trainer.evaluation.results import settings_file, write_json
    from trainer.generation import SavedRun, load_model_for_generation

    summary_path = settings_file(path)
    earlier = _read_summary(summary_path) if resume else {}
    spent = float(earlier.get("seconds", 0.0)) if earlier.get("settings") == described else 0.0
    write_json(summary_path, {"settings": described, "state": "running", "seconds": spent})
    saved = SavedRun.read(directory)
    model, tokenizer = load_model_for_generation(
        directory, saved.setting("model", "trust_remote_code", False)
    )
    evaluator = Evaluator(model, tokenizer, profile, settings)
    reporter = _Progress(directory, len(items))
    try:
        with _stop_on_term():
            records, seconds = evaluator.run(items, path, resume=resume, progress=reporter)
    except KeyboardInterrupt as exc:
        from trainer.core.interrupt import RunInterrupted

        done = len(_read_records(path)) if path.is_file() else 0
        write_json(summary_path, {"settings": described, "state": "interrupted", "seconds": spent})
        raise RunInterrupted(
            f"eval of {directory} stopped after {done} of {len(items)} rows, kept in {path}. "
            "Continue with the same command and --resume",
            getattr(exc, "signum", signal.SIGINT),
        ) from None
    reporter.finish()
    summary = {
        "model": directory,
        "output": str(path),
        **summarize(records, spent + seconds, settings.samples),
    }
    write_json(summary_path, {"settings": described, "state": "completed", **summary})
    return summary, records


class _Progress:
    """Rows done, rows per second and time left: one rewritten line on a terminal, else a line per window."""

    def __init__(self, name: str, total: int) -> None:
        self.name = name
        self.total = total
        self.terminal = sys.stderr.isatty()
        self.started = time.perf_counter()

    def __call__(self, done: int, total: int, seconds: float) -> None:
        rate = done / max(time.perf_counter() - self.started, 1e-9)
        left = (total - done) / rate if rate > 0 else 0.0
        line = f"eval {self.name}: {done}/{total} rows  {rate:.2f} rows/s  eta {_duration(left)}"
        if self.terminal:
            width = 30
            filled = int(width * done / max(total, 1))
            click.echo(f"\r[{'#' * filled}{'.' * (width - filled)}] {line}", nl=False, err=True)
        else:
            click.echo(line, err=True)

    def finish(self) -> None:
        if self.terminal:
            click.echo("", err=True)


@contextmanager
def _stop_on_term() -> Iterator[None]:
    """SIGTERM (``kill``) stops the evaluation as Ctrl-C does: whole lines are kept for --resume."""

    def stop(signum: int, frame: Any) -> None:
        stopped = KeyboardInterrupt()
        stopped.signum = signum  # type: ignore[attr-defined]
        raise stopped

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_output(path: Path, described: dict[str, Any], resume: bool, overwrite: bool) -> None:
    from trainer.evaluation.results import settings_file

    if path.is_dir():
        raise TrainerError(f"--output '{path}' is a directory; give a file name such as {path}/eval.jsonl")
    if resume:
        earlier = _read_summary(settings_file(path)).get("settings")
        if path.is_file() and earlier is not None and earlier != described:
            changed = sorted(key for key in described if earlier.get(key) != described[key])
            raise TrainerError(
                f"{path} was written by an evaluation with other settings ({', '.join(changed)}); "
                "resume with the same options, or write to another --output"
            )
        return
    if path.is_file() and path.stat().st_size and not overwrite:
        raise TrainerError(
            f"{path} already holds evaluation results; add --resume to continue them or --overwrite "
            "to start again, or choose another --output"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainerError(f"cannot create {path.parent} ({exc.strerror}); choose another --output") from None


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _stem(dataset: str) -> str:
    name = Path(dataset.rstrip("/")).name
    for suffix in (".jsonl", ".json", ".csv", ".parquet"):
        name = name.removesuffix(suffix)
    return name or "dataset"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
