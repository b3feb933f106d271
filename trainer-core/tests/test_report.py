"""``trainer report`` and ``write_report``: the PNG's curves and the self-contained HTML page."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from trainer.cli import main
from trainer.errors import TrainerError
from trainer.reporting import plot_run, read_run_files, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

ROUNDS = [
    {"step": 10, "format_rate": 0.0, "accuracy": 0.0, "seconds": 0.5, "samples": []},
    {"step": 20, "format_rate": 0.5, "accuracy": None, "seconds": 0.6, "samples": []},
    {
        "step": 30,
        "format_rate": 1.0,
        "accuracy": 0.5,
        "seconds": 0.7,
        "samples": [
            {
                "prompt": "Is 3 < 5?",
                "expected": "yes",
                "generated": "Step 1: 3 < 5.\nAnswer: yes",
                "format_ok": True,
                "correct": True,
            },
            {
                "prompt": "Is 9 < 5?",
                "expected": "no",
                "generated": "Answer: yes",
                "format_ok": True,
                "correct": False,
            },
        ],
    },
]

RUN_INFO = {
    "config": {
        "hyperparams": {"learning_rate": 0.00042, "batch_size": 16},
        "profile": {"name": "regime3", "options": {}},
        "output": {"output_dir": "outputs/run"},
    },
    "versions": {"trainer-core": "0.1.0", "plugins": {"trainer-profile-regime3": "0.1.0"}},
    "demo_model": True,
    "data": {
        "source": "built-in sample",
        "rows_read": 2000,
        "dropped": {"too_long": 3},
        "validation": None,
        "sources": [],  # a run of one dataset
    },
    "metrics": {"train_loss": 1.234, "first_loss": 7.74, "final_loss": 0.18},
}


def mixture_round(step: int, rates: dict[str, tuple[float, float | None]]) -> dict[str, Any]:
    """A data mixture's preview round as in ``previews.jsonl``; ``rates``: name -> (format, accuracy)."""
    profiles = {"gsm8k": "regime3", "emoji": "emoji_think", "chat": "chat"}
    scored = [accuracy for _, accuracy in rates.values() if accuracy is not None]
    return {
        "step": step,
        "format_rate": sum(rate for rate, _ in rates.values()) / len(rates),
        "accuracy": sum(scored) / len(scored) if scored else None,
        "seconds": 1.5,
        "sources": {
            name: {"profile": profiles[name], "format_rate": rate, "accuracy": accuracy}
            for name, (rate, accuracy) in rates.items()
        },
        "samples": [
            {
                "source": name,
                "prompt": f"a {name} question at step {step}",
                "expected": None if accuracy is None else "7",
                "generated": "Answer: 7",
                "format_ok": rate > 0.5,
                "correct": None if accuracy is None else accuracy > 0.5,
            }
            for name, (rate, accuracy) in rates.items()
        ],
    }


MIXTURE_ROUNDS = [
    mixture_round(0, {"gsm8k": (0.0, 0.0), "emoji": (0.0, 0.0), "chat": (0.25, None)}),
    mixture_round(15, {"gsm8k": (0.5, 0.25), "emoji": (0.25, 0.0), "chat": (0.75, None)}),
    mixture_round(30, {"gsm8k": (1.0, 0.75), "emoji": (0.75, 0.5), "chat": (1.0, None)}),
]


def source_report(name: str, rows: int) -> dict[str, Any]:
    """One source's own data report, as ``DataReport.to_dict()`` writes it (fields that matter here)."""
    return {"source": f"{name}.jsonl", "rows_read": rows, "dropped": {}, "examples": rows, "sources": []}


