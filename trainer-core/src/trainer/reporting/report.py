"""``report.png`` and ``report.html``: a run's curves, previews and settings, from its output files.

The engine writes a report at the end of every run, so nothing here may fail for
want of optional data: a run without previews, evaluation or a
``trainer_run.json`` (a failed one) gets a report of what it has. matplotlib is
imported only when a figure is drawn.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.reporting.run_files import METRICS_FILE, RUN_INFO_FILE, RunFiles, number, read_run_files, series

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORT_PNG = "report.png"
REPORT_HTML = "report.html"

TRAINING_LOSS = "training loss"
EVALUATION_LOSS = "evaluation loss"
FORMAT_RATE = "format rate"
ACCURACY = "accuracy"


def write_report(output_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.png`` and ``report.html`` into a run's output directory.

    :returns: the paths of the PNG and the HTML page (which embeds the PNG).
    :raises TrainerError: the directory does not exist or holds none of a run's files.
    """
    run = read_run_files(output_dir)
    buffer = io.BytesIO()
    plot_run(run).savefig(buffer, format="png")
    png = buffer.getvalue()
    png_path = _replace_file(run.directory / REPORT_PNG, png)
    html_path = _replace_file(run.directory / REPORT_HTML, render_html(run, png).encode("utf-8"))
    return png_path, html_path


def plot_run(run: RunFiles) -> Figure:
    """Two panels against the step: losses on the left, preview rates (0-1) on the right.

    Lines are labelled :data:`TRAINING_LOSS`, :data:`EVALUATION_LOSS`,
    :data:`FORMAT_RATE` and :data:`ACCURACY`; a series with no points is left out.
    A data mixture's previews are drawn source by source instead, one colour each,
    labelled ``gsm8k (regime3): format rate`` and ``gsm8k (regime3): accuracy``
    (:func:`source_label`). The title names the run directory, the profile (a
    mixture's sources) and the status; losses that span a factor of 20 or more go on
    a log axis numbered between its decades too.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)  # Agg, whatever backend pyplot would pick
    loss_axes, rate_axes = figure.subplots(1, 2, sharex=True)
    figure.suptitle(_plot_title(run))

    train_steps, train_losses = series(run.metrics, "loss")
    eval_steps, eval_losses = series(run.metrics, "eval_loss")
    if train_losses:
        loss_axes.plot(train_steps, train_losses, label=TRAINING_LOSS, color="tab:blue", linewidth=1.2)
    if eval_losses:
        loss_axes.plot(eval_steps, eval_losses, label=EVALUATION_LOSS, color="tab:orange", marker="o")
    losses = train_losses + eval_losses
    if losses and min(losses) > 0 and max(losses) / min(losses) >= 20:
        loss_axes.set_yscale("log")  # the first steps would flatten the rest of the curve
        _label_log_axis(loss_axes, min(losses), max(losses))
    _finish_axes(loss_axes, "loss", bool(losses), f"no loss logged (no {METRICS_FILE})")

    if run.sources:
        has_rates = _plot_sources(rate_axes, run)
    else:
        rate_steps, format_rates = series(run.previews, "format_rate")
        accuracy_steps, accuracies = series(run.previews, "accuracy")
        if format_rates:
            rate_axes.plot(rate_steps, format_rates, label=FORMAT_RATE, color="tab:green", marker="o")
        if accuracies:
            rate_axes.plot(accuracy_steps, accuracies, label=ACCURACY, color="tab:red", marker="s")
        has_rates = bool(format_rates or accuracies)
    final = (run.status or {}).get("final_eval")
    final_step = (run.status or {}).get("step")
    has_final = isinstance(final, dict) and isinstance(final_step, (int, float))
    if isinstance(final, dict) and has_final:
        # A mixture's sources take the colours; its final evaluation is set apart in grey.
        format_colour, accuracy_colour = ("black", "gray") if run.sources else ("tab:green", "tab:red")
        for key, label, color, marker in (
            ("format_rate", "final eval: format", format_colour, "*"),
            ("accuracy", "final eval: accuracy", accuracy_colour, "*"),
        ):
            if isinstance(final.get(key), (int, float)):
                rate_axes.scatter([final_step], [final[key]], label=label, color=color, marker=marker, s=160)
    rate_axes.set_ylim(-0.03, 1.03)
    _finish_axes(rate_axes, "preview rate", has_rates or has_final, "no previews")
    return figure


def _plot_sources(axes: Any, run: RunFiles) -> bool:
    """A data mixture's preview rates, one colour per source: format rate solid, accuracy dashed.

    :returns: whether any source had a point to draw.
    """
    drawn = False
    for index, (name, profile) in enumerate(run.sources.items()):
        rounds = source_rounds(run.previews, name)
        label, color = source_label(name, profile), f"C{index % 10}"
        steps, format_rates = series(rounds, "format_rate")
        accuracy_steps, accuracies = series(rounds, "accuracy")
        if format_rates:
            axes.plot(steps, format_rates, label=f"{label}: {FORMAT_RATE}", color=color, marker="o")
        if accuracies:
            axes.plot(
                accuracy_steps,
                accuracies,
                label=f"{label}: {ACCURACY}",
                color=color,
                marker="s",
                linestyle="--",
                alpha=0.8,
            )
        drawn = drawn or bool(format_rates or accuracies)
    return drawn


def source_rounds(rounds: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The rates of the mixture source ``name``, ``{step, format_rate, accuracy}``, in the rounds with it."""
    return [{**_rates(round_, name), "step": round_.get("step")} for round_ in rounds if _rates(round_, name)]


