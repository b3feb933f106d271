"""One run per output directory: a lock file the run's main process holds while it runs.

``OUTPUT/.trainer.lock`` names its holder (pid, host, start time, as JSON) and the
holder keeps an exclusive ``flock`` on it. The kernel drops that lock when the
process ends, however it ends, so a lock file left behind by a killed run is known
to be stale and is taken over with a warning rather than blocking the directory.
Where ``fcntl`` is missing (Windows) or the filesystem refuses ``flock``, the file
is created exclusively instead, and a leftover one is stale when its process is gone
or is this very process (a container restarted with the same pid).

A lock file written on another host (a shared filesystem) cannot be checked from
this one: it is never taken over, and the message says how to remove it.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from trainer.errors import TrainerError
from trainer.monitoring.status import process_alive, this_host

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_FILE = ".trainer.lock"
"""The lock file's name inside the output directory."""

_ATTEMPTS = 20
"""Tries to take a lock whose file is being released and removed by its holder at the same moment."""
_READ_TRIES = 10
"""Reads of a lock file whose holder has opened but not yet written it (0.05 s apart)."""
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
"""``flock`` errors of a filesystem without it (some network filesystems): the exclusive file is used."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds, or held, a run lock, as its lock file says."""

    pid: int | None
    host: str | None
    started: str | None
    """When the holder took the lock: ISO 8601, UTC."""

    def describe(self, here: str) -> str:
        """``process 1234 on this host, started ...`` (or ``on host 'x'``)."""
        where = "this host" if self.host == here else f"host '{self.host}'"
        return f"process {self.pid} on {where}" + (f", started {self.started}" if self.started else "")


class RunLock:
    """A held lock on an output directory; :meth:`release` it when the run ends.

    Released at the latest when the object is garbage-collected or the process ends.
    """

    def __init__(self, path: Path, descriptor: int, flocked: bool) -> None:
        self.path = path
        self.holder = LockHolder(os.getpid(), this_host(), _now())
        self._finalizer = weakref.finalize(self, _release, path, descriptor, flocked, os.getpid())

    @property
    def held(self) -> bool:
        """Whether the lock is still held (not yet released)."""
        return self._finalizer.alive

    def release(self) -> None:
        """Remove the lock file and drop the lock; calling it again does nothing."""
        self._finalizer()


def lock_output_dir(output_dir: Path, on_message: Callable[[str], None] | None = None) -> RunLock:
    """Take the lock on ``output_dir`` (created if missing) for this process's run.

    :param on_message: receives the warning when a stale lock is taken over; by default
        it goes to this module's logger.
    :raises TrainerError: another run holds the directory, or a lock file from another
        host cannot be checked; the message names the holder's pid and host.
    """
    on_message = on_message or log.warning
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / LOCK_FILE
    if fcntl is not None:
        lock = _lock_with_flock(output_dir, path, on_message)
        if lock is not None:
            return lock
    return _lock_exclusively(output_dir, path, on_message)


def read_holder(path: Path) -> LockHolder | None:
    """The holder a lock file names; None when it is missing, empty or not a lock file."""
    try:
        return _holder(path.read_text(encoding="utf-8"))
    except OSError:
        return None


# -- the two ways of locking ---------------------------------------------------------


def _lock_with_flock(output_dir: Path, path: Path, on_message: Callable[[str], None]) -> RunLock | None:
    """The lock by ``flock``; None where the filesystem does not support it."""
    assert fcntl is not None
    here = this_host()
    for _ in range(_ATTEMPTS):
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise _in_use(output_dir, _wait_for_holder(path), here) from None
        except OSError as exc:
            os.close(descriptor)
            if exc.errno in _NO_FLOCK:
                return None
            raise
        if not _still_at(descriptor, path):  # its holder released and removed it meanwhile
            os.close(descriptor)
            continue
        left = _holder(_read_descriptor(descriptor))
        if left is not None and left.host != here:
            os.close(descriptor)
            raise _unverifiable(output_dir, path, left, here)
        if left is not None:  # the kernel dropped its flock: that process is gone
            on_message(_taken_over(output_dir, left, here))
        return _hold(path, descriptor, flocked=True)
    raise _kept_changing(output_dir, path)


