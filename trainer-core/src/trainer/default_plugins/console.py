"""Built-in plugin: training progress on standard error."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

from trainer.hookspecs import hookimpl
from trainer.monitoring.sinks import RunContext

BAR_WIDTH = 24


class ConsoleProgress:
    """Progress on standard error: a bar redrawn in place on a terminal, one line per log step otherwise.

    ``[#########...............]  step 120/300 (40%)  loss 1.2345  lr 9.8e-04  5,900 tok/s  eta 1m32s``
    """

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream
        self.live = live
        self.drawn = False

    def emit(self, event: str, state: dict[str, Any]) -> None:
        """Draw progress on log steps; evaluations, preview rounds and the end get lines of their own."""
        if event == "log":
            self._show(self._progress(state))
        elif event == "evaluate" and state.get("eval_loss") is not None:
            self._line(f"step {state.get('step')}: eval loss {state['eval_loss']:.4f}")
        elif event == "preview" and state.get("previews"):
            round_ = state["previews"]
            accuracy = "-" if round_.get("accuracy") is None else f"{round_['accuracy']:.0%}"
            self._line(
                f"step {round_['step']}: previews format {round_['format_rate']:.0%}, accuracy {accuracy}"
            )
        elif event in ("end", "failure") and self.drawn:
            self._line("")

    def close(self) -> None:
        """Nothing to release."""

    def _is_live(self) -> bool:
        if self.live is None:
            stream = self.stream or sys.stderr
            self.live = bool(getattr(stream, "isatty", lambda: False)())
        return self.live

    def _show(self, text: str) -> None:
        if self._is_live():
            self._write("\r\x1b[2K" + text)
            self.drawn = True
        else:
            self._write(text + "\n")

    def _line(self, text: str) -> None:
        # On a terminal, finish the bar's line first so the message does not overwrite it.
        prefix = "\n" if self.drawn else ""
        self.drawn = False
        if text or prefix:
            self._write(prefix + (text + "\n" if text else ""))

    def _progress(self, state: dict[str, Any]) -> str:
        step, total = state.get("step") or 0, state.get("total_steps") or 0
        parts = [f"step {step}/{total} ({100 * step // total}%)" if total else f"step {step}"]
        if total and self._is_live():
            done = BAR_WIDTH * min(step, total) // total
            parts.insert(0, "[" + "#" * done + "." * (BAR_WIDTH - done) + "]")
        if state.get("loss") is not None:
            parts.append(f"loss {state['loss']:.4f}")
        if state.get("learning_rate") is not None:
            parts.append(f"lr {state['learning_rate']:.1e}")
        if state.get("tokens_per_second"):
            parts.append(f"{state['tokens_per_second']:,.0f} tok/s")
        eta = state.get("eta_seconds")  # none until a few steps past the first are measured
        if isinstance(eta, (int, float)) and total > step:
            parts.append(f"eta {_duration(eta)}")
        return "  ".join(parts)

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stderr
        stream.write(text)
        stream.flush()


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
