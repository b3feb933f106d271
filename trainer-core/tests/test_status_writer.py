"""The JSON status file."""

from __future__ import annotations

import json
import threading

import pytest

from trainer.monitoring import RunContext, StatusSink, TrainingStatusWriter

REQUIRED = {
    "status",
    "step",
    "total_steps",
    "epoch",
    "loss",
    "learning_rate",
    "tokens_per_second",
    "updated_at",
    "error",
}


def test_update_writes_every_required_key(tmp_path):
    writer = TrainingStatusWriter(tmp_path / "run" / "status.json")
    writer.update(status="training", step=3, total_steps=10, loss=1.5)
    data = json.loads((tmp_path / "run" / "status.json").read_text())
    assert REQUIRED <= set(data)
    assert data["status"] == "training" and data["step"] == 3 and data["loss"] == 1.5
    assert data["error"] is None and data["updated_at"]


def test_mark_failed_records_the_error(tmp_path):
    writer = TrainingStatusWriter(tmp_path / "status.json")
    writer.mark_failed("dataset 'x' not found")
    assert writer.read()["status"] == "failed"
    assert writer.read()["error"] == "dataset 'x' not found"


def test_unknown_status_is_refused(tmp_path):
    with pytest.raises(ValueError, match="status must be one of"):
        TrainingStatusWriter(tmp_path / "status.json").update(status="weird")


def test_is_a_status_sink(tmp_path):
    writer = TrainingStatusWriter(tmp_path / "status.json")
    assert isinstance(writer, StatusSink)
    writer.emit("start", {"total_steps": 5})
    assert writer.read()["status"] == "starting"
    writer.emit("log", {"step": 1, "loss": 2.0})
    assert writer.read()["status"] == "training"
    writer.emit("end", {"step": 5})
    assert writer.read()["status"] == "completed"


def test_reader_never_sees_a_partial_file(tmp_path):
    path = tmp_path / "status.json"
    writer = TrainingStatusWriter(path)
    writer.update(step=0)
    stop = threading.Event()
    errors = []

    def read_loop():
        while not stop.is_set():
            try:
                json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                errors.append(exc)

    reader = threading.Thread(target=read_loop)
    reader.start()
    for step in range(300):
        writer.update(step=step, loss=1.0 / (step + 1), note="x" * (step % 50) * 100)
    stop.set()
    reader.join()
    assert errors == []
    assert not list(tmp_path.glob(".status.json.*"))  # no temporary files left


def test_builtin_status_file_sink_is_registered_through_the_hook(tmp_path):
    from trainer.plugins import get_plugins

    factories = [r.obj for r in get_plugins().collect("register_status_sinks")]
    run = RunContext(output_dir=tmp_path, status_file=tmp_path / "status.json")
    sinks = [factory(run) for factory in factories]
    assert any(isinstance(sink, TrainingStatusWriter) and sink.path == run.status_file for sink in sinks)


def test_console_progress_line():
    import io

    from trainer.default_plugins.console import ConsoleProgress

    stream = io.StringIO()
    sink = ConsoleProgress(stream)
    state = {
        "step": 30,
        "total_steps": 300,
        "loss": 1.23456,
        "learning_rate": 1e-3,
        "tokens_per_second": 5900.4,
        "elapsed_seconds": 15.0,
        "eta_seconds": 135.0,
    }
    sink.emit("log", state)
    sink.emit("checkpoint", state)
    sink.emit("evaluate", {**state, "eval_loss": 1.5})
    assert stream.getvalue().splitlines() == [
        "step 30/300 (10%)  loss 1.2346  lr 1.0e-03  5,900 tok/s  eta 2m15s",
        "step 30: eval loss 1.5000",
    ]


def test_a_raising_sink_is_disabled_and_recorded(tmp_path):
    from trainer.monitoring.hub import StatusHub

    class Broken:
        def emit(self, event, state):
            raise RuntimeError("boom")

        def close(self):
            pass

    writer = TrainingStatusWriter(tmp_path / "status.json")
    hub = StatusHub([("broken", Broken()), ("status_file", writer)])
    hub.emit("start", status="starting")
    hub.emit("log", status="training", step=1)
    assert [name for name, _ in hub.sinks] == ["status_file"]
    recorded = writer.read()
    assert recorded["step"] == 1
    assert recorded["sink_errors"] == [{"sink": "broken", "error": "RuntimeError: boom"}]


def test_console_progress_bar_on_a_terminal():
    import io

    from trainer.default_plugins.console import ConsoleProgress

    stream = io.StringIO()
    sink = ConsoleProgress(stream, live=True)
    state = {
        "step": 120,
        "total_steps": 300,
        "loss": 1.2345,
        "tokens_per_second": 5900,
        "elapsed_seconds": 60,
        "eta_seconds": 90.0,
    }
    sink.emit("log", state)
    sink.emit("preview", {"previews": {"step": 120, "format_rate": 0.75, "accuracy": None}})
    sink.emit("log", {**state, "step": 300})
    sink.emit("end", state)
    assert stream.getvalue() == (
        "\r\x1b[2K[#########...............]  step 120/300 (40%)  loss 1.2345  5,900 tok/s  eta 1m30s\n"
        "step 120: previews format 75%, accuracy -\n"
        "\r\x1b[2K[########################]  step 300/300 (100%)  loss 1.2345  5,900 tok/s\n"
    )
