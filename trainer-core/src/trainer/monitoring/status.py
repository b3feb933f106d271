"""The JSON status file a run keeps up to date."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STATUSES = ("starting", "training", "completed", "failed", "interrupted")

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
        "error": None,
    }


class TrainingStatusWriter:
    """Writes a run's state to a JSON file, atomically.

    Each write goes to a temporary file in the same directory and is renamed over
    the status file, so a reader sees the old state or the new one, never half of
    either. It is also a status sink: :meth:`emit` folds each event into the
    state and writes it.

    :param status_file: the path of the JSON file; its directory is created.
    """

    def __init__(self, status_file: str | os.PathLike[str]) -> None:
        self.path = Path(status_file)
        self.state: dict[str, Any] = initial_state()

    def update(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the state and write it; return the new state."""
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {fields['status']!r}")
        self.state.update(fields)
        self.state["updated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._write()
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
        """Nothing to release: every write is complete on its own."""

    def read(self) -> dict[str, Any]:
        """The state as the file holds it now."""
        return json.loads(self.path.read_text(encoding="utf-8"))

    def _write(self) -> None:
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
