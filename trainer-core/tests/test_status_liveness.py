"""The status file records its pid, host and heartbeat; `trainer status` judges a run by them."""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from trainer.cli import main
from trainer.monitoring.status import (
    STALE_AFTER_SECONDS,
    TrainingStatusWriter,
    liveness,
    process_alive,
    this_host,
)
from trainer.reporting import format_status

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).isoformat(timespec="seconds")


def dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def status_row(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("status ")).split(None, 1)[1]


def process_row(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("process ")).split(None, 1)[1]


def wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def written(path: Path) -> tuple[int, int]:
    """What changes with every atomic write: the file replaced is a new one."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


@pytest.fixture
def trainer(capsys: pytest.CaptureFixture[str]):
    def run(*args: str) -> tuple[int, str, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


# -- the writer --------------------------------------------------------------------------


def test_every_write_records_the_process_and_a_heartbeat(tmp_path):
    writer = TrainingStatusWriter(tmp_path / "status.json", heartbeat_seconds=0)
    writer.update(status="training", step=1)
    state = writer.read()
    assert state["pid"] == os.getpid()
    assert state["host"] == this_host()
    assert state["heartbeat_at"] == state["updated_at"]
    # Values the hub hands over (its initial state has them null) do not erase them.
    writer.emit("log", {"step": 2, "pid": None, "host": None, "heartbeat_at": None})
    assert writer.read()["pid"] == os.getpid() and writer.read()["host"] == this_host()


def test_the_heartbeat_thread_refreshes_heartbeat_at_during_a_long_step(tmp_path):
    path = tmp_path / "status.json"
    writer = TrainingStatusWriter(path, heartbeat_seconds=0.05)
    writer.update(status="training", step=3)
    first = writer.read()
    # The main thread does nothing now (a long step); the heartbeat goes on without it.
    assert wait_for(lambda: writer.read()["heartbeat_at"] != first["heartbeat_at"], seconds=5)
    later = writer.read()
    assert later["updated_at"] == first["updated_at"]  # no event: only the heartbeat moved
    assert {key: value for key, value in later.items() if key != "heartbeat_at"} == {
        key: value for key, value in first.items() if key != "heartbeat_at"
    }
    writer.close()
    assert writer._heartbeat is not None and not writer._heartbeat.is_alive()
    assert not list(tmp_path.glob(".status.json.*"))  # no temporary files left


def test_the_heartbeat_stops_at_a_final_status_and_on_close(tmp_path):
    path = tmp_path / "status.json"
    writer = TrainingStatusWriter(path, heartbeat_seconds=0.02)
    writer.update(status="training")
    before = written(path)
    assert wait_for(lambda: written(path) != before)  # beating
    writer.update(status="completed")
    assert wait_for(lambda: not writer._heartbeat.is_alive())
    after = written(path)
    time.sleep(0.2)  # ten intervals
    assert written(path) == after
    assert writer.read()["status"] == "completed"

    writer = TrainingStatusWriter(path, heartbeat_seconds=0.02)
    writer.update(status="training")
    writer.close()
    after = written(path)
    time.sleep(0.2)
    assert written(path) == after
    assert not writer._heartbeat.is_alive()


def test_the_heartbeat_ends_with_the_directory_or_the_writer(tmp_path):
    run = tmp_path / "run"
    writer = TrainingStatusWriter(run / "status.json", heartbeat_seconds=0.02)
    writer.update(status="starting")
    beating = writer._heartbeat
    shutil.rmtree(run)  # the run's files removed: the heartbeat must not bring the directory back
    assert wait_for(lambda: not beating.is_alive())
    assert not run.exists()

    writer = TrainingStatusWriter(tmp_path / "status.json", heartbeat_seconds=0.02)
    writer.update(status="training")
    beating = writer._heartbeat
    del writer  # never closed
    gc.collect()
    assert wait_for(lambda: not beating.is_alive())


def test_a_disabled_status_writer_stops_beating(tmp_path):
    """The hub closes a sink it disables, so a broken writer's heartbeat does not outlive the run."""
    from trainer.monitoring.hub import StatusHub

    writer = TrainingStatusWriter(tmp_path / "status.json", heartbeat_seconds=0.02)
    hub = StatusHub([("status_file", writer)])
    hub.emit("start", status="starting")
    beating = writer._heartbeat
    assert beating is not None and beating.is_alive()
    hub.emit("log", status="no such status")  # the writer raises ValueError: disabled
    assert hub.sinks == [] and hub.state["sink_errors"][0]["sink"] == "status_file"
    assert wait_for(lambda: not beating.is_alive())


# -- judging a status file ---------------------------------------------------------------


