"""Disk space for a run: what its checkpoints and final model need, and what a full disk leaves behind.

Before the first step, :func:`check_space` estimates one checkpoint (weights, optimizer state,
tokenizer, RNG and scheduler state) and the final model (in its save dtype), works out how many
checkpoints are on disk at once (``output.save_total_limit``, one more while a new one is
written), and compares the most the run needs with the free space on the output filesystem:
short of that it warns; short of the final model and one checkpoint it refuses, unless
``output.disk_space_check`` is ``warn`` (or ``off``).

When a run fails for an error of the machine's, a full disk above all, :func:`record_failure`
removes the partial files (a half-written checkpoint, the final model's temporary folder), then
names the filesystem, what was being written and how much it needed, and writes ``failed`` with
that reason to the status file, even where the same full disk disabled the status-file sink.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainer.config import TrainerConfig
from trainer.core.checkpoints import checkpoint_dirs, checkpoint_step, verify_checkpoint
from trainer.core.saving import FINAL_STAGING_PREFIX, save_dtype
from trainer.errors import FileSystemError, OutOfSpaceError, TrainerError
from trainer.monitoring.hub import StatusHub
from trainer.monitoring.status import TrainingStatusWriter
from trainer.os_errors import activity, describe, filesystem_of, os_failure

log = logging.getLogger(__name__)

SMALL_FILES = 256 * 1024
"""Bytes allowed for the small files of a checkpoint or a final model: RNG and scheduler state,
``trainer_state.json``, ``training_args.bin``, the model and generation configs, ``trainer_run.json``."""

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
"""Bytes of one weight in each save dtype."""


# -- the estimate ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSizes:
    """What a model holds, for the sizes of its checkpoints and of the final model."""

    parameters: int
    """Parameters, each counted once (tied embeddings are saved once)."""
    parameter_bytes: int
    """Bytes of the parameters in the dtypes the model holds them in (its checkpoints' weights)."""
    trainable: int
    """Parameters the optimizer updates (a LoRA adapter's alone)."""
    trainable_bytes: int
    """Bytes of the trainable parameters as held: the weights of a LoRA checkpoint."""
    optimizer_bytes: int
    """Bytes of the optimizer's state for the trainable parameters."""
    adapter: bool = False
    """A LoRA (PEFT) model: its checkpoints, and its final model unless merged, hold the adapter alone."""


def model_sizes(model: Any, optim: str, master_weights: bool = False) -> ModelSizes:
    """Count ``model``'s parameters and the bytes its optimizer ``optim`` keeps.

    :param optim: transformers' optimizer name (``hyperparams.optim``).
    :param master_weights: the optimizer also keeps float32 copies of the trainable
        weights (DeepSpeed's mixed precision).
    """
    parameters = parameter_bytes = trainable = trainable_bytes = 0
    shapes: list[tuple[tuple[int, ...], int]] = []
    for _, parameter in model.named_parameters():  # each shared parameter once
        count = int(getattr(parameter, "ds_numel", 0) or parameter.numel())  # ZeRO-3 holds a shard
        size = parameter.element_size()
        parameters += count
        parameter_bytes += count * size
        if parameter.requires_grad:
            trainable += count
            trainable_bytes += count * size
            shape = tuple(getattr(parameter, "ds_shape", None) or parameter.shape)
            shapes.append((shape, size))
    optimizer = optimizer_state_bytes(shapes, optim) + (4 * trainable if master_weights else 0)
    adapter = hasattr(model, "peft_config")
    return ModelSizes(parameters, parameter_bytes, trainable, trainable_bytes, optimizer, adapter)


def optimizer_state_bytes(shapes: Iterable[tuple[tuple[int, ...], int]], optim: str) -> int:
    """Bytes of optimizer state for parameters of these ``(shape, bytes per element)``.

    AdamW and most others keep two moments in the parameter's dtype; Lion, Adagrad and
    RMSprop one; plain SGD (transformers' default, no momentum) none; 8-bit optimizers one
    byte per moment, 4-bit half of one; Adafactor factors the second moment of a matrix
    into a row and a column.
    """
    name = optim.lower()
    moments = 0 if name == "sgd" else 1 if any(key in name for key in ("lion", "adagrad", "rmsprop")) else 2
    total = 0.0
    for shape, size in shapes:
        count = math.prod(shape)
        if "adafactor" in name:
            total += 4 * (shape[-1] + shape[-2]) if len(shape) >= 2 else 4 * count
        elif "8bit" in name or "bnb" in name:
            total += moments * count
        elif "4bit" in name:
            total += moments * count / 2
        else:
            total += moments * count * size
    return int(total)


@dataclass(frozen=True)
class SpaceEstimate:
    """How much a run writes to its output filesystem, in bytes."""

    checkpoint_bytes: int
    """One checkpoint."""
    final_model_bytes: int
    """The final model with its tokenizer and configs."""
    saves: int
    """Checkpoints the run saves."""
    checkpoints_at_once: int
    """The most checkpoints on disk at one time, the one being written included."""
    needed_bytes: int
    """The most the run adds to the disk at one time (checkpoints already there not counted)."""
    minimum_bytes: int
    """The final model and one checkpoint (the final model alone for a run that saves none)."""

    def to_dict(self) -> dict[str, int]:
        """The estimate as the status file records it."""
        return asdict(self)


def estimate_space(
    sizes: ModelSizes,
    *,
    tokenizer_bytes: int,
    dtype_bytes: int,
    merge_lora: bool,
    saves: int,
    limit: int | None,
    existing: int = 0,
) -> SpaceEstimate:
    """The space a run needs from the sizes of its model.

    :param tokenizer_bytes: the tokenizer's files, saved in every checkpoint and with the final model.
    :param dtype_bytes: bytes of a weight in the final model's save dtype.
    :param merge_lora: a LoRA adapter is merged into the base weights for the final model.
    :param saves: checkpoints the run saves (:func:`planned_saves`).
    :param limit: ``output.save_total_limit``: checkpoints kept; None keeps all.
    :param existing: checkpoints already on disk (a resumed run's).
    """
    weights = sizes.trainable_bytes if sizes.adapter else sizes.parameter_bytes
    checkpoint = weights + sizes.optimizer_bytes + tokenizer_bytes + SMALL_FILES
    if sizes.adapter and not merge_lora:
        final_weights = sizes.trainable_bytes  # saved as trained
    else:
        base = sizes.parameters - sizes.trainable if sizes.adapter else sizes.parameters
        final_weights = base * dtype_bytes
    final = final_weights + tokenizer_bytes + SMALL_FILES
    kept = existing + saves if limit is None else min(limit, existing + saves)
    # While a checkpoint is written the oldest is still there; it goes once the new one is complete.
    writing = 0 if saves == 0 else existing + saves if limit is None else min(limit + 1, existing + saves)
    peak = max(writing * checkpoint, kept * checkpoint + final)  # the checkpoints go after the final model
    return SpaceEstimate(
        checkpoint_bytes=checkpoint,
        final_model_bytes=final,
        saves=saves,
        checkpoints_at_once=max(writing, kept),
        needed_bytes=max(peak - existing * checkpoint, 0),
        minimum_bytes=final + (checkpoint if saves else 0),
    )


def total_steps(
    max_steps: int, examples: int, batch_size: int, accumulation: int, processes: int, epochs: float
) -> int:
    """The optimiser steps of a run: ``max_steps`` when above 0, else the epochs' worth."""
    if max_steps > 0:
        return max_steps
    per_epoch = max(math.ceil(examples / max(batch_size * processes, 1)) // max(accumulation, 1), 1)
    return math.ceil(epochs * per_epoch)


def planned_saves(start: int, total: int, save_steps: int, keep_final: bool) -> int:
    """Checkpoints saved between step ``start`` (a resumed run's) and ``total``.

    One every ``save_steps``, and one at the last step when the checkpoints are kept
    (``output.keep_checkpoints``) and it is not one of those.
    """
    if total <= start or save_steps <= 0:
        return 0
    due = total // save_steps - start // save_steps
    return due + (1 if keep_final and total % save_steps else 0)


def space_verdict(estimate: SpaceEstimate, free: int | None, mode: str, where: str) -> str | None:
    """Compare ``estimate`` with ``free`` bytes on the filesystem ``where``.

    :param mode: ``output.disk_space_check``: ``refuse``, ``warn`` or ``off``.
    :return: a warning line when ``free`` is short of what the run needs at its fullest, else None.
    :raises OutOfSpaceError: ``free`` is short of the final model and one checkpoint and ``mode`` is refuse.
    """
    if mode == "off" or free is None or free >= estimate.needed_bytes:
        return None
    parts = f"the final model ({size_text(estimate.final_model_bytes)})"
    if estimate.saves:
        parts += f" and one checkpoint ({size_text(estimate.checkpoint_bytes)})"
    count = estimate.checkpoints_at_once
    fullest = f"about {size_text(estimate.needed_bytes)} at its fullest (" + (
        f"up to {count} checkpoint{'s' if count != 1 else ''} of {size_text(estimate.checkpoint_bytes)} "
        "at once, and "
        if count
        else ""
    )
    fullest += f"the final model of {size_text(estimate.final_model_bytes)})"
    if free < estimate.minimum_bytes and mode == "refuse":
        raise OutOfSpaceError(
            f"not enough space on {where} for this run: {size_text(free)} free, and {parts} need "
            f"{size_text(estimate.minimum_bytes)}, {fullest}. Free space there, set output.output_dir to a "
            "larger filesystem, or set output.disk_space_check: warn (--set output.disk_space_check=warn) "
            "to go on anyway"
        )
    fewer = ", or lower output.save_total_limit" if count > 1 else ""
    return (
        f"warning: {where} has {size_text(free)} free, and this run needs {fullest}. It stops when the "
        f"disk fills: free space{fewer}"
    )


def check_space(
    trainer: Any,
    output_dir: Path,
    checkpoint: str | None,
    config: TrainerConfig,
    model_path: str | None,
    on_message: Callable[[str], None],
) -> dict[str, Any] | None:
    """Before training: estimate the space the run needs, warn or refuse (:func:`space_verdict`).

    The engine's helper: ``trainer`` is the built transformers ``Trainer``, ``checkpoint`` the
    one the run resumes from. Only the main process checks.

    :return: the estimate, the filesystem and its free bytes, for :func:`record_failure`
        to name what a full disk stopped (None on the other processes).
    :raises OutOfSpaceError: too little space and ``output.disk_space_check`` is refuse.
    """
    if not _main_process():
        return None
    args = trainer.args
    optim = str(getattr(args.optim, "value", args.optim))
    sizes = model_sizes(trainer.model, optim, master_weights=bool(args.deepspeed))
    try:
        examples = len(trainer.train_dataset)
    except TypeError:  # a dataset without a length: the run goes by max_steps
        examples = 0
    steps = total_steps(
        args.max_steps,
        examples,
        args.per_device_train_batch_size,
        args.gradient_accumulation_steps,
        args.world_size,
        args.num_train_epochs,
    )
    start = checkpoint_step(checkpoint) if checkpoint else 0
    lora = config.model.lora
    estimate = estimate_space(
        sizes,
        tokenizer_bytes=tokenizer_bytes(trainer.processing_class),
        dtype_bytes=DTYPE_BYTES.get(save_dtype(config, model_path), 4),
        merge_lora=lora.enabled and lora.merge_on_export,
        saves=planned_saves(start, steps, args.save_steps, config.output.keep_checkpoints),
        limit=args.save_total_limit,
        existing=len(checkpoint_dirs(Path(args.output_dir))),
    )
    where = filesystem_of(output_dir)
    try:
        free: int | None = shutil.disk_usage(output_dir).free
    except OSError:  # a filesystem that cannot say: nothing to compare with
        free = None
    warning = space_verdict(estimate, free, config.output.disk_space_check, where)
    if warning:
        on_message(warning)
    return {**estimate.to_dict(), "filesystem": where, "free_bytes": free}


def tokenizer_bytes(tokenizer: Any) -> int:
    """The size of the tokenizer's files, measured by saving them to a temporary folder (0 if it cannot)."""
    if tokenizer is None or not hasattr(tokenizer, "save_pretrained"):
        return 0
    with tempfile.TemporaryDirectory(prefix="trainer-tokenizer-size-") as folder:
        try:
            tokenizer.save_pretrained(folder)
        except Exception:  # an estimate: a tokenizer that cannot be saved here is counted as nothing
            return 0
        return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


def size_text(count: float) -> str:
    """Bytes for people, in binary units as ``df -h`` counts them: ``14.7 MiB``."""
    value, unit = float(count), "bytes"
    for larger in ("KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:,.0f} bytes" if unit == "bytes" else f"{value:,.1f} {unit}"


# -- when it fails ------------------------------------------------------------------------------------


def remove_partial_files(output_dir: Path) -> list[Path]:
    """Delete what an interrupted save left in ``output_dir``.

    The checkpoints' staging folders (``checkpoints/.staging*``), a ``checkpoint-N`` that
    fails :func:`~trainer.core.checkpoints.verify_checkpoint` (half-written), and the final
    model's temporary folders (``.final-*``). Whole checkpoints are never touched.

    :return: what was deleted.
    """
    from trainer.core.engine import CHECKPOINTS_DIR

    checkpoints = output_dir / CHECKPOINTS_DIR
    doomed = sorted(checkpoints.glob(".staging*")) if checkpoints.is_dir() else []
    doomed += [path for path in checkpoint_dirs(checkpoints) if verify_checkpoint(path) is not None]
    doomed += sorted(output_dir.glob(FINAL_STAGING_PREFIX + "*")) if output_dir.is_dir() else []
    for path in doomed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return doomed


def record_failure(
    exc: Exception,
    hub: StatusHub,
    output_dir: Path,
    status_file: Path,
    status_writer: TrainingStatusWriter | None = None,
    space_needed: dict[str, Any] | None = None,
) -> Exception:
    """Tell the status sinks the run failed with ``exc``; return the exception to raise for it.

    An error the machine caused (:func:`trainer.os_errors.os_failure`) becomes one line: a
    full disk an :class:`OutOfSpaceError` naming the filesystem, what was being written and
    how much it needed; others a :class:`FileSystemError` naming the path and the fix. For
    those the partial files are removed first, and then the status file is written
    directly where the status-file sink could not (a full disk disables it).

    :param status_writer: the writer the engine was given in place of the status-file sink.
    :param space_needed: :func:`check_space`'s estimate, if the run got that far.
    :return: ``exc`` itself, or the error to raise from it.
    """
    replacement = _machine_error(exc, output_dir, space_needed or {}, started=bool(hub.state.get("step")))
    if replacement is not None or isinstance(exc, TrainerError):
        reason = str(replacement or exc)
    else:
        reason = f"{type(exc).__name__}: {exc}"
    hub.emit("failure", status="failed", error=reason)
    if replacement is None:
        return exc
    if hub.sinks or hub.state.get("sink_errors"):  # this process reports the run
        _write_failed_status(status_writer or TrainingStatusWriter(status_file), hub.state, reason)
    return replacement


def _machine_error(
    exc: Exception, output_dir: Path, estimate: dict[str, Any], started: bool
) -> FileSystemError | None:
    failure = os_failure(exc)
    if failure is None:
        return None
    if isinstance(exc, TrainerError) and failure.code is not None and not failure.out_of_space:
        return None  # trainer's own message already names the path and the fix
    doing = activity(exc)
    needed = _bytes_for(doing, estimate)
    path = Path(failure.path) if failure.path else _where_written(doing, output_dir)
    full = failure.out_of_space
    if failure.code is None and needed is not None:  # torch's failed write: a full disk if it did not fit
        full = _free_bytes(path) < needed
    if _main_process():
        remove_partial_files(output_dir)
    if not full:
        return FileSystemError(describe(exc) or f"{failure.reason} ({path})")
    from trainer.core.engine import CHECKPOINTS_DIR

    return OutOfSpaceError(
        out_of_space_message(
            quota=failure.code == errno.EDQUOT,
            where=filesystem_of(path),
            doing=doing or f"writing {path}",
            elsewhere="point HF_DATASETS_CACHE at"
            if doing and doing.startswith("tokenizing")
            else "set output.output_dir to",
            needed=needed,
            estimate=estimate,
            resumable=bool(checkpoint_dirs(output_dir / CHECKPOINTS_DIR)),
            started=started,
        )
    )


def out_of_space_message(
    *,
    quota: bool,
    where: str,
    doing: str,
    elsewhere: str = "set output.output_dir to",
    needed: int | None,
    estimate: dict[str, Any],
    resumable: bool,
    started: bool,
) -> str:
    """``no space left on <filesystem> while <what>; <how much was needed>. <fix>``.

    :param elsewhere: how to write it to another filesystem, completed by ``a larger filesystem``.
    :param needed: bytes of what was being written, where known.
    :param estimate: :func:`check_space`'s record (empty if the run failed before it).
    :param resumable: a whole checkpoint is there to ``--resume`` from.
    :param started: the run trained a step, so its output directory holds more than a failed start.
    """
    amounts = [f"it needs about {size_text(needed)}"] if needed is not None else []
    if estimate.get("needed_bytes") is not None:
        run = f"the run about {size_text(estimate['needed_bytes'])} in all"
        if estimate.get("free_bytes") is not None:
            run += f", and {size_text(estimate['free_bytes'])} was free when it started"
        amounts.append(run)
    how_much = ", ".join(amounts) or "how much it needs was not yet estimated"
    title = "disk quota exceeded on" if quota else "no space left on"
    fix = "free space within your quota (quota -s)" if quota else "free space there"
    then = "continue with --resume" if resumable else "run again with --overwrite" if started else "run again"
    return (
        f"{title} {where} while {doing}; {how_much}. {fix.capitalize()} or {elsewhere} a larger "
        f"filesystem, then {then}"
    )


def _bytes_for(doing: str | None, estimate: dict[str, Any]) -> int | None:
    """The estimated size of what was being written: a checkpoint or the final model."""
    if doing is None:
        return None
    if doing.startswith("writing checkpoint") or doing == "writing a checkpoint":
        return estimate.get("checkpoint_bytes")
    if doing == "writing the final model":
        return estimate.get("final_model_bytes")
    return None


def _where_written(doing: str | None, output_dir: Path) -> Path:
    """Where a write without a path in its error went: the datasets cache, or the output directory."""
    if doing is not None and doing.startswith("tokenizing"):
        try:
            from datasets import config as datasets_config

            return Path(datasets_config.HF_DATASETS_CACHE)
        except ImportError:
            pass
    return output_dir


def _free_bytes(path: Path) -> int:
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def _write_failed_status(writer: TrainingStatusWriter, state: dict[str, Any], reason: str) -> None:
    """Make the status file say ``failed`` with ``reason``, unless it already does.

    Only a status file the run has written (at its start) is rewritten.
    """
    if not _main_process() or not writer.path.is_file():
        return
    try:
        current = json.loads(writer.path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = {}
    if isinstance(current, dict) and current.get("status") == "failed" and current.get("error") == reason:
        return
    writer.state.update(state)
    try:
        writer.mark_failed(reason)
    except OSError as exc:  # still no room: the error line is all the user gets
        log.warning("the status file %s could not be written: %s", writer.path, exc)


def _main_process() -> bool:
    """True for a single process and rank 0 of several (as in the engine: read from ``RANK``)."""
    return os.environ.get("RANK", "0") == "0"
