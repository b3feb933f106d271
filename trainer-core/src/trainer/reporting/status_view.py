"""A run's status file as a few readable lines, for ``trainer status``.

Every value may be missing, null or of an unexpected type (the file comes from
an engine that keeps growing it): each shows as ``-`` or as written, never as
an exception.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from trainer.monitoring.status import Liveness, liveness
from trainer.reporting.run_files import number, series

SPARK_BARS = "▁▂▃▄▅▆▇█"
"""The levels of the loss sparkline, lowest first."""
ASCII_BARS = "_.-=*#"
"""The levels used where the terminal cannot print :data:`SPARK_BARS`."""
SPARK_WIDTH = 40
"""The sparkline's width in characters; longer loss histories are averaged into this many."""
HISTORY_ROWS = 12
"""Preview rounds listed; older ones are counted, not shown."""
MISSING = "-"


def format_status(
    state: dict[str, Any],
    *,
    status_file: str | Path | None = None,
    metrics: list[dict[str, Any]] | None = None,
    unicode: bool = True,
    now: datetime | None = None,
) -> str:
    """The status file ``state`` as aligned ``label  value`` lines, then its previews.

    A run said to be ``starting`` or ``training`` whose process is gone shows as
    ``died``, and one whose heartbeat stopped as ``stale`` (see
    :func:`trainer.monitoring.status.liveness`).

    :param status_file: shown in the first line.
    :param metrics: ``metrics.jsonl`` records; their ``loss`` values draw the trend line.
    :param unicode: use block characters for the sparkline and ``…`` for cut text;
        ``False`` keeps the output ASCII.
    :param now: the time to judge the heartbeat against; default: now.
    """
    alive = liveness(state, now=now)
    rows: list[tuple[str, str]] = []
    if status_file is not None:
        rows.append(("file", f"{status_file}  (updated {_text(state.get('updated_at'))})"))
    rows += [
        ("status", status_text(state, alive)),
        ("process", _process(alive)),
        ("progress", _progress(state)),
        ("loss", _loss(state)),
        ("trend", _trend(metrics or [], unicode)),
        ("eval loss", _fixed(state.get("eval_loss"), 4)),
        ("lr", _float(state.get("learning_rate"), ".2e")),
        ("speed", _speed(state)),
        (
            "time",
            f"elapsed {_duration(state.get('elapsed_seconds'))}, ETA {_duration(state.get('eta_seconds'))}",
        ),
        ("memory", _suffixed(state.get("peak_memory_mb"), ",.0f", " MB peak")),
        ("checkpoint", _text(state.get("last_checkpoint"))),
        ("final eval", _final_eval(state.get("final_eval"))),
        ("error", _text(state.get("error"))),
        ("sink errors", _sink_errors(state.get("sink_errors"))),
    ]
    width = max(len(label) for label, _ in rows) + 2
    lines = [f"{label.ljust(width)}{value}" for label, value in rows]
    lines += _preview_lines(state.get("previews"), width, unicode)
    lines += _history_lines(state.get("preview_history"), width)
    return "\n".join(line.rstrip() for line in lines)


# -- the status lines ----------------------------------------------------------------


def status_text(state: dict[str, Any], alive: Liveness) -> str:
    """The status as written, or why it cannot be true: ``died (...)``, ``stale (...)``."""
    if alive.verdict == "died":
        last = "never recorded" if alive.heartbeat_age is None else f"{_duration(alive.heartbeat_age)} ago"
        return f"died (process {alive.pid} is gone; last heartbeat {last})"
    if alive.verdict == "stale":
        return (
            f"stale (no heartbeat for {_duration(alive.heartbeat_age)}; "
            f"process {_text(alive.pid)} on {_text(alive.host)})"
        )
    return _text(state.get("status"))


def _process(alive: Liveness) -> str:
    """``1234 on gpu-3, heartbeat 4s ago``: the process that wrote the file."""
    if alive.pid is None and alive.host is None:
        return MISSING
    text = f"{_text(alive.pid)} on {_text(alive.host)}"
    if alive.heartbeat_age is not None:
        text += f", heartbeat {_duration(alive.heartbeat_age)} ago"
    return text


