"""Fan-out of a run's events to every status sink, shielding the run from their bugs."""

from __future__ import annotations

import logging
from typing import Any

from trainer.monitoring.sinks import StatusSink
from trainer.monitoring.status import initial_state

log = logging.getLogger(__name__)


class StatusHub:
    """Keeps the run's state and hands each event to every sink.

    A sink that raises is disabled (and closed) for the rest of the run with one
    warning and the error is kept in ``state["sink_errors"]``: a monitoring bug
    must never cost a training run.
    """

    def __init__(self, sinks: list[tuple[str, StatusSink]]) -> None:
        self.sinks = list(sinks)
        self.state: dict[str, Any] = {**initial_state(), "sink_errors": []}

    def emit(self, event: str, **fields: Any) -> None:
        """Merge ``fields`` into the state and send ``event`` to every live sink."""
        self.state.update(fields)
        for name, sink in list(self.sinks):
            try:
                sink.emit(event, dict(self.state))
            except Exception as exc:  # the sink's bug, not the run's
                self._disable(name, sink, f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Close every sink; errors are recorded, not raised."""
        for name, sink in list(self.sinks):
            try:
                sink.close()
            except Exception as exc:
                self._disable(name, sink, f"{type(exc).__name__} on close: {exc}", close=False)

    def record_error(self, name: str, error: str) -> None:
        """Record that ``name`` (a sink or a plugin callback) failed and is disabled; warn once."""
        self.state["sink_errors"].append({"sink": name, "error": error})
        log.warning("%s disabled for the rest of the run: %s", name, error)
        for other_name, other in list(self.sinks):
            try:
                other.emit("sink_error", dict(self.state))
            except Exception as exc:
                self._disable(other_name, other, f"{type(exc).__name__}: {exc}")

    def _disable(self, name: str, sink: StatusSink, error: str, close: bool = True) -> None:
        self.sinks.remove((name, sink))
        try:  # let it release what it holds: the status file's heartbeat must not outlive it
            if close:
                sink.close()
        except Exception:
            pass  # it is already recorded as broken
        self.record_error(name, error)
