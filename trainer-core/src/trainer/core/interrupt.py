"""Stopping a run cleanly on SIGINT or SIGTERM, and picking the checkpoint to resume from.

The first signal asks training to stop after the current step: transformers'
``Trainer`` then saves a checkpoint and returns, and the run is marked
``interrupted``. A second signal stops at once. Clusters pre-empt jobs with
SIGTERM, so a pre-empted run leaves a checkpoint that ``--resume`` continues.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
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


def checkpoint_to_resume(resume: str, checkpoints_dir: Path) -> str:
    """The checkpoint directory ``--resume`` means: ``latest`` or a path.

    :raises TrainerError: there is no such checkpoint.
    """
    from transformers.trainer_utils import get_last_checkpoint

    if resume == "latest":
        found = get_last_checkpoint(str(checkpoints_dir)) if checkpoints_dir.is_dir() else None
        if found is None:
            raise TrainerError(
                f"--resume: no checkpoint in '{checkpoints_dir}'. Run without --resume to start afresh, "
                "or pass --resume PATH to a checkpoint directory"
            )
        return str(found)
    path = Path(resume)
    if not (path / "trainer_state.json").is_file():
        raise TrainerError(
            f"--resume '{resume}' is not a checkpoint directory (no trainer_state.json). "
            f"Pass a checkpoint-N directory, or --resume alone for the latest one in {checkpoints_dir}"
        )
    return str(path)
