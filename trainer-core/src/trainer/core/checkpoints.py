"""Checkpoints that are whole or absent, checked before a run resumes from them.

A checkpoint is written into ``checkpoints/.staging/checkpoint-N`` and renamed to
``checkpoints/checkpoint-N`` only once every file in it is on disk (fsync'd), so a
crash, ``kill -9`` or full disk mid-save leaves a staging folder, never a folder that
looks like a checkpoint. transformers finds checkpoints by the name ``checkpoint-N``
directly under its output directory, so it never sees the staging folder; the next
run removes it.

Each checkpoint also holds ``trainer_config.json``: the run's resolved settings, so a
resumed run can be compared with the one that saved it (:func:`check_same_run`).

Standard library only: the trainer that writes through these functions is in
:mod:`trainer.core.checkpoint_trainer`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from trainer.errors import TrainerError

STAGING_DIR = ".staging"
"""Folder inside the checkpoints directory that checkpoints are written into before they are complete."""
SETTINGS_FILE = "trainer_config.json"
"""The run's resolved settings, saved in each checkpoint."""
STATE_FILE = "trainer_state.json"

_CHECKPOINT_NAME = re.compile(r"checkpoint-(\d+)")
_TORCH_FILES = ("*.pt", "*.pth", "*.bin")
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header


# -- writing -----------------------------------------------------------------------------------------


def remove_staging(checkpoints_dir: Path) -> list[str]:
    """Delete what an interrupted save left in the staging folder.

    :return: the names of the incomplete checkpoints removed.
    """
    staging = checkpoints_dir / STAGING_DIR
    if not staging.is_dir():
        return []
    left = sorted(path.name for path in staging.iterdir())
    shutil.rmtree(staging, ignore_errors=True)
    return left


def write_settings(directory: Path, settings: dict[str, Any]) -> None:
    """Save the run's settings into a checkpoint being written."""
    (directory / SETTINGS_FILE).write_text(
        json.dumps(settings, indent=2, sort_keys=True, default=str), encoding="utf-8"
    )


def publish(staged: Path, checkpoints_dir: Path) -> Path:
    """Make the staged checkpoint durable, then rename it into place as ``checkpoints_dir/<its name>``.

    Every file and folder in it is fsync'd first, and the checkpoints directory after the
    rename, so after a crash the checkpoint is either all there or not there at all. A
    checkpoint of the same name already there (one a resumed run is replacing) is moved
    aside first and deleted once the new one is in place. The staging folder is removed
    once empty.

    :return: the checkpoint's final path.
    """
    sync_tree(staged)
    target = checkpoints_dir / staged.name
    replaced = staged.parent / f"replaced-{staged.name}"
    if target.exists():
        shutil.rmtree(replaced, ignore_errors=True)
        os.rename(target, replaced)
    os.rename(staged, target)
    _sync_dir(checkpoints_dir)
    remove_staged(replaced)
    return target


def remove_staged(staged: Path) -> None:
    """Delete a folder in the staging folder, and the staging folder once it is empty.

    The staging folder exists only while a save is under way.
    """
    shutil.rmtree(staged, ignore_errors=True)
    try:
        staged.parent.rmdir()
    except OSError:  # another save is under way, or it is gone already
        pass


