"""The output directory before a run starts: empty, replaced, or holding a failed start.

A run that fails before its first step (a missing dataset, a misspelled profile)
leaves only the record of that failure: its status file and, at most, the logs
of the preview round before step 1. That must not block the corrected command:
such a record is moved to ``failed-attempts/<time>/`` inside the directory and
the directory counts as empty. Anything else in it (a model, a checkpoint, a run
still going) is kept unless ``--overwrite`` is passed.

A run locks the directory first (:mod:`trainer.core.run_lock`), so nothing here
is cleared or read while another run is using it; the lock file counts for nothing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from trainer.core.checkpoints import checkpoint_dirs
from trainer.core.run_lock import LOCK_FILE, RunLock, lock_output_dir
from trainer.errors import TrainerError

FAILED_ATTEMPTS_DIR = "failed-attempts"
"""Where the records of runs that failed before their first step are kept."""

_RECORD_FILES = ("metrics.jsonl", "previews.jsonl", "tensorboard")
"""What a run may write before its first step, besides the status file."""
_CHECKPOINTS = "checkpoints"
"""Created before the first step; part of a failed start only while it holds no checkpoint."""
_SHOWN = 4


def claim_output_dir(
    output_dir: Path,
    status_file: Path,
    overwrite: bool,
    resume: str | None,
    on_message: Callable[[str], None],
) -> RunLock:
    """Lock ``output_dir`` for this run, then make it ready unless the run resumes there.

    The lock comes first: a second run, with ``--overwrite`` or ``--resume`` or neither,
    is refused before it clears or reads anything. Release the lock when the run ends.

    :param on_message: receives a line for the user: a stale lock taken over, a failed
        start moved aside.
    :raises TrainerError: another run holds the directory, or as :func:`prepare_output_dir`.
    """
    _check_not_a_file(output_dir)
    lock = lock_output_dir(output_dir, on_message)
    try:
        news = None if resume else prepare_output_dir(output_dir, status_file, overwrite)
    except BaseException:
        lock.release()
        raise
    if news:
        on_message(news)
    return lock


def prepare_output_dir(output_dir: Path, status_file: Path, overwrite: bool) -> str | None:
    """Make ``output_dir`` ready for a new run; return a line for the user, if there is news.

    :raises TrainerError: the directory is a file, or holds more than a failed start and
        ``overwrite`` is false; the message says what is there.
    """
    _check_not_a_file(output_dir)
    entries = _entries(output_dir)
    if overwrite:
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        output_dir.mkdir(parents=True, exist_ok=True)
        return None
    news = None
    state = _read_status(status_file)
    if entries and state is not None and _only_a_failed_start(entries, status_file, state):
        kept = _keep_failed_start(output_dir, entries, state)
        news = (
            f"{output_dir} held only the record of a run that failed before its first step; moved to {kept}"
        )
        entries = _entries(output_dir)
    if entries:
        resumable = checkpoint_dirs(output_dir / _CHECKPOINTS)
        resume_hint = "pass --resume to continue the run there, " if resumable else ""
        raise TrainerError(
            f"output directory '{output_dir}' is not empty: {describe(entries, state)}. "
            f"Choose another with --output-dir, {resume_hint}or --overwrite to replace its contents"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    return news


def describe(entries: list[Path], state: dict[str, Any] | None) -> str:
    """What a non-empty output directory holds, in a few words: its run's status and some names."""
    names = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in entries)
    shown = ", ".join(names[:_SHOWN]) + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
    if state is None:
        return shown
    return f"a run {state.get('status', 'of unknown status')} at step {state.get('step', 0)} ({shown})"


def _check_not_a_file(output_dir: Path) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise TrainerError(
            f"output.output_dir '{output_dir}' is a file. Choose a directory with --output-dir"
        )


def _entries(output_dir: Path) -> list[Path]:
    """What counts in the directory: everything but the kept records of failed starts and the run lock."""
    if not output_dir.is_dir():
        return []
    return [entry for entry in output_dir.iterdir() if entry.name not in (FAILED_ATTEMPTS_DIR, LOCK_FILE)]


def _read_status(status_file: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(status_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _only_a_failed_start(entries: list[Path], status_file: Path, state: dict[str, Any]) -> bool:
    """True when the status says failed or interrupted before step 1 and nothing else is there.

    A run ``starting`` or ``training`` may still be going in another process: never touched.
    """
    if state.get("status") not in ("failed", "interrupted") or (state.get("step") or 0) > 0:
        return False
    for entry in entries:
        if entry == status_file or entry.name in _RECORD_FILES:
            continue
        if entry.name == _CHECKPOINTS and entry.is_dir() and not any(entry.glob("checkpoint-*")):
            continue
        return False
    return True


def _keep_failed_start(output_dir: Path, entries: list[Path], state: dict[str, Any]) -> Path:
    """Move the record of the failed start under ``failed-attempts/<time>/``; return that directory."""
    stamp = str(state.get("updated_at") or datetime.now(timezone.utc).isoformat(timespec="seconds"))
    name = stamp.replace(":", "-").replace("+00-00", "Z")
    target = output_dir / FAILED_ATTEMPTS_DIR / name
    suffix = 1
    while target.exists():
        suffix += 1
        target = output_dir / FAILED_ATTEMPTS_DIR / f"{name}.{suffix}"
    target.mkdir(parents=True)
    for entry in entries:
        if entry.name == _CHECKPOINTS:
            shutil.rmtree(entry)  # no checkpoint in it: nothing to keep
        else:
            entry.rename(target / entry.name)
    return target
