"""Stopping a run cleanly on SIGINT or SIGTERM, and picking the checkpoint to resume from.

The first signal asks training to stop after the current step: transformers'
``Trainer`` then saves a checkpoint and returns, and the run is marked
``interrupted``. A second signal stops at once. Clusters pre-empt jobs with
SIGTERM, so a pre-empted run leaves a checkpoint that ``--resume`` continues.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from trainer.errors import TrainerError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(TrainerError):
    """Training stopped on a signal after saving a checkpoint.

    Its exit code is the shell's convention for the signal: 130 for SIGINT, 143
    for SIGTERM.
    """

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


class StopRequest:
    """Which signal asked the run to stop, if any."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def name(self) -> str:
        """``SIGINT`` or ``SIGTERM``."""
        return signal.Signals(self.signum).name if self.signum else ""


@contextmanager
def stop_on_signals(request: StopRequest) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM set ``request``; a second one stops at once.

    Outside the main thread signal handlers cannot be installed, so there the
    signals keep their usual effect.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if request.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping at once")
        request.signum = signum

    previous = {signum: signal.signal(signum, handle) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _say_nothing(message: str) -> None:
    """The default ``on_message``."""


def checkpoint_to_resume(
    resume: str, checkpoints_dir: Path, on_message: Callable[[str], None] = _say_nothing
) -> str:
    """The checkpoint directory ``--resume`` means: ``latest`` or a path, checked to be whole.

    ``latest`` is the newest checkpoint in ``checkpoints_dir`` that
    :func:`~trainer.core.checkpoints.verify_checkpoint` passes; newer damaged ones are
    named to ``on_message`` and passed over. A path must be a whole checkpoint.

    :raises TrainerError: there is no such checkpoint, none whole, or the one named is damaged
        (the message names the damaged file and the newest whole checkpoint).
    """
    from trainer.core.checkpoints import STAGING_DIR, checkpoint_dirs, newest_valid, verify_checkpoint

    staged = checkpoints_dir / STAGING_DIR
    if staged.is_dir() and any(staged.iterdir()):
        on_message(f"An interrupted save left {staged} incomplete; it is not a checkpoint and is removed")
    if resume == "latest":
        found = checkpoint_dirs(checkpoints_dir)
        if not found:
            raise TrainerError(
                f"--resume: no checkpoint in '{checkpoints_dir}'. Run without --resume to start afresh, "
                "or pass --resume PATH to a checkpoint directory"
            )
        chosen, damaged = newest_valid(found)
        if chosen is None:
            raise TrainerError(
                f"--resume: no whole checkpoint in '{checkpoints_dir}': {'; '.join(damaged)}. "
                "Run with --overwrite to start afresh, or pass --resume PATH to a checkpoint saved elsewhere"
            )
        if damaged:
            on_message(f"{'; '.join(damaged)}; resuming from {chosen.name}")
        return str(chosen)
    path = Path(resume)
    if path.resolve().parent.name == STAGING_DIR:
        raise TrainerError(
            f"--resume '{resume}' is an incomplete save in the staging folder, not a checkpoint. "
            f"Pass a checkpoint-N directory, or --resume alone for the latest one in {checkpoints_dir}"
        )
    if not (path / "trainer_state.json").is_file():
        raise TrainerError(
            f"--resume '{resume}' is not a checkpoint directory (no trainer_state.json). "
            f"Pass a checkpoint-N directory, or --resume alone for the latest one in {checkpoints_dir}"
        )
    problem = verify_checkpoint(path)
    if problem is not None:
        here = path.resolve()
        whole, _ = newest_valid([other for other in checkpoint_dirs(here.parent) if other != here])
        fix = (
            f"the newest whole checkpoint is {whole}: pass --resume {whole}"
            if whole is not None
            else "no other whole checkpoint is there: run with --overwrite to start afresh"
        )
        raise TrainerError(f"--resume: checkpoint '{resume}' is damaged: {problem}; {fix}")
    return str(path)
