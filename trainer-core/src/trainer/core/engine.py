"""The training flow, top to bottom: load -> prepare data -> build trainer -> train -> save.

``TrainerEngine(status_writer).run_job(config)`` is the whole of it. The loop,
optimiser, scheduler, gradient accumulation, mixed precision, checkpoints and
distribution are transformers' ``Trainer``; this module only turns the typed
config into plain arguments for the pieces it builds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.config import TrainerConfig
from trainer.core.arguments import (
    choose_loss,
    distributed_arguments,
    training_arguments,
)
from trainer.core.checkpoints import checkpoint_dirs, resume_point, run_settings
from trainer.core.data_stage import (
    check_stops_across,
    final_eval_items,
    load_rows,
    resolve_sources,
    tokenize,
    union_stops,
)
from trainer.core.disk import check_space, record_failure
from trainer.core.interrupt import RunInterrupted
from trainer.core.output_dir import claim_output_dir
from trainer.core.paths import model_source, resolve
from trainer.core.run_record import output_size, run_info, write_run_report
from trainer.core.saving import gathered_state_dict, save_dtype, save_final_model, weights_spread
from trainer.errors import TrainerError
from trainer.models.cpu_attention import use_cpu_attention
from trainer.monitoring.hub import StatusHub
from trainer.monitoring.sinks import RunContext
from trainer.monitoring.status import TrainingStatusWriter

log = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"


@dataclass
class RunResult:
    """What a run did."""

    status: str
    """``completed``, ``dry_run`` or ``failed``."""
    output_dir: Path
    status_file: Path | None = None
    steps: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    """Final training metrics: ``train_loss``, ``first_loss``, ``final_loss``, runtime, ..."""
    data_report: Any = None
    """The data pipeline's report (rows read, dropped, tokens, ...)."""
    model_dir: Path | None = None
    """Where the final model is (the output directory), for completed runs."""
    output_bytes: int | None = None
    """The size of the output directory once the run completed."""
    main_process: bool = True
    """False on the other processes of a run launched on several (torchrun, accelerate
    launch): they write nothing, and the main process reports the run."""


