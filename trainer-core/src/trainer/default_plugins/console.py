"""Built-in plugin: one progress line per logging step, on standard error."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

from trainer.hookspecs import hookimpl
from trainer.monitoring.sinks import RunContext


class ConsoleProgress:
    """Prints ``step 40/300 (13%)  loss 1.2345  lr 9.8e-04  5,900 tok/s  eta 1m32s``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def emit(self, event: str, state: dict[str, Any]) -> None:
        """Print a line for logging, evaluation and the end of a run."""
        if event == "log":
            self._print(self._progress(state))
        elif event == "evaluate" and state.get("eval_loss") is not None:
            self._print(f"step {state.get('step')}: eval loss {state['eval_loss']:.4f}")

    def close(self) -> None:
        """Nothing to release."""

    def _progress(self, state: dict[str, Any]) -> str:
        step, total = state.get("step") or 0, state.get("total_steps") or 0
        parts = [f"step {step}/{total} ({100 * step // total}%)" if total else f"step {step}"]
        if state.get("loss") is not None:
            parts.append(f"loss {state['loss']:.4f}")
        if state.get("learning_rate") is not None:
            parts.append(f"lr {state['learning_rate']:.1e}")
        if state.get("tokens_per_second"):
            parts.append(f"{state['tokens_per_second']:,.0f} tok/s")
        elapsed = state.get("elapsed_seconds")
        if elapsed and step and total > step:
            parts.append(f"eta {_duration(elapsed / step * (total - step))}")
        return "  ".join(parts)

    def _print(self, line: str) -> None:
        print(line, file=self.stream or sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def console_sink(run: RunContext) -> ConsoleProgress:
    """A :class:`ConsoleProgress` writing to standard error."""
    return ConsoleProgress()


@hookimpl
def register_status_sinks(register: Callable[..., None]) -> None:
    """Register the console progress sink."""
    register(console_sink)