def _lock_exclusively(output_dir: Path, path: Path, on_message: Callable[[str], None]) -> RunLock:
    """The lock by creating the lock file exclusively; a leftover one's process is checked."""
    here = this_host()
    for _ in range(_ATTEMPTS):
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            left = _wait_for_holder(path)
            if left is None or left.pid is None:
                if not path.exists():
                    continue
                raise _unverifiable(output_dir, path, left, here) from None
            if left.host != here:
                raise _unverifiable(output_dir, path, left, here) from None
            if left.pid != os.getpid() and process_alive(left.pid):
                raise _in_use(output_dir, left, here) from None
            on_message(_taken_over(output_dir, left, here))
            # Two runs taking over the same stale file at once could both succeed here; that
            # needs two starts within milliseconds, on a platform without flock.
            path.unlink(missing_ok=True)
            continue
        return _hold(path, descriptor, flocked=False)
    raise _kept_changing(output_dir, path)


def _hold(path: Path, descriptor: int, flocked: bool) -> RunLock:
    """The lock on the file open as ``descriptor``, once it names this process."""
    lock = RunLock(path, descriptor, flocked)
    try:
        _write_holder(descriptor, lock.holder)
    except BaseException:
        lock.release()
        raise
    return lock


def _release(path: Path, descriptor: int, flocked: bool, owner: int) -> None:
    """Remove the lock file (if it is still this lock's) and close it, dropping any flock.

    A forked child (a data-loader worker) that exits through ``atexit`` leaves its parent's lock alone.
    """
    if os.getpid() != owner:
        return
    try:
        if flocked:  # removed while still locked, so no one can lock the old file in between
            if _still_at(descriptor, path):
                path.unlink(missing_ok=True)
            os.close(descriptor)
            return
        os.close(descriptor)  # Windows removes no file that is open
        left = read_holder(path)
        if left is not None and left.pid == os.getpid() and left.host == this_host():
            path.unlink(missing_ok=True)
    except OSError:  # the directory was removed, or the file system went away: nothing is held
        pass


# -- the lock file -------------------------------------------------------------------


def _write_holder(descriptor: int, holder: LockHolder) -> None:
    data = json.dumps({"pid": holder.pid, "host": holder.host, "started": holder.started}) + "\n"
    os.ftruncate(descriptor, 0)
    os.lseek(descriptor, 0, os.SEEK_SET)
    os.write(descriptor, data.encode("utf-8"))
    os.fsync(descriptor)


def _read_descriptor(descriptor: int) -> str:
    os.lseek(descriptor, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(descriptor, 4096):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _holder(text: str) -> LockHolder | None:
    try:
        data: Any = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    pid, host, started = data.get("pid"), data.get("host"), data.get("started")
    return LockHolder(
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        host=host if isinstance(host, str) else None,
        started=started if isinstance(started, str) else None,
    )


def _wait_for_holder(path: Path) -> LockHolder | None:
    """The holder of a lock held by someone else; it may have opened the file and not written it yet."""
    for _ in range(_READ_TRIES):
        holder = read_holder(path)
        if holder is not None or not path.exists():
            return holder
        time.sleep(0.05)
    return None


def _still_at(descriptor: int, path: Path) -> bool:
    """Whether ``path`` is still the file open as ``descriptor``."""
    try:
        named, opened = os.stat(path), os.fstat(descriptor)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


# -- messages ------------------------------------------------------------------------


def _in_use(output_dir: Path, holder: LockHolder | None, here: str) -> TrainerError:
    if holder is None or holder.pid is None:
        who = "a process that has not yet written its lock file"
    else:
        who = holder.describe(here)
        if holder.host == here and not process_alive(holder.pid):
            who += " (gone, but a process it started still holds the lock)"
    return TrainerError(
        f"output directory '{output_dir}' is in use by another run: {who}. Wait for it to end or stop "
        "it, or choose another --output-dir (--overwrite and --resume do not apply to a directory in use)"
    )


def _unverifiable(output_dir: Path, path: Path, holder: LockHolder | None, here: str) -> TrainerError:
    if holder is None or holder.pid is None:
        return TrainerError(
            f"output directory '{output_dir}' is locked by {path}, which does not say which run holds it. "
            f"If no run is using the directory, delete {path} and start again"
        )
    return TrainerError(
        f"output directory '{output_dir}' is locked by {holder.describe(here)}, which cannot be checked "
        f"from this host '{here}'. If that run is no longer going, delete {path} and start again"
    )


def _kept_changing(output_dir: Path, path: Path) -> TrainerError:
    return TrainerError(
        f"could not lock the output directory '{output_dir}': its lock file {path} kept changing. "
        "Another run is starting there; wait for it or choose another --output-dir"
    )


def _taken_over(output_dir: Path, holder: LockHolder, here: str) -> str:
    return (
        f"warning: took over the lock on '{output_dir}' left by {holder.describe(here)}, "
        "which ended without releasing it"
    )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
