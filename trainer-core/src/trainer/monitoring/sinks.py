"""The status-sink contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

EVENTS = ("start", "log", "evaluate", "preview", "checkpoint", "end", "failure")
"""The events a sink receives, in the order a run produces them."""


@dataclass(frozen=True)
class RunContext:
    """What a sink factory is told about the run it will watch."""

    output_dir: Path
    """Where the run writes its model and files."""
    status_file: Path
    """Where the JSON status file goes."""
    config: dict[str, Any] = field(default_factory=dict)
    """The run's resolved configuration, as plain data."""


@runtime_checkable
class StatusSink(Protocol):
    """Receives a run's progress events."""

    def emit(self, event: str, state: dict[str, Any]) -> None:
        """Handle one event.

        :param event: one of :data:`EVENTS`.
        :param state: the run's current state (``status``, ``step``, ``loss``, ...);
            the sink must not modify it.
        """

    def close(self) -> None:
        """Release resources; called once when the run ends, however it ends."""