def sync_tree(directory: Path) -> None:
    """fsync every file under ``directory``, then each folder (deepest first), then ``directory``."""
    folders: list[Path] = []
    for root, _, files in os.walk(directory):
        folders.append(Path(root))
        for name in files:
            descriptor = os.open(Path(root) / name, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
    for folder in reversed(folders):
        _sync_dir(folder)


def _sync_dir(directory: Path) -> None:
    """fsync a directory, so the names in it (a rename, a new file) survive a crash."""
    if os.name == "nt":  # Windows cannot open a directory; NTFS journals its names itself
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def rotate(checkpoints_dir: Path, limit: int | None, keep: Path) -> list[Path]:
    """Delete the checkpoints with the lowest steps until ``limit`` are left, never ``keep``.

    Called once ``keep``, the newest save, is complete and in place, so the last good
    checkpoint is never deleted before a new one exists.

    :return: the checkpoints deleted.
    """
    if not limit or limit <= 0:
        return []
    found = sorted(checkpoint_dirs(checkpoints_dir), key=checkpoint_number)
    deleted: list[Path] = []
    for path in found:
        if len(found) - len(deleted) <= limit:
            break
        if path.name != keep.name:
            shutil.rmtree(path, ignore_errors=True)
            deleted.append(path)
    return deleted


# -- finding and verifying ---------------------------------------------------------------------------


def checkpoint_dirs(checkpoints_dir: Path) -> list[Path]:
    """The ``checkpoint-N`` folders directly in ``checkpoints_dir``, newest (highest N) first."""
    if not checkpoints_dir.is_dir():
        return []
    found = [
        path for path in checkpoints_dir.iterdir() if _CHECKPOINT_NAME.fullmatch(path.name) and path.is_dir()
    ]
    return sorted(found, key=checkpoint_number, reverse=True)


def checkpoint_number(path: Path) -> int:
    """N of a ``checkpoint-N`` folder; -1 for another name."""
    match = _CHECKPOINT_NAME.fullmatch(path.name)
    return int(match.group(1)) if match else -1


def checkpoint_step(checkpoint: str | Path) -> int:
    """The step a checkpoint was saved at, from its ``trainer_state.json`` (0 when unreadable)."""
    try:
        state = json.loads((Path(checkpoint) / STATE_FILE).read_text(encoding="utf-8"))
        return int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def newest_valid(checkpoints: list[Path]) -> tuple[Path | None, list[str]]:
    """The first of ``checkpoints`` (newest first) that :func:`verify_checkpoint` passes.

    :return: that checkpoint (None if none passes), and ``"<name> is damaged (<problem>)"``
        for each newer one that did not.
    """
    damaged: list[str] = []
    for path in checkpoints:
        problem = verify_checkpoint(path)
        if problem is None:
            return path, damaged
        damaged.append(f"{path.name} is damaged ({problem})")
    return None, damaged


def verify_checkpoint(path: Path) -> str | None:
    """The first problem that would stop transformers resuming from the checkpoint at ``path``.

    Checked without loading any tensor: ``trainer_state.json`` parses and holds the step;
    the weights are there (``model.safetensors``, a sharded index and its shards, a LoRA
    adapter, or a DeepSpeed or FSDP folder) and each safetensors file's header is readable
    and covers the file exactly; ``optimizer.pt`` and ``scheduler.pt`` are there (transformers saves
    them unless DeepSpeed or FSDP saves its own); every torch file (``.pt``, ``.pth``,
    ``.bin``) is a whole zip archive; ``trainer_config.json``, if there, parses.

    :return: ``"<file>: <what is wrong>"``, or None for a sound checkpoint.
    """
    for name in (STATE_FILE, SETTINGS_FILE):
        file = path / name
        if name == STATE_FILE and not file.is_file():
            return f"{name}: missing"
        if file.is_file():
            try:
                content = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                return f"{name}: not readable JSON, {_reason(exc)}"
            if name == STATE_FILE and not (isinstance(content, dict) and "global_step" in content):
                return f"{name}: holds no global_step"
    engine_saved = any(path.glob("global_step*")) or any(path.glob("pytorch_model_fsdp_*"))
    problem = _weights_problem(path, engine_saved)
    if problem:
        return problem
    if not engine_saved:  # DeepSpeed and FSDP keep the optimizer in their own folders
        for name in ("optimizer.pt", "scheduler.pt"):
            if not (path / name).is_file():
                return f"{name}: missing"
    for file in sorted(file for pattern in _TORCH_FILES for file in path.glob(pattern)):
        if not zipfile.is_zipfile(file):
            return f"{file.name}: truncated or not a torch file, {_size(file)}"
    return None


def _weights_problem(path: Path, engine_saved: bool) -> str | None:
    index = next((path / name for name in _INDEXES if (path / name).is_file()), None)
    if index is not None:
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, AttributeError, TypeError) as exc:
            return f"{index.name}: not a readable index of shards, {_reason(exc)}"
        for shard in shards:
            if not (path / shard).is_file():
                return f"{shard}: missing, though {index.name} lists it"
            problem = safetensors_problem(path / shard) if shard.endswith(".safetensors") else None
            if problem:
                return f"{shard}: {problem}"
        return None
    weights = [path / name for name in _WEIGHTS if (path / name).is_file()]
    for file in weights:
        problem = safetensors_problem(file) if file.suffix == ".safetensors" else None
        if problem:
            return f"{file.name}: {problem}"
    if weights or engine_saved:
        return None
    return "model.safetensors: missing, and no other model or adapter weights are there"


_INDEXES = ("model.safetensors.index.json", "adapter_model.safetensors.index.json")
_WEIGHTS = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")


def safetensors_problem(file: Path) -> str | None:
    """What is wrong with a safetensors file's header, or None if it is whole.

    Reads the 8-byte header length and the JSON header, and checks the file holds
    exactly the bytes the header's data offsets describe: a truncated file, or one
    with bytes after its data, is what safetensors refuses to load.
    """
    try:
        size = file.stat().st_size
        with file.open("rb") as handle:
            start = handle.read(8)
            if len(start) < 8:
                return f"truncated, {size} bytes"
            (length,) = struct.unpack("<Q", start)
            if length > min(_MAX_HEADER, size - 8):
                return f"truncated or not safetensors, a header of {length:,} bytes in a file of {size:,}"
            header = json.loads(handle.read(length))
    except OSError as exc:
        return f"not readable, {_reason(exc)}"
    except (UnicodeDecodeError, ValueError) as exc:
        return f"header is not readable JSON, {_reason(exc)}"
    if not isinstance(header, dict):
        return "header is not a JSON object"
    ends = [
        entry["data_offsets"][1]
        for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, dict) and len(entry.get("data_offsets") or ()) == 2
    ]
    expected = 8 + length + max(ends, default=0)
    if size < expected:
        return f"truncated, {size:,} of {expected:,} bytes"
    if size > expected:
        return f"{size - expected:,} bytes after the data its header describes"
    return None