def _rates(round_: dict[str, Any], name: str) -> dict[str, Any]:
    """The round's ``sources[name]`` (``profile``, ``format_rate``, ``accuracy``); ``{}`` when it has none."""
    sources = round_.get("sources")
    rates = sources.get(name) if isinstance(sources, dict) else None
    return rates if isinstance(rates, dict) else {}


def source_label(name: str, profile: str | None) -> str:
    """A mixture source as the report names it: ``gsm8k (regime3)``.

    The name alone where the profile is not known, or where the source is named after it.
    """
    return f"{name} ({profile})" if profile and profile != name else name


def _plot_title(run: RunFiles) -> str:
    """The figure's title: the run directory's name, the profile when recorded, and the status.

    ``run directory: run  |  profile: regime3  |  status: completed``; a data mixture's
    ``run directory: run  |  mixture: gsm8k (regime3), tools (tool_use)  |  status: training``.
    """
    status = (run.status or {}).get("status") or ("completed" if run.run_info else "unknown")
    parts = [f"run directory: {run.directory.resolve().name}"]
    trained = _what_trained(run)
    if trained is not None:
        parts.append(f"{trained[0]}: {trained[1]}")
    parts.append(f"status: {status}")
    return "  |  ".join(parts)


def _what_trained(run: RunFiles) -> tuple[str, str] | None:
    """``("mixture", "gsm8k (regime3), chat")`` or ``("profile", "regime3")``; None when not recorded."""
    if run.sources:
        return "mixture", ", ".join(source_label(*source) for source in run.sources.items())
    if run.profile is not None:
        return "profile", str(run.profile)
    return None


def _label_log_axis(axes: Any, low: float, high: float) -> None:
    """Number the log axis between its decades too, as plain numbers (0.3, 2, 5, 20).

    matplotlib labels only the powers of ten once a log axis spans more than a decade, which
    leaves a loss of 0.5 or 3 to be guessed. Fewer ticks are labelled the more decades the
    losses span, so the labels do not run into each other.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    decades = math.log10(high / low)
    subs = (2.0, 3.0, 5.0) if decades <= 2.5 else (2.0, 5.0) if decades <= 4 else (3.0,)
    plain = FuncFormatter(lambda value, _position: f"{value:g}")
    axes.yaxis.set_major_formatter(plain)
    axes.yaxis.set_minor_locator(LogLocator(base=10.0, subs=subs))
    axes.yaxis.set_minor_formatter(plain if decades <= 6 else NullFormatter())
    axes.tick_params(axis="y", which="minor", labelsize="small")
    axes.grid(which="minor", axis="y", alpha=0.12)


def _finish_axes(axes: Any, ylabel: str, has_data: bool, empty_note: str) -> None:
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    if has_data:
        # A mixture's curves (two a source) fill a legend; smaller type leaves them room.
        axes.legend(fontsize="small" if len(axes.get_legend_handles_labels()[1]) > 4 else None)
    else:
        axes.text(0.5, 0.5, empty_note, transform=axes.transAxes, ha="center", va="center", color="gray")


def _replace_file(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a rename, so a reader never sees half a file."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a report is for everyone to read
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


# -- the HTML page -------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { margin: 0; white-space: pre-wrap; max-width: 40em; font-size: 0.95em; }
.error { background: #fdecea; border: 1px solid #f5c2c0; padding: 0.6em; white-space: pre-wrap; }
.muted { color: #777; } img { max-width: 100%; }
"""

