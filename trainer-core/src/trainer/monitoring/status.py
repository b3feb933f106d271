"""The JSON status file a run keeps up to date, and how a reader tells whether its run still lives."""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STATUSES = ("starting", "training", "completed", "failed", "interrupted")
LIVE_STATUSES = ("starting", "training")
"""The statuses of a run still going, as far as its status file knows."""

HEARTBEAT_SECONDS = 15.0
"""How often a running writer refreshes ``heartbeat_at``, even when no event comes (a long step)."""
STALE_AFTER_SECONDS = 300.0
"""A live status whose heartbeat is older than this is ``stale``: 20 beats missed, which leaves room
for a busy machine and for clocks that differ between hosts."""

_EVENT_STATUS = {"start": "starting", "end": "completed", "failure": "failed"}


def initial_state() -> dict[str, Any]:
    """The status of a run that has not started yet: every required key, nothing measured."""
    return {
        "status": "starting",
        "step": 0,
        "total_steps": None,
        "epoch": 0.0,
        "loss": None,
        "learning_rate": None,
        "tokens_per_second": None,
        "updated_at": None,
        "heartbeat_at": None,
        "pid": None,
        "host": None,
        "error": None,
    }


class TrainingStatusWriter:
    """Writes a run's state to a JSON file, atomically, and keeps a heartbeat in it.

    Each write goes to a temporary file in the same directory and is renamed over
    the status file, so a reader sees the old state or the new one, never half of
    either. It is also a status sink: :meth:`emit` folds each event into the
    state and writes it.

    Every write records the writing process (``pid``, ``host``) and the time
    (``heartbeat_at``). While the status is ``starting`` or ``training``, a daemon
    thread rewrites the file every ``heartbeat_seconds`` with a fresh
    ``heartbeat_at``, so a reader can tell a long step from a dead run; it stops at
    a final status, on :meth:`close`, or when the status file's directory is gone.

    :param status_file: the path of the JSON file; its directory is created.
    :param heartbeat_seconds: seconds between heartbeats; 0 for none.
    """

    def __init__(
        self, status_file: str | os.PathLike[str], heartbeat_seconds: float = HEARTBEAT_SECONDS
    ) -> None:
        self.path = Path(status_file)
        self.state: dict[str, Any] = initial_state()
        self.heartbeat_seconds = heartbeat_seconds
        self._lock = threading.Lock()  # the heartbeat thread writes too
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._closed = False

    def update(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the state and write it; return the new state."""
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {fields['status']!r}")
        with self._lock:
            self.state.update(fields)
            now = _now()
            self.state.update(updated_at=now, heartbeat_at=now, pid=os.getpid(), host=this_host())
            try:
                self._write()
            except BaseException:
                self._stop.set()  # the hub disables a writer that raises: no heartbeat for a dead file
                raise
            if self.state.get("status") in LIVE_STATUSES:
                self._keep_beating()
            else:
                self._stop.set()
            return dict(self.state)

    def mark_failed(self, error: str) -> dict[str, Any]:
        """Record that the run failed with ``error``."""
        return self.update(status="failed", error=error)

    def emit(self, event: str, state: dict[str, Any]) -> None:
        """Status-sink entry point: fold an event's state into the file."""
        fields = dict(state)
        fields["status"] = fields.get("status") or _EVENT_STATUS.get(event, "training")
        self.update(**fields)

    def close(self) -> None:
        """Stop the heartbeat; the file is not written after this returns (but :meth:`update` still may)."""
        with self._lock:
            self._closed = True
            self._stop.set()
            beating = self._heartbeat
        if beating is not None and beating is not threading.current_thread():
            beating.join(timeout=10)

    def read(self) -> dict[str, Any]:
        """The state as the file holds it now."""
        return json.loads(self.path.read_text(encoding="utf-8"))

    def _keep_beating(self) -> None:
        """Start the heartbeat thread unless it runs (called holding the lock)."""
        if self._closed or self.heartbeat_seconds <= 0:
            return
        if self._heartbeat is not None and self._heartbeat.is_alive() and not self._stop.is_set():
            return
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(
            target=_beat_until_stopped,
            args=(weakref.ref(self), self._stop, self.heartbeat_seconds),
            name=f"heartbeat {self.path.name}",
            daemon=True,
        )
        self._heartbeat.start()

    def _beat(self, stop: threading.Event) -> bool:
        """Write a fresh ``heartbeat_at``; False once there is nothing more to beat for."""
        with self._lock:
            if stop.is_set() or self.state.get("status") not in LIVE_STATUSES:
                return False
            self.state["heartbeat_at"] = _now()
            try:
                self._write(create=False)
            except FileNotFoundError:  # the directory is gone: the run's files were removed
                return False
            except OSError:  # a full disk, say: the next beat tries again
                pass
            return True

    def _write(self, create: bool = True) -> None:
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(self.state, handle, indent=2, default=str)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o644)  # mkstemp makes it private; a status file is for everyone to read
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _beat_until_stopped(
    writer_ref: weakref.ref[TrainingStatusWriter], stop: threading.Event, seconds: float
) -> None:
    """The heartbeat thread; a writer dropped without :meth:`~TrainingStatusWriter.close` ends it too."""
    while not stop.wait(seconds):
        writer = writer_ref()
        if writer is None or not writer._beat(stop):
            return
        del writer


# -- reading it back -------------------------------------------------------------------


@dataclass(frozen=True)
class Liveness:
    """Whether the run a status file describes still lives, as far as a reader can tell."""

    verdict: str
    """``running``; ``died`` (its process on this host is gone); ``stale`` (no heartbeat for
    :data:`STALE_AFTER_SECONDS`); ``ended`` (a final status); ``unknown`` (no pid nor heartbeat
    recorded, as in files from before they were)."""
    pid: int | None = None
    host: str | None = None
    heartbeat_age: float | None = None
    """Seconds since the last heartbeat; None when none is recorded."""


def liveness(state: dict[str, Any], *, now: datetime | None = None) -> Liveness:
    """Judge ``state`` (a status file's JSON): is its run still going?

    A live status (``starting``, ``training``) whose process ran on this host and is
    gone is ``died``; one whose heartbeat is too old is ``stale``, wherever it runs.
    """
    pid, host = state.get("pid"), state.get("host")
    pid = pid if isinstance(pid, int) and not isinstance(pid, bool) else None
    host = host if isinstance(host, str) else None
    beat = _parse_time(state.get("heartbeat_at"))
    age = None if beat is None else ((now or datetime.now(timezone.utc)) - beat).total_seconds()
    status = state.get("status")
    if status not in LIVE_STATUSES:
        verdict = "ended" if status in STATUSES else "unknown"
    elif pid is not None and host == this_host() and not process_alive(pid):
        verdict = "died"
    elif age is not None and age > STALE_AFTER_SECONDS:
        verdict = "stale"
    elif pid is None and age is None:
        verdict = "unknown"
    else:
        verdict = "running"
    return Liveness(verdict, pid, host, age)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:  # a zombie has ended but is not yet reaped by its parent
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def this_host() -> str:
    """This machine's host name, as lock and status files record it."""
    return socket.gethostname()


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _windows_process_alive(pid: int) -> bool:
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return bool(kernel32.GetLastError() == 5)  # ERROR_ACCESS_DENIED: it exists
    try:
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)