MIXTURE_RUN_INFO = {
    **RUN_INFO,
    "config": {
        **RUN_INFO["config"],
        "data": {"mixture": [{"path": "gsm8k.jsonl", "profile": "regime3", "weight": 0.5}]},
    },
    "data": {
        "source": "a mixture of 3 sources (gsm8k, emoji, chat)",
        "rows_read": 1200,
        "dropped": {},
        "validation": None,
        "sources": [
            {
                "name": "gsm8k",
                "profile": "regime3",
                "weight": 0.5,
                "repeat": None,
                "examples": 600,
                "tokens": 60000,
                "trainable_tokens": 30000,
                "share": 0.6,
                "report": source_report("gsm8k", 600),
            },
            {
                "name": "emoji",
                "profile": "emoji_think",
                "weight": 0.3,
                "repeat": None,
                "examples": 360,
                "tokens": 30000,
                "trainable_tokens": 15000,
                "share": 0.3,
                "report": source_report("emoji", 400),
            },
            {
                "name": "chat",
                "profile": "chat",
                "weight": 0.2,
                "repeat": None,
                "examples": 240,
                "tokens": 10000,
                "trainable_tokens": 5000,
                "share": 0.1,
                "report": source_report("chat", 200),
            },
        ],
    },
}


def write_files(directory: Path, *, steps: int = 30, evaluations: int = 3, **files: Any) -> Path:
    """A run's output directory: ``metrics.jsonl`` with ``steps`` log lines, plus the named files.

    ``status=``, ``previews=`` (a list of rounds) and ``run_info=`` add status.json,
    previews.jsonl and trainer_run.json.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if steps:
        lines = []
        for step in range(1, steps + 1):
            lines.append({"step": step, "epoch": step / 100, "loss": 8.0 / step, "learning_rate": 4e-4})
            if evaluations and step % (steps // evaluations) == 0:
                lines.append({"step": step, "eval_loss": 9.0 / step})
        text = "".join(json.dumps(line) + "\n" for line in lines)
        (directory / "metrics.jsonl").write_text(text + '{"step": 31, "lo')  # the run is still appending
    if "status" in files:
        (directory / "status.json").write_text(json.dumps(files["status"]))
    if "previews" in files:
        (directory / "previews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in files["previews"]))
    if "run_info" in files:
        (directory / "trainer_run.json").write_text(json.dumps(files["run_info"]))
    return directory


def lines_by_label(figure: Any) -> dict[str, tuple[int, list[float], list[float]]]:
    """Each labelled line of the figure: (panel index, x data, y data)."""
    return {
        line.get_label(): (index, list(line.get_xdata()), list(line.get_ydata()))
        for index, axes in enumerate(figure.axes)
        for line in axes.get_lines()
    }


def test_report_of_a_complete_run(tmp_path: Path):
    status = {"status": "completed", "step": 30, "total_steps": 30, "loss": 0.27, "sink_errors": []}
    run_dir = write_files(tmp_path / "run", status=status, previews=ROUNDS, run_info=RUN_INFO)

    png, page = write_report(run_dir)

    assert (png, page) == (run_dir / "report.png", run_dir / "report.html")
    image = png.read_bytes()
    assert image.startswith(PNG_SIGNATURE) and len(image) > 10_000

    lines = lines_by_label(plot_run(read_run_files(run_dir)))
    assert set(lines) == {"training loss", "evaluation loss", "format rate", "accuracy"}
    panel, steps, losses = lines["training loss"]
    assert panel == 0 and steps == list(range(1, 31)) and losses[-1] == pytest.approx(8.0 / 30)
    assert lines["evaluation loss"][:2] == (0, [10, 20, 30])
    assert lines["format rate"] == (1, [10, 20, 30], [0.0, 0.5, 1.0])
    assert lines["accuracy"] == (1, [10, 30], [0.0, 0.5])  # the round without expected answers is left out

    text = page.read_text()
    embedded = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert embedded and base64.b64decode(embedded.group(1)) == image
    assert not re.search(r'(src|href)="(?!data:)', text)  # nothing loaded from elsewhere
    assert "<h1>Training report: run, profile regime3</h1>" in text
    assert "<h3>hyperparams</h3>" in text and "<td>learning_rate</td><td>0.00042</td>" in text
    assert "<td>name</td><td>regime3</td>" in text
    assert "<td>rows_read</td><td>2000</td>" in text and "<td>dropped.too_long</td><td>3</td>" in text
    assert "<td>final_loss</td><td>0.18</td>" in text
    for step, rate, accuracy in (("10", "0.0%", "0.0%"), ("20", "50.0%", "-"), ("30", "100.0%", "50.0%")):
        assert (
            f'<td class="num">{step}</td><td class="num">{rate}</td><td class="num">{accuracy}</td>' in text
        )
    assert "Samples at step 30" in text
    assert "<pre>Is 3 &lt; 5?</pre>" in text and "<pre>Step 1: 3 &lt; 5.\nAnswer: yes</pre>" in text
    # One dataset: no mixture sources anywhere.
    assert "<h2>Sources</h2>" not in text and "<td>sources</td>" not in text and "<th>source</th>" not in text


def test_report_of_a_mixture_draws_each_source(tmp_path: Path):
    status = {"status": "completed", "step": 30, "previews": MIXTURE_ROUNDS[-1]}
    run_dir = write_files(tmp_path / "run", status=status, previews=MIXTURE_ROUNDS, run_info=MIXTURE_RUN_INFO)

    png, page = write_report(run_dir)

    assert png.read_bytes().startswith(PNG_SIGNATURE)
    figure = plot_run(read_run_files(run_dir))
    assert [text.get_text() for text in figure.texts] == [
        "run directory: run  |  mixture: gsm8k (regime3), emoji (emoji_think), chat  |  status: completed"
    ]
    assert "<h1>Training report: run, mixture of gsm8k (regime3), emoji (emoji_think), chat</h1>" in (
        page.read_text()
    )
    lines = lines_by_label(figure)
    assert set(lines) == {
        "training loss",
        "evaluation loss",
        "gsm8k (regime3): format rate",
        "gsm8k (regime3): accuracy",
        "emoji (emoji_think): format rate",
        "emoji (emoji_think): accuracy",
        "chat: format rate",  # named after its profile; no expected answers, so no accuracy curve
    }
    # Each source's curve rises to its own format; the rates of all sources together are not drawn.
    assert lines["gsm8k (regime3): format rate"] == (1, [0, 15, 30], [0.0, 0.5, 1.0])
    assert lines["emoji (emoji_think): format rate"] == (1, [0, 15, 30], [0.0, 0.25, 0.75])
    assert lines["chat: format rate"] == (1, [0, 15, 30], [0.25, 0.75, 1.0])
    assert lines["emoji (emoji_think): accuracy"] == (1, [0, 15, 30], [0.0, 0.0, 0.5])
    colours = {line.get_label(): line.get_color() for line in figure.axes[1].get_lines()}
    assert colours["gsm8k (regime3): format rate"] == colours["gsm8k (regime3): accuracy"]
    format_colours = [colours[label] for label in lines if label.endswith(": format rate")]
    assert len(set(format_colours)) == 3

    text = page.read_text()
    # The sources table: how each was drawn, its share of the trained tokens, its latest preview rates.
    assert "<h2>Sources</h2>" in text and "preview rates at step 30" in text
    for name, profile, weight, examples, trainable, share, rate, accuracy in (
        ("gsm8k", "regime3", "0.5", "600", "30000", "60.0%", "100.0%", "75.0%"),
        ("emoji", "emoji_think", "0.3", "360", "15000", "30.0%", "75.0%", "50.0%"),
        ("chat", "chat", "0.2", "240", "5000", "10.0%", "100.0%", "-"),
    ):
        assert (
            f'<tr><td>{name}</td><td>{profile}</td><td>weight {weight}</td><td class="num">{examples}</td>'
            f'<td class="num">{trainable}</td><td class="num">{share}</td><td class="num">{rate}</td>'
            f'<td class="num">{accuracy}</td></tr>'
        ) in text
    # The rounds table has each source's rates after the rates of all sources together.
    assert "<th>gsm8k: format rate</th><th>gsm8k: accuracy</th><th>emoji: format rate</th>" in text
    assert (
        '<td class="num">15</td><td class="num">50.0%</td><td class="num">12.5%</td>'  # all sources
        '<td class="num">50.0%</td><td class="num">25.0%</td>'  # gsm8k
        '<td class="num">25.0%</td><td class="num">0.0%</td>'  # emoji
        '<td class="num">75.0%</td><td class="num">-</td>'  # chat
    ) in text
    # Samples name their source; each source's own data report follows the mixture's.
    assert "<th>#</th><th>source</th><th>prompt</th>" in text
    assert '<td class="num">2</td><td>emoji</td><td><pre>a emoji question at step 30</pre></td>' in text
    assert "<h3>Source gsm8k (regime3)</h3>" in text and "<h3>Source chat</h3>" in text
    assert "<td>source</td><td>emoji.jsonl</td>" in text and "<td>rows_read</td><td>400</td>" in text
    assert "<td>sources</td>" not in text  # shown source by source, not as one JSON cell


def test_report_of_a_mixture_still_training(tmp_path: Path):
    """No trainer_run.json and no previews.jsonl yet: the status file's rounds name the sources."""
    history = [  # as the preview callback keeps it: each source's rates, without its profile
        {
            "step": round_["step"],
            "format_rate": round_["format_rate"],
            "accuracy": round_["accuracy"],
            "sources": {
                name: {"format_rate": rates["format_rate"], "accuracy": rates["accuracy"]}
                for name, rates in round_["sources"].items()
            },
        }
        for round_ in MIXTURE_ROUNDS[:2]
    ]
    status = {"status": "training", "step": 20, "previews": MIXTURE_ROUNDS[1], "preview_history": history}
    run_dir = write_files(tmp_path / "run", steps=20, status=status)
    figure = plot_run(read_run_files(run_dir))
    lines = lines_by_label(figure)
    # The history has no profiles; the latest round gives them.
    assert lines["gsm8k (regime3): format rate"] == (1, [0, 15], [0.0, 0.5])
    assert lines["chat: format rate"] == (1, [0, 15], [0.25, 0.75])
    assert "mixture: gsm8k (regime3), emoji (emoji_think), chat" in figure.texts[0].get_text()
    _, page = write_report(run_dir)
    text = page.read_text()
    assert "preview rates at step 15" in text
    assert (  # how each source is drawn is known once the run has written trainer_run.json
        '<tr><td>chat</td><td>chat</td><td>-</td><td class="num">-</td><td class="num">-</td>'
        '<td class="num">-</td><td class="num">75.0%</td><td class="num">-</td></tr>'
    ) in text