_SHOWN_SEPARATELY = ("previews", "preview_history", "sink_errors", "error", "final_eval")


def render_html(run: RunFiles, png: bytes) -> str:
    """A self-contained page: the plot (embedded), status, previews, metrics, data report, config."""
    status = run.status or {}
    info = run.run_info or {}
    title = f"Training report: {run.directory.resolve().name}"
    trained = _what_trained(run)
    if trained is not None:
        title += f", {trained[0]} of {trained[1]}" if trained[0] == "mixture" else f", profile {trained[1]}"
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">{_e(run.directory)} &middot; report written {_e(generated)}</p>',
    ]
    if status.get("error"):
        parts.append(f'<div class="error"><b>Error:</b> {_e(status["error"])}</div>')
    encoded = base64.b64encode(png).decode("ascii")
    parts.append(f'<img alt="loss and preview rates against steps" src="data:image/png;base64,{encoded}">')

    parts.append("<h2>Status</h2>")
    if run.status is None:
        parts.append(f'<p class="muted">no status file ({_e(run.status_file.name)})</p>')
    else:
        shown = {key: value for key, value in status.items() if key not in _SHOWN_SEPARATELY}
        parts.append(_key_value_table(shown))
    sink_errors = status.get("sink_errors")
    if isinstance(sink_errors, list) and sink_errors:
        parts.append("<h3>Status sink errors</h3>")
        parts.append(
            _table(
                ["sink", "error"],
                [
                    [_cell(entry.get("sink")), _cell(entry.get("error"))]
                    for entry in sink_errors
                    if isinstance(entry, dict)
                ],
            )
        )

    parts += _sources_section(run)
    parts += _preview_sections(run)
    parts += _final_eval_section(status.get("final_eval"))

    parts.append("<h2>Final metrics</h2>")
    parts.append(_section_or_note(info.get("metrics"), f"not recorded (no {RUN_INFO_FILE})"))
    parts.append("<h2>Data</h2>")
    parts += _data_sections(info.get("data"))
    parts.append("<h2>Configuration</h2>")
    config = info.get("config")
    if isinstance(config, dict) and config:
        for section, values in config.items():
            parts.append(f"<h3>{_e(section)}</h3>")
            parts.append(_key_value_table(values if isinstance(values, dict) else {section: values}))
        parts.append(f'<p class="muted">demo model: {_e(_value(info.get("demo_model")))}</p>')
    else:
        parts.append(f'<p class="muted">not recorded (no {RUN_INFO_FILE})</p>')
    parts.append("<h2>Versions</h2>")
    parts.append(_section_or_note(info.get("versions"), "not recorded"))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _final_eval_section(final: Any) -> list[str]:
    """The evaluation after training (``inference.eval_dataset``), when the run had one."""
    if not isinstance(final, dict):
        return []
    interval = final.get("accuracy_interval")
    shown = {
        "dataset": final.get("dataset"),
        "rows evaluated": final.get("evaluated"),
        "format rate": _percent(final.get("format_rate")),
        "accuracy": _percent(final.get("accuracy")),
        "accuracy, 95% interval": " - ".join(_percent(value) for value in interval)
        if isinstance(interval, list)
        else None,
        "right / scored": f"{final.get('correct')} / {final.get('scored')}",
    }
    return ["<h2>Evaluation after training</h2>", _key_value_table(shown)]


def _sources_section(run: RunFiles) -> list[str]:
    """A data mixture's sources: each one's share of the trained tokens and its latest preview rates."""
    if not run.sources:
        return []
    drawn = run.source_shares
    latest: dict[str, Any] = next((round_ for round_ in reversed(run.previews) if round_.get("sources")), {})
    rows = []
    for name, profile in run.sources.items():
        share, rates = drawn.get(name, {}), _rates(latest, name)
        rows.append(
            [
                _cell(name),
                _cell(profile),
                _cell(_drawn_by(share)),
                _cell(share.get("examples"), numeric=True),
                _cell(share.get("trainable_tokens"), numeric=True),
                _cell(_percent(share.get("share")), numeric=True),
                _cell(_percent(rates.get("format_rate")), numeric=True),
                _cell(_percent(rates.get("accuracy")), numeric=True),
            ]
        )
    when = f"at step {_value(latest.get('step'))}" if latest else "(no preview round yet)"
    headers = ["source", "profile", "drawn by", "examples", "trainable tokens", "share of trained tokens"]
    return [
        "<h2>Sources</h2>",
        f'<p class="muted">a data mixture: what each source put into training, and its preview '
        f"rates {_e(when)}</p>",
        _table([*headers, FORMAT_RATE, ACCURACY], rows),
    ]


