"""Built-in plugin: ``metrics.jsonl`` (one line per logging step) and ``previews.jsonl`` (one per round)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainer.hookspecs import hookimpl
from trainer.monitoring.sinks import RunContext
from trainer.reporting.run_files import METRICS_FILE, PREVIEWS_FILE

LOG_KEYS = (
    "step",
    "epoch",
    "loss",
    "learning_rate",
    "tokens_seen",
    "tokens_per_second",
    "mfu",
    "elapsed_seconds",
)


class MetricsLog:
    """Appends training metrics and preview rounds to JSONL files in the output directory."""

    def __init__(self, output_dir: Path) -> None:
        self.metrics = output_dir / METRICS_FILE
        self.previews = output_dir / PREVIEWS_FILE

    def emit(self, event: str, state: dict[str, Any]) -> None:
        """Write a line for ``log``, ``evaluate`` and ``preview`` events."""
        if event == "log":
            self._append(self.metrics, {key: state.get(key) for key in LOG_KEYS})
        elif event == "evaluate":
            self._append(self.metrics, {"step": state.get("step"), "eval_loss": state.get("eval_loss")})
        elif event == "preview" and state.get("previews"):
            self._append(self.previews, state["previews"])

    def close(self) -> None:
        """Nothing to release: each line is written and closed at once."""

    @staticmethod
    def _append(path: Path, record: dict[str, Any]) -> None:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


def metrics_log_sink(run: RunContext) -> MetricsLog:
    """A :class:`MetricsLog` in the run's output directory."""
    return MetricsLog(run.output_dir)


@hookimpl
def register_status_sinks(register: Callable[..., None]) -> None:
    """Register the metrics and previews log."""
    register(metrics_log_sink)