class TrainerEngine:
    """Runs training jobs.

    :param status_writer: a :class:`TrainingStatusWriter` to report to instead of
        the one the built-in status-file sink would create on ``system.status_file``.
    :param on_message: receives one-line progress messages meant for the user
        (the CLI prints them); by default they go to the ``trainer`` logger.
    :param on_report: receives the data report once the data is prepared, before
        training (the CLI prints it); by default its text goes to ``on_message``.
    """

    def __init__(
        self,
        status_writer: TrainingStatusWriter | None = None,
        on_message: Callable[[str], None] | None = None,
        on_report: Callable[[Any], None] | None = None,
    ) -> None:
        self.status_writer = status_writer
        self.on_message = on_message or log.info
        self.on_report = on_report or (lambda report: self.on_message(report.format()))
        if not _is_main_process():  # with several processes, only the main one speaks
            self.on_message = _say_nothing
            self.on_report = _say_nothing

    def run_job(
        self,
        config: TrainerConfig,
        overwrite: bool = False,
        resume: str | None = None,
        resume_anyway: bool = False,
    ) -> RunResult:
        """Train according to ``config``; with ``config.debug.dry_run``, stop before training.

        :param overwrite: allow a non-empty output directory (its contents are replaced).
        :param resume: ``"latest"`` to continue from the newest checkpoint in the output
            directory, or the path of a checkpoint directory: model, optimiser,
            scheduler, RNG state and position in the data are restored.
        :param resume_anyway: resume even though settings that change the run (batch, schedule,
            data, model, seed) differ from the checkpoint's; they are refused otherwise.
        :raises TrainerError: bad input, with a message naming the fix; the status
            file then says ``failed``.
        :raises RunInterrupted: SIGINT or SIGTERM stopped training after saving a
            checkpoint; the status file says ``interrupted``.
        """
        if overwrite and resume:
            raise TrainerError("--overwrite and --resume contradict each other: pass one of them")
        config.validate()
        base_dir = Path(config.system.base_dir)
        output_dir = resolve(base_dir, config.output.output_dir)
        status_file = resolve(output_dir, config.system.status_file)
        dry_run = config.debug.dry_run
        # With several processes, the main one alone locks, checks and clears the output directory
        # and reports; the others must not find its status file there and refuse to start. The lock
        # (one run per directory) comes before anything there is cleared or read; dry runs take none.
        main = _is_main_process()
        lock = None
        if not dry_run and main:
            lock = claim_output_dir(output_dir, status_file, overwrite, resume, self.on_message)

        # A --resume refused before training (a damaged checkpoint, changed settings) must not
        # replace the record of the run it meant to continue: that record is put back.
        previous = status_file.read_bytes() if resume and lock is not None and status_file.is_file() else None
        restore: bytes | None = None
        self.training_began = False
        hub = StatusHub([] if dry_run or not main else self._sinks(output_dir, status_file, config))
        hub.emit("start", status="starting")
        self.space_needed: dict[str, Any] | None = None  # the disk space check's estimate, once made
        try:
            result = self._run(config, base_dir, output_dir, hub, resume, resume_anyway)
        except KeyboardInterrupt:
            hub.emit("failure", status="interrupted", error="interrupted by the user")
            raise
        except RunInterrupted:
            raise
        except Exception as exc:  # a full disk's partial files go first, then its status (core/disk.py)
            failure = record_failure(exc, hub, output_dir, status_file, self.status_writer, self.space_needed)
            if previous is not None and not self.training_began and isinstance(exc, TrainerError):
                restore = previous
            if failure is not exc:
                raise failure from exc
            raise
        finally:
            hub.close()
            if restore is not None:
                with contextlib.suppress(OSError):
                    status_file.write_bytes(restore)
            if lock is not None:
                lock.release()
            _leave_process_group()
        result.status_file = None if dry_run else status_file
        result.main_process = main
        return result

    # -- the flow ----------------------------------------------------------------

    def _run(
        self,
        config: TrainerConfig,
        base_dir: Path,
        output_dir: Path,
        hub: StatusHub,
        resume: str | None,
        resume_anyway: bool = False,
    ) -> RunResult:
        from trainer.data.pipeline import build_collator
        from trainer.models.loading import load_tokenizer, resolve_precision

        # 1. Load: tokenizer and profile first; the model only once the data is known to be good.
        model_path = config.model.model_path
        demo = model_path is None
        hyper = config.hyperparams
        data = config.data
        changes: dict[str, Any] = {}
        # Each source of the data has its profile; the first one's is the run's (for the evaluation
        # after training, and the default of generate and eval). Generation stops at any source's stops.
        # A misspelled profile or a missing extra is said before anything else is loaded.
        sources = resolve_sources(config, base_dir)
        profile = sources[0].profile
        stops = union_stops(sources)
        if config.model.lora.enabled:
            from trainer.models.loading import require_peft

            require_peft()
        if model_path is None:
            from trainer.models.demo import load_demo_tokenizer
            from trainer.models.demo_model import DEMO_MODEL_NAME, demo_hyperparams

            hyper, changes = demo_hyperparams(config.hyperparams)
            changed = ", ".join(f"{name}={value}" for name, value in changes.items())
            self.on_message(
                f"Using the embedded demo model: {DEMO_MODEL_NAME}"
                + (f"; demo settings: {changed}" if changed else "")
            )
            tokenizer = load_demo_tokenizer()
        else:
            model_path = model_source(base_dir, model_path)
            tokenizer = load_tokenizer(model_path, config.model.trust_remote_code)

        # 2. Prepare data. The training arguments start the process group of a run on several
        # processes (and must exist before a DeepSpeed ZeRO-3 model is built). The main process
        # of each node tokenizes first; the others then read its work from datasets' cache. The
        # rows held back depend only on the data and the seed, so every process holds back the same.
        rows = load_rows(config, sources, hyper.seed, self.on_message)
        check_stops_across(sources, rows)
        precision = resolve_precision(config.model.precision, config.system.device)
        args = training_arguments(
            checkpoints_dir=output_dir / CHECKPOINTS_DIR,
            hyper=hyper,
            precision=precision,
            device=config.system.device,
            evaluate=rows.has_validation,
            save_steps=config.output.save_steps,
            save_total_limit=config.output.save_total_limit,
            report_to=config.output.report_to,
            group_by_length=data.group_by_length and not data.packing,
            **distributed_arguments(config.system, base_dir),
        )
        with args.main_process_first(desc="tokenizing"):
            prepared = tokenize(rows, config, tokenizer=tokenizer, sources=sources, hyper=hyper)
        train_set, eval_set, report = prepared.train_set, prepared.eval_set, prepared.report
        final_items = final_eval_items(config, base_dir, sources[0], stops)
        if demo and "max_steps" in changes:
            from trainer.models.demo_model import apply_demo_budget

            hyper, note = apply_demo_budget(hyper, args, report.tokens, len(train_set))
            if note:
                self.on_message(note)
        # Before the model is loaded: a damaged checkpoint or changed settings are refused early.
        settings = run_settings(config, hyper)
        checkpoint = resume_point(
            resume, output_dir / CHECKPOINTS_DIR, settings, resume_anyway, self.on_message
        )
        self.on_message(_plan(config, sources, model_path, hyper, len(train_set), precision, output_dir))
        self.on_report(report)  # before the first step: it tells whether the data is right
        if config.debug.dry_run:
            return RunResult(status="dry_run", output_dir=output_dir, data_report=report)

        # 3. Build the model and the trainer.
        if model_path is None:
            from trainer.models.demo_model import build_demo_model

            model = build_demo_model(
                tokenizer, seed=hyper.seed, max_position_embeddings=config.model.max_context_length
            )
        else:
            from trainer.models.loading import load_model

            model = load_model(model_path, config.model.trust_remote_code, config.model.attn_implementation)
        loss_impl = choose_loss(model, config.model.loss_impl, config.system.device)
        attention = use_cpu_attention(model, config.model.attn_implementation, precision)
        if config.model.lora.enabled:
            from trainer.models.loading import apply_lora

            lora = config.model.lora
            model = apply_lora(model, lora.r, lora.alpha, lora.dropout, list(lora.target_modules))
            if hyper.gradient_checkpointing:
                model.enable_input_require_grads()  # checkpointed layers need inputs that carry gradients
        trainer = _build_trainer(
            model=model,
            tokenizer=tokenizer,
            train_set=train_set,
            eval_set=eval_set,
            collator=build_collator(
                tokenizer, packing=data.packing, attn_implementation=config.model.attn_implementation
            ),
            args=args,
            callbacks=[
                _status_callback(hub, report, _packed_length(config)),
                *_plugin_callbacks(hub),
            ],
            run_settings=settings,
        )
        if args.fsdp and not trainer.is_fsdp_enabled:
            self.on_message(
                "warning: system.fsdp is ignored: accelerate shards a model only across several "
                "processes on GPUs (or other accelerators), so this run is not sharded"
            )
        previews = None
        if any(part is not None for part in rows.previews) and weights_spread(trainer):
            # Previews run on the main process alone, which cannot gather weights on its own.
            self.on_message("Previews are off for this run: FSDP or DeepSpeed ZeRO-3 spreads the weights")
        elif any(part is not None for part in rows.previews):
            from trainer.monitoring.callback import PreviewCallback
            from trainer.monitoring.previews import preview_runner

            runner = preview_runner(sources, rows.previews, tokenizer, stops, config.inference)
            if runner is not None:
                previews = PreviewCallback(runner, hub, config.inference.eval_steps)
        if previews is not None:
            previews.trainer = trainer
            trainer.add_callback(previews)
        _send_tensorboard_to(trainer, output_dir / "tensorboard")
        self.space_needed = check_space(trainer, output_dir, checkpoint, config, model_path, self.on_message)

        # 4. Train.
        from trainer.core.callbacks import StopOnRequestCallback
        from trainer.core.interrupt import StopRequest, stop_on_signals

        stop = StopRequest()
        if not config.output.keep_checkpoints:
            from trainer.core.callbacks import NoFinalCheckpointCallback

            trainer.add_callback(NoFinalCheckpointCallback())
        trainer.add_callback(StopOnRequestCallback(stop))
        # The signal handlers stay until the final model is saved: a signal then is noted, not fatal,
        # and one after the last step (torchrun stopping the others) still ends a completed run.
        with stop_on_signals(stop):
            self.training_began = True
            output = trainer.train(resume_from_checkpoint=checkpoint)
            if stop.signum is not None and output.global_step >= trainer.state.max_steps:
                self.on_message(f"{stop.name} arrived after the last step: the run completes first")
            elif stop.signum is not None:
                saved = (checkpoint_dirs(output_dir / CHECKPOINTS_DIR) or [output_dir / CHECKPOINTS_DIR])[0]
                hub.emit("end", status="interrupted", step=output.global_step, error=None)
                if trainer.is_world_process_zero():
                    write_run_report(output_dir, self.on_message)  # the curves so far
                raise RunInterrupted(
                    f"training stopped by {stop.name} at step {output.global_step}; checkpoint saved in "
                    f"{saved}. Continue with the same command and --resume",
                    stop.signum,
                )
            first_loss = hub.state.get("first_loss")
            final_loss = _last_logged_loss(trainer)
            metrics = {
                **output.metrics,
                "first_loss": first_loss,
                "final_loss": final_loss,
                "resumed_from_step": hub.state.get("resumed_from_step"),
                "elapsed_seconds": hub.state.get("elapsed_seconds"),
                "tokens_per_second": hub.state.get("tokens_per_second"),
                "precision": precision,
                "loss_impl": loss_impl,
                "attention": attention,
                "save_dtype": save_dtype(config, model_path),
                "device": str(trainer.args.device),
                "preview_seconds": round(previews.seconds, 2) if previews else 0.0,
                "preview_share": round(previews.seconds / output.metrics["train_runtime"], 4)
                if previews and output.metrics.get("train_runtime")
                else None,
            }

            # 5. Save: model, tokenizer, generation settings and the resolved config. FSDP and
            #    DeepSpeed spread the weights over the processes: all gather them, the main one writes.
            state_dict = gathered_state_dict(trainer)
            if trainer.is_world_process_zero():
                save_final_model(
                    trainer.model,
                    tokenizer,
                    output_dir,
                    state_dict=state_dict,
                    stop_sequences=stops,
                    max_new_tokens=config.inference.max_new_tokens,
                    temperature=config.inference.temperature,
                    merge_lora=config.model.lora.enabled and config.model.lora.merge_on_export,
                    run_info=run_info(config, hyper, demo, report, metrics),
                    dtype=metrics["save_dtype"],
                )
            if final_items is not None:
                self._final_eval(trainer, tokenizer, profile, final_items, output_dir, hub, config, stops)
            kept: dict[str, Any] = {}
            if not config.output.keep_checkpoints:
                if hub.state.get("last_checkpoint"):
                    kept["last_checkpoint"] = None  # deleted below: the status must not point at it
                if trainer.is_world_process_zero():
                    shutil.rmtree(output_dir / CHECKPOINTS_DIR, ignore_errors=True)
            hub.emit(
                "end",
                status="completed",
                step=output.global_step,
                loss=final_loss,
                train_loss=output.metrics.get("train_loss"),
                **kept,
            )
            if trainer.is_world_process_zero():
                write_run_report(output_dir, self.on_message)
            return RunResult(
                status="completed",
                output_dir=output_dir,
                steps=output.global_step,
                metrics=metrics,
                data_report=report,
                model_dir=output_dir,
                output_bytes=output_size(output_dir),
            )

    def _final_eval(
        self,
        trainer: Any,
        tokenizer: Any,
        profile: Any,
        items: list[Any],
        output_dir: Path,
        hub: StatusHub,
        config: TrainerConfig,
        stops: list[str],
    ) -> None:
        """Judge the trained model on ``inference.eval_dataset`` (the main process only)."""
        from trainer.evaluation.final import evaluate_after_training, status_fields

        if not trainer.is_world_process_zero():
            return
        if weights_spread(trainer):
            self.on_message(
                "The evaluation after training is off: FSDP or DeepSpeed ZeRO-3 spreads the weights"
            )
            return
        inference = config.inference
        self.on_message(f"Evaluating the trained model on {len(items):,} rows of {inference.eval_dataset}")
        summary = evaluate_after_training(
            trainer.model,
            tokenizer,
            profile,
            items,
            output_dir,
            source=str(inference.eval_dataset),
            batch_size=inference.eval_batch_size,
            stop_sequences=stops,
            max_new_tokens=inference.max_new_tokens,
            temperature=inference.temperature,
            seed=config.hyperparams.seed,
        )
        hub.emit("final_eval", final_eval=status_fields(summary))
        from trainer.evaluation.display import summary_lines

        for line in summary_lines(summary):
            self.on_message(f"  {line}")

    def _sinks(self, output_dir: Path, status_file: Path, config: TrainerConfig) -> list[tuple[str, Any]]:
        from trainer.default_plugins.status_file import status_file_sink
        from trainer.plugins import get_plugins

        run = RunContext(output_dir=output_dir, status_file=status_file, config=config.to_dict())
        sinks: list[tuple[str, Any]] = []
        for registration in get_plugins().collect("register_status_sinks"):
            if self.status_writer is not None and registration.obj is status_file_sink:
                sinks.append((registration.plugin.name, self.status_writer))
                continue
            sink = registration.obj(run)
            if sink is not None:
                sinks.append((registration.plugin.name, sink))
        return sinks


