"""How ``trainer eval`` prints a summary, and two side by side."""

from __future__ import annotations

from typing import Any

from trainer.evaluation.compare import verdict

STOP_NAMES = {"eos": "end of turn", "stop_sequence": "stop sequence", "max_new_tokens": "token limit"}


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary of one evaluation, a line per figure (the model's only when the summary names it)."""
    lines = [f"model     {summary['model']}"] if summary.get("model") else []
    unrendered = summary["unrendered"]
    lines.append(
        f"rows      {summary['evaluated']:,} evaluated"
        + (f", {len(unrendered):,} the profile cannot render" if unrendered else "")
    )
    for item in unrendered[:5]:
        lines.append(f"          row {item['row']}: {item['error']}")
    if len(unrendered) > 5:
        lines.append(f"          ... and {len(unrendered) - 5} more (see the results file)")
    lines.append(f"format    {_format(summary)}")
    lines.append(f"accuracy  {_accuracy(summary)}")
    if summary.get("samples"):
        k = summary["samples"]
        lines.append(f"pass@1    {_percent(summary['pass@1'])}   pass@{k} {_percent(summary[f'pass@{k}'])}")
    lines.append(f"tokens    {_tokens(summary)}")
    lines.append(f"stops     {_stops(summary)}")
    lines.append(f"results   {summary['output']}")
    return lines


def comparison_lines(a: dict[str, Any], b: dict[str, Any], paired: dict[str, Any]) -> list[str]:
    """Two evaluations of the same rows side by side, with the paired counts and the test."""
    rows = [
        ("", "A", "B (baseline)"),
        ("model", a["model"], b["model"]),
        ("evaluated", f"{a['evaluated']:,}", f"{b['evaluated']:,}"),
        ("format", _format(a), _format(b)),
        ("accuracy", _accuracy(a), _accuracy(b)),
        ("tokens", _tokens(a), _tokens(b)),
    ]
    width = max(len(row[1]) for row in rows) + 3
    lines = [f"{label:<10}{left:<{width}}{right}" for label, left, right in rows]
    lines.append(
        f"paired    {paired['rows']:,} rows scored by both: right only with A {paired['only_a']}, "
        f"only with B {paired['only_b']}, both {paired['both']}, neither {paired['neither']}"
    )
    lines.append(f"McNemar   exact p = {paired['p_value']:.4g}: {verdict(paired, 'A', 'B')}")
    lines.append(f"results   {a['output']}, {b['output']}")
    return lines


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _format(summary: dict[str, Any]) -> str:
    return f"{_percent(summary['format_rate'])} ({summary['format_ok']:,}/{summary['evaluated']:,})"


def _accuracy(summary: dict[str, Any]) -> str:
    if summary["accuracy"] is None:
        return "n/a (no row has an expected answer)"
    low, high = summary["accuracy_interval"]
    by = f", {summary['accuracy_by']}" if summary.get("accuracy_by") else ""
    return (
        f"{_percent(summary['accuracy'])} ({summary['correct']:,}/{summary['scored']:,}{by}; "
        f"95% CI {_percent(low)}-{_percent(high)})"
    )


def _tokens(summary: dict[str, Any]) -> str:
    mean = summary["mean_generated_tokens"]
    speed = summary["generated_tokens_per_second"]
    return (
        f"{'n/a' if mean is None else f'{mean:.1f}'} per answer, "
        f"{'n/a' if speed is None else f'{speed:,.0f}'} generated tokens/s, {summary['seconds']:.1f} s"
    )


def _stops(summary: dict[str, Any]) -> str:
    counts = summary["stops"]
    return ", ".join(f"{STOP_NAMES.get(name, name)} {count:,}" for name, count in counts.items()) or "none"