def _drawn_by(share: dict[str, Any]) -> str | None:
    """How a source was drawn: ``weight 0.5`` or ``repeat 2``."""
    if share.get("weight") is not None:
        return f"weight {_value(share['weight'])}"
    if share.get("repeat") is not None:
        return f"repeat {_value(share['repeat'])}"
    return None


def _preview_sections(run: RunFiles) -> list[str]:
    parts = ["<h2>Previews</h2>"]
    if not run.previews and run.latest_preview is None:
        return [*parts, '<p class="muted">no preview rounds</p>']
    names = list(run.sources)
    rows = [
        [
            _cell(round_.get("step"), numeric=True),
            _cell(_percent(round_.get("format_rate")), numeric=True),
            _cell(_percent(round_.get("accuracy")), numeric=True),
            *(
                _cell(_percent(_rates(round_, name).get(key)), numeric=True)
                for name in names
                for key in ("format_rate", "accuracy")
            ),
            _cell(round_.get("seconds"), numeric=True),
            _cell(len(round_["samples"]) if isinstance(round_.get("samples"), list) else None, numeric=True),
        ]
        for round_ in run.previews
    ]
    source_headers = [f"{name}: {what}" for name in names for what in (FORMAT_RATE, ACCURACY)]
    parts.append(_table(["step", "format rate", "accuracy", *source_headers, "seconds", "samples"], rows))
    latest = run.latest_preview
    samples = latest.get("samples") if latest else None
    if latest and isinstance(samples, list) and samples:
        mixed = any(isinstance(sample, dict) and "source" in sample for sample in samples)
        parts.append(f"<h3>Samples at step {_e(_value(latest.get('step')))}</h3>")
        sample_rows = [
            [
                _cell(index, numeric=True),
                *([_cell(sample.get("source"))] if mixed else []),
                _pre(sample.get("prompt")),
                _pre(sample.get("expected")),
                _pre(sample.get("generated")),
                _cell(sample.get("format_ok")),
                _cell(sample.get("correct")),
            ]
            for index, sample in enumerate(samples, start=1)
            if isinstance(sample, dict)
        ]
        headers = ["#", "source", "prompt", "expected", "generated", "format ok", "correct"]
        if not mixed:
            headers.remove("source")
        parts.append(_table(headers, sample_rows))
    return parts


def _data_sections(data: Any) -> list[str]:
    """The data report; a mixture's sources each get their own table after the mixture's."""
    if not isinstance(data, dict) or not data:
        return ['<p class="muted">no data report recorded</p>']
    parts = [_key_value_table(_without_sources(data))]
    sources = data.get("sources")
    for source in sources if isinstance(sources, list) else []:
        if not isinstance(source, dict):
            continue
        profile = source.get("profile")
        label = source_label(str(source.get("name")), profile if isinstance(profile, str) else None)
        parts.append(f"<h3>Source {_e(label)}</h3>")
        report = source.get("report")
        own = _without_sources(report) if isinstance(report, dict) else None
        parts.append(_section_or_note(own, "no report of its own recorded"))
    return parts


def _without_sources(report: dict[str, Any]) -> dict[str, Any]:
    """A data report without its list of mixture sources (empty, or shown source by source)."""
    kept = {key: value for key, value in report.items() if not (key == "sources" and isinstance(value, list))}
    if isinstance(kept.get("validation"), dict):
        kept["validation"] = _without_sources(kept["validation"])
    return kept


def _section_or_note(data: Any, note: str) -> str:
    if isinstance(data, dict) and data:
        return _key_value_table(data)
    return f'<p class="muted">{_e(note)}</p>'


def _key_value_table(data: dict[str, Any]) -> str:
    return _table(["name", "value"], [[_cell(key), _cell(value)] for key, value in _flatten(data)])


def _flatten(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Leaf values of nested dicts, keyed by dotted paths."""
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{path}.")
        else:
            yield path, value


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(header)}</th>" for header in headers)
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any, numeric: bool = False) -> str:
    css = ' class="num"' if numeric else ""
    return f"<td{css}>{_e(_value(value))}</td>"


def _pre(value: Any) -> str:
    return f"<td><pre>{_e(_value(value))}</pre></td>"


def _value(value: Any) -> str:
    """A JSON value as text: ``-`` for null, floats to six significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def _percent(value: Any) -> Any:
    rate = number(value)
    return value if rate is None else f"{rate * 100:.1f}%"


def _e(value: Any) -> str:
    return html.escape(str(value))