def visible_tick_labels(axes: Any, which: str) -> list[str]:
    """The texts of the y axis's major or minor tick labels inside the drawn range."""
    axes.figure.canvas.draw()
    low, high = axes.get_ylim()
    ticks = axes.yaxis.get_minor_ticks() if which == "minor" else axes.yaxis.get_major_ticks()
    return [tick.label1.get_text() for tick in ticks if low <= tick.get_loc() <= high]


def test_the_title_names_the_run_directory_the_profile_and_the_status(tmp_path: Path):
    run_dir = write_files(tmp_path / "run-7", status={"status": "completed"}, run_info=RUN_INFO)
    figure = plot_run(read_run_files(run_dir))
    assert [text.get_text() for text in figure.texts] == [
        "run directory: run-7  |  profile: regime3  |  status: completed"
    ]
    # A run that has not finished has no trainer_run.json, so no recorded profile.
    running = write_files(tmp_path / "running", status={"status": "training"})
    assert [text.get_text() for text in plot_run(read_run_files(running)).texts] == [
        "run directory: running  |  status: training"
    ]


def test_the_log_loss_axis_is_numbered_between_decades(tmp_path: Path):
    run_dir = write_files(tmp_path / "run", status={"status": "completed"})  # losses 9.0 down to 0.27
    axes = plot_run(read_run_files(run_dir)).axes[0]
    assert axes.get_yscale() == "log"
    assert visible_tick_labels(axes, "major") == ["1"]
    assert visible_tick_labels(axes, "minor") == ["0.3", "0.5", "2", "3", "5"]