def _size(file: Path) -> str:
    try:
        return f"{file.stat().st_size:,} bytes"
    except OSError as exc:
        return _reason(exc)


def _reason(exc: BaseException) -> str:
    return str(exc).split("\n")[0] or type(exc).__name__


# -- the same run ------------------------------------------------------------------------------------

# Settings that leave the run the same when they change: how it is watched, saved or placed, how
# long it goes on, and how a step is computed (not what it computes). Every other setting in these
# sections changes the data order, the step size or the model, and a difference is refused.
_HARMLESS = (
    "hyperparams.max_steps",
    "hyperparams.num_epochs",
    "hyperparams.gradient_checkpointing",
    "model.base_model",
    "model.model_architecture",
    "model.precision",
    "model.vocab_size",
    "model.trust_remote_code",
    "model.attn_implementation",
    "model.loss_impl",
    "model.lora.merge_on_export",
    "data.num_proc",
    "profile.stop_sequences",
    "inference",
    "output",
    "system",
    "debug.verbose",
    "debug.dry_run",
)


def run_settings(config: Any, hyper: Any) -> dict[str, Any]:
    """What a checkpoint records of the run that saved it: the resolved config and the processes.

    :param config: the run's ``TrainerConfig``.
    :param hyper: the hyperparameters the run trains with (the demo model resolves some).
    """
    from dataclasses import replace

    return {
        "config": replace(config, hyperparams=hyper).to_dict(),
        "processes": int(os.environ.get("WORLD_SIZE", "1")),
    }


def settings_differences(saved: dict[str, Any], current: dict[str, Any]) -> tuple[list[str], list[str]]:
    """How ``current`` settings differ from those a checkpoint ``saved``, as ``name old -> new``.

    :return: the differences that make it another run (refused), and the harmless ones.
    """
    old, new = dict(_flatten(saved.get("config", {}))), dict(_flatten(current.get("config", {})))
    old["processes"], new["processes"] = saved.get("processes", 1), current.get("processes", 1)
    refused: list[str] = []
    harmless: list[str] = []
    for name in sorted(old.keys() | new.keys()):
        if old.get(name, _ABSENT) == new.get(name, _ABSENT):
            continue
        line = f"{name} {_shown(old.get(name, _ABSENT))} -> {_shown(new.get(name, _ABSENT))}"
        harmless_name = any(name == key or name.startswith(key + ".") for key in _HARMLESS)
        (harmless if harmless_name else refused).append(line)
    return refused, harmless


def resume_point(
    resume: str | None,
    checkpoints_dir: Path,
    settings: dict[str, Any],
    anyway: bool,
    on_message: Callable[[str], None],
) -> str | None:
    """The whole checkpoint ``--resume`` means, checked to belong to the same run; says which.

    :param resume: ``latest``, the path of a checkpoint (see
        :func:`~trainer.core.interrupt.checkpoint_to_resume`), or None not to resume (None is returned).
    :param settings: this run's :func:`run_settings`.
    :param anyway: continue even if settings that change the run differ (``--resume-anyway``).
    :raises TrainerError: no whole checkpoint, or settings that differ (see :func:`check_same_run`).
    """
    from trainer.core.interrupt import checkpoint_to_resume

    if not resume:
        return None
    checkpoint = checkpoint_to_resume(resume, checkpoints_dir, on_message)
    check_same_run(checkpoint, settings, anyway, on_message)
    on_message(f"Resuming from step {checkpoint_step(checkpoint)} ({checkpoint})")
    return checkpoint


def check_same_run(
    checkpoint: str | Path,
    settings: dict[str, Any],
    anyway: bool,
    on_message: Callable[[str], None],
) -> None:
    """Refuse to resume from ``checkpoint`` with settings that make it another run.

    Differences in the batch, schedule, data, model or seed are refused, each named,
    unless ``anyway``; harmless ones (logging, previews, a longer run, ...) are told to
    ``on_message``. A checkpoint saved without its settings is not compared.

    :raises TrainerError: the settings differ and ``anyway`` is False.
    """
    path = Path(checkpoint)
    file = path / SETTINGS_FILE
    if not file.is_file():
        on_message(
            f"note: {path.name} holds no {SETTINGS_FILE} (an older trainer saved it); settings not compared"
        )
        return
    saved = json.loads(file.read_text(encoding="utf-8"))  # verify_checkpoint has parsed it
    refused, harmless = settings_differences(saved, settings)
    if refused and not anyway:
        raise TrainerError(
            f"--resume: these settings differ from {path.name}'s and would make it another run "
            f"(batch, schedule, data, model or seed): {', '.join(refused)}. Resume with the "
            "checkpoint's settings, or add --resume-anyway to continue with the new ones"
        )
    if refused:
        on_message(
            f"warning: --resume-anyway: continuing {path.name} with changed settings: {', '.join(refused)}"
        )
    if harmless:
        on_message(
            f"note: settings changed since {path.name}, none that changes the run: {', '.join(harmless)}"
        )


_ABSENT = object()


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted.name, value)`` for each leaf of nested dicts; lists are leaves, empty dicts have none."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def _shown(value: Any) -> str:
    if value is _ABSENT:
        return "(unset)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