# -- pieces the flow calls --------------------------------------------------------


def _build_trainer(
    *,
    model: Any,
    tokenizer: Any,
    train_set: Any,
    eval_set: Any,
    collator: Any,
    args: Any,
    callbacks: list[Any],
    run_settings: dict[str, Any],
) -> Any:
    from transformers import PrinterCallback, ProgressCallback

    from trainer.core.checkpoint_trainer import CheckpointingTrainer

    trainer = CheckpointingTrainer(  # checkpoints whole or absent, each with the run's settings
        run_settings=run_settings,
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    # Progress goes to the status sinks (the console one among them), not transformers' printer.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def _status_callback(hub: StatusHub, report: Any, packed_length: int | None) -> Any:
    """The status callback, told the data's mean sequence length and labelled share (for MFU)."""
    from trainer.monitoring.callback import StatusCallback

    mean = report.tokens / report.examples if report.examples else 0.0
    share = report.trainable_tokens / report.tokens if report.tokens else 1.0
    return StatusCallback(hub, sequence_length=packed_length or mean, head_share=share)


def _packed_length(config: TrainerConfig) -> int | None:
    """The length of a packed sequence, or None without packing."""
    data = config.data
    return min(data.max_length, config.model.max_context_length) if data.packing else None


def _plugin_callbacks(hub: StatusHub) -> list[Any]:
    from trainer.monitoring.callback import guarded
    from trainer.plugins import get_plugins

    callbacks = []
    for registration in get_plugins().collect("register_callbacks"):
        factory = registration.obj
        try:
            callback = factory()
        except Exception as exc:  # a plugin's bug: leave its callback out, say so
            get_plugins().reject(registration, f"callback factory {factory!r} raised {exc!r}")
            log.warning("callback from plugin %s left out: %s", registration.plugin.label, exc)
            continue
        callbacks.append(guarded(callback, registration.plugin.name, hub))
    return callbacks


def _plan(
    config: TrainerConfig,
    sources: list[Any],
    model_path: str | None,
    hyper: Any,
    examples: int,
    precision: str,
    output_dir: Path,
) -> str:
    """One line saying what the run will do: profile, model, steps, examples a step, precision, output."""
    import math

    from trainer.config import ProfileConfig

    per_step = hyper.batch_size * hyper.gradient_accumulation_steps * int(os.environ.get("WORLD_SIZE", "1"))
    if hyper.max_steps is not None and hyper.max_steps > 0:
        steps = f"{hyper.max_steps:,} steps"
    else:
        total = math.ceil(examples / per_step) * math.ceil(hyper.num_epochs)
        steps = f"about {total:,} steps ({hyper.num_epochs:g} epochs)"
    if len(sources) > 1:
        profile = "s " + ", ".join(f"'{source.profile_name}' ({source.name})" for source in sources)
    else:
        name = config.profile.name
        default = name == ProfileConfig().name
        profile = f" '{name}'" + (" (the default; --profile picks another)" if default else "")
    model = model_path if model_path is not None else "the embedded demo model"
    return (
        f"Plan: profile{profile}, model {model}, {steps} of {per_step} examples "
        f"(from {examples:,}), precision {precision}, output {output_dir}"
    )


def _send_tensorboard_to(trainer: Any, directory: Path) -> None:
    """TensorBoard event files go to OUTPUT/tensorboard, not inside the checkpoints directory."""
    for callback in trainer.callback_handler.callbacks:
        if type(callback).__name__ == "TensorBoardCallback" and hasattr(callback, "logging_dir"):
            callback.logging_dir = str(directory)


def _is_main_process() -> bool:
    """True for a single process and for rank 0 of a run launched on several.

    Read from ``RANK``, which torchrun and accelerate launch set for every process, because
    this is needed before transformers starts the process group.
    """
    return os.environ.get("RANK", "0") == "0"


def _leave_process_group() -> None:
    """End this process's part in a run on several processes before it exits.

    A process group left for the interpreter to tear down at exit can abort the process
    (``terminate called without an active exception``) while its threads still run.
    """
    import sys

    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _say_nothing(message: Any) -> None:
    """``on_message`` for the processes other than the main one."""


def _last_logged_loss(trainer: Any) -> float | None:
    for entry in reversed(trainer.state.log_history):
        if "loss" in entry:
            return float(entry["loss"])
    return None