def test_a_log_loss_axis_over_many_decades_labels_fewer_ticks_between_them(tmp_path: Path):
    run_dir = write_files(tmp_path / "run", steps=0)
    losses = [{"step": step, "loss": 10.0 * 0.0001 ** (step / 40)} for step in range(41)]  # 10 to 0.001
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in losses))
    axes = plot_run(read_run_files(run_dir)).axes[0]
    assert visible_tick_labels(axes, "major") == ["0.001", "0.01", "0.1", "1", "10"]
    assert visible_tick_labels(axes, "minor") == ["0.002", "0.005", "0.02", "0.05", "0.2", "0.5", "2", "5"]


def test_a_loss_within_a_factor_of_20_stays_on_a_linear_axis(tmp_path: Path):
    run_dir = write_files(tmp_path / "run", steps=0)
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 0.5}\n')
    axes = plot_run(read_run_files(run_dir)).axes[0]
    assert axes.get_yscale() == "linear"
    assert visible_tick_labels(axes, "minor") == []


def test_report_with_only_status_and_metrics(tmp_path: Path):
    run_dir = write_files(tmp_path / "run", evaluations=0, status={"status": "training", "step": 30})
    png, page = write_report(run_dir)
    figure = plot_run(read_run_files(run_dir))
    assert set(lines_by_label(figure)) == {"training loss"}
    assert [text.get_text() for text in figure.axes[1].texts] == ["no previews"]
    text = page.read_text()
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert "no preview rounds" in text and "not recorded (no trainer_run.json)" in text
    assert "<td>status</td><td>training</td>" in text