def test_a_dead_process_on_this_host_is_shown_as_died(tmp_path, trainer):
    pid = dead_pid()
    state = {"status": "training", "step": 7, "pid": pid, "host": this_host(), "heartbeat_at": ago(130)}
    assert liveness(state, now=NOW).verdict == "died"
    text = format_status(state, now=NOW)
    assert status_row(text) == f"died (process {pid} is gone; last heartbeat 2m 10s ago)"

    # The same through the command line, for a file whose heartbeat is recent.
    state["heartbeat_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    (tmp_path / "status.json").write_text(json.dumps(state))
    code, out, _ = trainer("status", str(tmp_path))
    assert code == 0
    assert status_row(out).startswith(f"died (process {pid} is gone; last heartbeat ")
    code, out, _ = trainer("status", "--json", str(tmp_path))
    assert json.loads(out) == {**state, "liveness": "died"}


def test_an_old_heartbeat_from_another_host_is_stale():
    state = {"status": "training", "pid": 4242, "host": "gpu-node-3", "heartbeat_at": ago(12 * 60 + 5)}
    assert liveness(state, now=NOW).verdict == "stale"
    assert status_row(format_status(state, now=NOW)) == (
        "stale (no heartbeat for 12m 05s; process 4242 on gpu-node-3)"
    )
    # Within the threshold, a run on another host is taken at its word: it cannot be checked from here.
    state["heartbeat_at"] = ago(STALE_AFTER_SECONDS - 10)
    assert liveness(state, now=NOW).verdict == "running"
    assert status_row(format_status(state, now=NOW)) == "training"


def test_a_live_run_shows_as_training_with_its_process():
    state = {"status": "training", "pid": os.getpid(), "host": this_host(), "heartbeat_at": ago(4)}
    assert liveness(state, now=NOW).verdict == "running"
    text = format_status(state, now=NOW)
    assert status_row(text) == "training"
    assert process_row(text) == f"{os.getpid()} on {this_host()}, heartbeat 4s ago"


def test_a_live_pid_with_an_old_heartbeat_is_stale():
    """A hung run, or a pid the system gave to another process since."""
    state = {"status": "starting", "pid": os.getpid(), "host": this_host(), "heartbeat_at": ago(3600)}
    assert liveness(state, now=NOW).verdict == "stale"
    assert status_row(format_status(state, now=NOW)).startswith("stale (no heartbeat for 1h 00m; process ")


@pytest.mark.parametrize(
    ("state", "verdict", "shown"),
    [
        ({"status": "failed", "error": "x"}, "ended", "failed"),  # a final status is the truth
        ({"status": "completed", "pid": 1, "host": "elsewhere", "heartbeat_at": ago(9999)}, "ended", None),
        ({"status": "training"}, "unknown", "training"),  # written before pid and heartbeat were
        ({"status": "training", "pid": "x", "host": 3, "heartbeat_at": "yesterday"}, "unknown", "training"),
        ({}, "unknown", "-"),
    ],
)
def test_what_cannot_be_judged_is_shown_as_written(state, verdict, shown):
    assert liveness(state, now=NOW).verdict == verdict
    text = format_status(state, now=NOW)
    assert status_row(text) == (shown or state["status"])


def test_process_alive():
    assert process_alive(os.getpid())
    assert not process_alive(dead_pid())
    assert not process_alive(0) and not process_alive(-5)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="zombies are read from /proc")
def test_a_zombie_counts_as_gone():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    assert wait_for(lambda: Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z")
    try:
        assert not process_alive(process.pid)
    finally:
        process.wait()


# -- --watch -----------------------------------------------------------------------------

WRITER = """
import sys, time
from trainer.monitoring.status import TrainingStatusWriter
writer = TrainingStatusWriter(sys.argv[1], heartbeat_seconds=0.05)
writer.update(status="training", step=5, total_steps=10)
print("written", flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_watch_stops_with_exit_1_when_the_run_is_killed(tmp_path, trainer):
    status_file = tmp_path / "status.json"
    run = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(status_file)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert run.stdout is not None and run.stdout.readline().strip() == "written"
        assert liveness(json.loads(status_file.read_text())).verdict == "running"
        os.kill(run.pid, signal.SIGKILL)  # no chance to write `failed`
        run.wait(timeout=30)
        code, out, _ = trainer("status", "--watch", "--json", "--interval", "0.01", str(status_file))
    finally:
        run.kill()
        run.wait()
    assert code == 1
    last = json.loads(out.splitlines()[-1])
    assert last["status"] == "training" and last["pid"] == run.pid and last["liveness"] == "died"

    code, out, _ = trainer("status", "--watch", "--interval", "0.01", str(status_file))
    assert code == 1
    assert status_row(out).startswith(f"died (process {run.pid} is gone; last heartbeat ")


def test_watch_redraws_a_run_whose_heartbeat_stops(tmp_path, monkeypatch):
    """The file does not change; its verdict does, and --watch shows it."""
    import trainer.monitoring.status as status
    from trainer.reporting import follow_status

    status_file = tmp_path / "status.json"
    fresh = datetime.now(timezone.utc).isoformat(timespec="seconds")
    state = {"status": "training", "pid": 1, "host": "elsewhere", "heartbeat_at": fresh}
    status_file.write_text(json.dumps(state))
    verdicts = []

    def later(_seconds: float) -> None:
        if len(verdicts) == 1:  # time passes: the heartbeat is now older than the threshold
            monkeypatch.setattr(status, "STALE_AFTER_SECONDS", -1.0)
        elif len(verdicts) == 2:
            status_file.write_text(json.dumps({"status": "completed"}))

    for seen in follow_status(status_file, 0.0, sleep=later):
        assert seen is not None
        verdicts.append(liveness(seen).verdict)
    assert verdicts == ["running", "stale", "ended"]