def _progress(state: dict[str, Any]) -> str:
    step, total = number(state.get("step")), number(state.get("total_steps"))
    text = f"step {_float(step, '.0f')}/{_float(total, '.0f')}"
    if step is not None and total:
        text += f" ({step / total * 100:.1f}%)"
    text += f", epoch {_float(state.get('epoch'), '.2f')}"
    resumed = number(state.get("resumed_from_step"))
    return text + (f", resumed from step {resumed:.0f}" if resumed is not None else "")


def _loss(state: dict[str, Any]) -> str:
    loss, first = state.get("loss"), state.get("first_loss")
    text = _fixed(loss, 4)
    if first is not None:
        text += f"  (first {_fixed(first, 4)} -> {_fixed(loss, 4)})"
    return text


def _trend(metrics: list[dict[str, Any]], unicode: bool) -> str:
    _, losses = series(metrics, "loss")
    if not losses:
        return MISSING
    last = " ".join(f"{value:.4f}" for value in losses[-5:])
    return f"{sparkline(losses, unicode=unicode)}  last {min(5, len(losses))}: {last}  ({len(losses)} logged)"


def _speed(state: dict[str, Any]) -> str:
    mfu = state.get("mfu")
    return (
        f"{_suffixed(state.get('tokens_per_second'), ',.0f', ' tokens/s')}, "
        f"{_suffixed(state.get('tokens_seen'), ',.0f', ' tokens seen')}"
        + (f", MFU {mfu * 100:.1f}%" if isinstance(mfu, (int, float)) else "")
    )


def _sink_errors(errors: Any) -> str:
    if not errors:
        return MISSING
    if not isinstance(errors, list):
        return _text(errors)
    parts = [
        f"{_text(entry.get('sink'))}: {_text(entry.get('error'))}"
        if isinstance(entry, dict)
        else _text(entry)
        for entry in errors
    ]
    return "; ".join(parts)