def test_report_of_a_run_that_failed_before_training(tmp_path: Path):
    status = {"status": "failed", "step": 0, "error": "dataset 'x.jsonl' <missing>", "previews": None}
    run_dir = write_files(tmp_path / "run", steps=0, status=status)
    png, page = write_report(run_dir)
    figure = plot_run(read_run_files(run_dir))
    assert lines_by_label(figure) == {}
    assert figure.axes[0].texts[0].get_text() == "no loss logged (no metrics.jsonl)"
    assert png.stat().st_size > 0
    assert "<b>Error:</b> dataset &#x27;x.jsonl&#x27; &lt;missing&gt;" in page.read_text()


def test_report_falls_back_to_the_status_files_previews(tmp_path: Path):
    latest = ROUNDS[-1]
    history = [{key: r[key] for key in ("step", "format_rate", "accuracy")} for r in ROUNDS]
    status = {"status": "training", "previews": latest, "preview_history": history}
    run_dir = write_files(tmp_path / "run", status=status)
    lines = lines_by_label(plot_run(read_run_files(run_dir)))
    assert lines["format rate"][1] == [10, 20, 30]
    _, page = write_report(run_dir)
    assert "<pre>Is 9 &lt; 5?</pre>" in page.read_text()


def test_report_of_an_empty_directory_is_an_error(tmp_path: Path):
    with pytest.raises(TrainerError, match="holds no run to report on"):
        write_report(tmp_path)
    with pytest.raises(TrainerError, match="not found"):
        write_report(tmp_path / "missing")


def test_report_command_prints_the_two_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    run_dir = write_files(tmp_path / "run", status={"status": "completed"})
    main(["report", str(run_dir)])
    assert capsys.readouterr().out.splitlines() == [str(run_dir / "report.png"), str(run_dir / "report.html")]


def test_report_command_on_an_empty_directory_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit:
        main(["report", str(tmp_path)])
    captured = capsys.readouterr()
    assert exit.value.code == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and f"'{tmp_path}' holds no run" in captured.err
    assert not list(tmp_path.iterdir())  # nothing written
