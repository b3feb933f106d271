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
    "data": {"source": "built-in sample", "rows_read": 2000, "dropped": {"too_long": 3}, "validation": None},
    "metrics": {"train_loss": 1.234, "first_loss": 7.74, "final_loss": 0.18},
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