def sparkline(values: list[float], *, width: int = SPARK_WIDTH, unicode: bool = True) -> str:
    """``values`` as one character each (averaged down to ``width``), lowest level for the minimum."""
    if len(values) > width:
        buckets = [values[len(values) * i // width : len(values) * (i + 1) // width] for i in range(width)]
        values = [sum(bucket) / len(bucket) for bucket in buckets]
    bars = SPARK_BARS if unicode else ASCII_BARS
    low, high = min(values), max(values)
    if high == low:
        return bars[len(bars) // 2] * len(values)
    return "".join(bars[round((value - low) / (high - low) * (len(bars) - 1))] for value in values)


# -- previews ------------------------------------------------------------------------


def _preview_lines(latest: Any, width: int, unicode: bool) -> list[str]:
    label = "previews".ljust(width)
    if not isinstance(latest, dict):
        return [f"{label}{MISSING}"]
    samples = [sample for sample in latest.get("samples") or [] if isinstance(sample, dict)]
    lines = [
        f"{label}step {_float(latest.get('step'), '.0f')}: format {_rate(latest.get('format_rate'))}, "
        f"accuracy {_rate(latest.get('accuracy'))}, {_suffixed(latest.get('seconds'), '.1f', ' s')}"
    ]
    lines += [" " * width + line for line in _source_lines(latest.get("sources"))]
    if samples:
        # A data mixture's samples name their source.
        mixed = any("source" in sample for sample in samples)
        rows = [
            [
                str(index),
                *([excerpt(sample.get("source"), 12, unicode)] if mixed else []),
                _flag(sample.get("format_ok")),
                _flag(sample.get("correct")),
                excerpt(sample.get("prompt"), 40, unicode),
                excerpt(sample.get("expected"), 14, unicode),
                excerpt(sample.get("generated"), 60, unicode),
            ]
            for index, sample in enumerate(samples, start=1)
        ]
        headers = ["#", "source", "format", "correct", "prompt", "expected", "generated"]
        if not mixed:
            headers.remove("source")
        lines += [" " * width + line for line in _table(rows, headers)]
    return lines


def _source_lines(sources: Any) -> list[str]:
    """A data mixture's round, source by source: ``  gsm8k (regime3)  format 75.0%, accuracy 25.0%``.

    The profile is left out where the source is named after it.
    """
    if not isinstance(sources, dict):
        return []
    labelled = []
    for name, rates in sources.items():
        if not isinstance(rates, dict):
            labelled.append((str(name), _text(rates)))
            continue
        profile = rates.get("profile")
        label = f"{name} ({profile})" if profile and profile != name else str(name)
        format_rate, accuracy = _rate(rates.get("format_rate")), _rate(rates.get("accuracy"))
        labelled.append((label, f"format {format_rate}, accuracy {accuracy}"))
    width = max((len(label) for label, _ in labelled), default=0) + 2
    return [f"  {label.ljust(width)}{text}" for label, text in labelled]


def _history_lines(history: Any, width: int) -> list[str]:
    """The preview rounds as a table; a data mixture's gets a column per source.

    A source's column shows its format rate, and its accuracy after a slash once any
    round shown has one (a source without expected answers has none).
    """
    label = "history".ljust(width)
    rounds = [entry for entry in history if isinstance(entry, dict)] if isinstance(history, list) else []
    if not rounds:
        return [f"{label}{MISSING}"]
    shown = rounds[-HISTORY_ROWS:]
    per_source: list[dict[str, Any]] = [_dict(entry.get("sources")) for entry in shown]
    names = list(dict.fromkeys(str(name) for sources in per_source for name in sources))
    scored = {
        name
        for sources in per_source
        for name, rates in sources.items()
        if isinstance(rates, dict) and rates.get("accuracy") is not None
    }
    rows = [
        [
            _float(entry.get("step"), ".0f"),
            _rate(entry.get("format_rate")),
            _rate(entry.get("accuracy")),
            *(_source_rates(sources.get(name), name in scored) for name in names),
        ]
        for entry, sources in zip(shown, per_source, strict=True)
    ]
    table = _table(rows, ["step", "format", "accuracy", *names])
    lines = [label + table[0]] + [" " * width + line for line in table[1:]]
    if scored:
        which = "each source" if scored >= set(names) else ", ".join(name for name in names if name in scored)
        lines.append(" " * width + f"({which}: format/accuracy)")
    if len(rounds) > HISTORY_ROWS:
        lines.append(" " * width + f"({len(rounds) - HISTORY_ROWS} earlier rounds not shown)")
    return lines


def _source_rates(rates: Any, scored: bool) -> str:
    """One source's cell of the history table: ``75.0%``, or ``75.0%/25.0%`` for a scored source."""
    if not isinstance(rates, dict):
        return _text(rates)
    text = _rate(rates.get("format_rate"))
    return f"{text}/{_rate(rates.get('accuracy'))}" if scored else text


def excerpt(value: Any, limit: int, unicode: bool = True) -> str:
    """``value`` on one line (newlines shown as ``⏎`` or ``|``), cut to ``limit`` characters."""
    if value is None:
        return MISSING
    newline, ellipsis = (" ⏎ ", "…") if unicode else (" | ", "...")
    text = newline.join(" ".join(line.split()) for line in str(value).strip().splitlines())
    return text if len(text) <= limit else text[: limit - len(ellipsis)].rstrip() + ellipsis


def _table(rows: list[list[str]], headers: list[str]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, *rows]
    return ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines]


# -- values --------------------------------------------------------------------------


def _final_eval(final: Any) -> str:
    """The evaluation after training: format rate and accuracy with its interval, on how many rows."""
    if not isinstance(final, dict):
        return MISSING
    parts = [f"format {_rate(final.get('format_rate'))}"]
    accuracy = final.get("accuracy")
    interval = final.get("accuracy_interval")
    if accuracy is not None:
        between = ""
        if isinstance(interval, list) and len(interval) == 2:
            between = f" (95% CI {_rate(interval[0])}-{_rate(interval[1])})"
        parts.append(f"accuracy {_rate(accuracy)}{between}")
    return f"{', '.join(parts)} on {final.get('evaluated')} rows of {final.get('dataset')}"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return MISSING if value is None or value == "" else str(value)


def _float(value: Any, spec: str) -> str:
    """A number formatted with ``spec``; anything else as written; ``-`` for none."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return format(value, spec)


def _fixed(value: Any, digits: int) -> str:
    return _float(value, f".{digits}f")


def _suffixed(value: Any, spec: str, suffix: str) -> str:
    text = _float(value, spec)
    return text if text == MISSING else text + suffix


def _rate(value: Any) -> str:
    """A fraction 0-1 as a percentage."""
    rate = number(value)
    return _text(value) if rate is None else f"{rate * 100:.1f}%"


def _flag(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return _text(value)


def _duration(value: Any) -> str:
    seconds = number(value)
    if seconds is None:
        return _text(value)
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
