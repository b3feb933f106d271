"""One run per output directory: the lock, the runs it refuses, stale locks, and its release."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from trainer.config import TrainerConfig
from trainer.core import RunResult, TrainerEngine
from trainer.core import run_lock as run_lock_module
from trainer.core.interrupt import RunInterrupted
from trainer.core.run_lock import LOCK_FILE, lock_output_dir, read_holder
from trainer.errors import TrainerError
from trainer.monitoring.status import this_host

HOLDER = """
import sys
from pathlib import Path
import trainer.core.run_lock as run_lock
if sys.argv[2] == "exclusive":
    run_lock.fcntl = None
lock = run_lock.lock_output_dir(Path(sys.argv[1]))
print("locked", flush=True)
sys.stdin.read()
lock.release()
"""

LOCKING = ["flock", "exclusive"]
"""The two ways to lock: flock, and the exclusive file where there is no fcntl (Windows)."""


@contextmanager
def held_by_another_process(directory: Path, how: str = "flock") -> Iterator[subprocess.Popen]:
    """Another process holding the lock on ``directory`` until the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory), how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "locked"
        yield process
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


@pytest.fixture(params=LOCKING)
def how(request, monkeypatch) -> str:
    if request.param == "exclusive":
        monkeypatch.setattr(run_lock_module, "fcntl", None)
    elif run_lock_module.fcntl is None:
        pytest.skip("no fcntl on this platform")
    return request.param


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def previous_run(out: Path) -> Path:
    """The files of a run in the middle of training."""
    (out / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2}')
    (out / "status.json").write_text(json.dumps({"status": "training", "step": 3, "error": None}))
    (out / "metrics.jsonl").write_text('{"step": 1, "loss": 7.5}\n')
    return out


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with its text (directories as ``/``)."""
    return {
        str(path.relative_to(directory)): path.read_text() if path.is_file() else "/"
        for path in sorted(directory.rglob("*"))
    }


def stale_lock(out: Path, **holder) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    path.write_text(json.dumps({"started": "2026-01-01T00:00:00+00:00", **holder}))
    return path


def config_for(out: Path, **debug) -> TrainerConfig:
    return TrainerConfig.from_dict({"output": {"output_dir": str(out)}, "debug": debug})


@pytest.fixture
def no_training(monkeypatch):
    """``_run`` replaced: the flow around it (lock, output directory, status) is what is tested."""
    started: list[Path] = []

    def run_without_training(self, config, base_dir, output_dir, hub, *rest):
        started.append(output_dir)
        hub.emit("end", status="completed")
        return RunResult(status="completed", output_dir=output_dir)

    monkeypatch.setattr(TrainerEngine, "_run", run_without_training)
    return started


# -- the lock ----------------------------------------------------------------------------


def test_a_live_holder_is_named_and_the_lock_is_free_once_it_ends(tmp_path, how):
    out = tmp_path / "out"
    with held_by_another_process(out, how) as holder:
        assert read_holder(out / LOCK_FILE).pid == holder.pid
        with pytest.raises(TrainerError) as refused:
            lock_output_dir(out)
        message = str(refused.value)
        assert "\n" not in message
        assert (
            f"output directory '{out}' is in use by another run: process {holder.pid} on this host" in message
        )
        assert read_holder(out / LOCK_FILE).pid == holder.pid  # the refused run changed nothing
    assert not (out / LOCK_FILE).exists()  # released and removed
    lock = lock_output_dir(out)
    assert read_holder(out / LOCK_FILE).pid == os.getpid() and lock.held
    lock.release()
    lock.release()  # twice is harmless
    assert not (out / LOCK_FILE).exists() and not lock.held


def test_a_stale_lock_on_this_host_is_taken_over_with_a_warning(tmp_path, how):
    out = tmp_path / "out"
    pid = dead_pid()
    stale_lock(out, pid=pid, host=this_host())
    messages: list[str] = []
    lock = lock_output_dir(out, messages.append)
    assert len(messages) == 1
    assert messages[0].startswith(
        f"warning: took over the lock on '{out}' left by process {pid} on this host"
    )
    holder = read_holder(out / LOCK_FILE)
    assert (holder.pid, holder.host) == (os.getpid(), this_host())
    lock.release()
    assert not (out / LOCK_FILE).exists()


def test_a_lock_from_another_host_is_refused_with_how_to_remove_it(tmp_path, how):
    out = tmp_path / "out"
    path = stale_lock(out, pid=4242, host="gpu-node-3")
    before = path.read_text()
    with pytest.raises(TrainerError) as refused:
        lock_output_dir(out, lambda line: pytest.fail(f"no takeover expected: {line}"))
    message = str(refused.value)
    assert "\n" not in message
    assert "process 4242 on host 'gpu-node-3'" in message
    assert f"cannot be checked from this host '{this_host()}'" in message
    assert f"delete {path} and start again" in message
    assert path.read_text() == before


def test_the_exclusive_lock_refuses_a_live_process_on_this_host_without_flock(tmp_path, monkeypatch):
    """A lock file whose process lives, on a filesystem where flock cannot tell: refused."""
    monkeypatch.setattr(run_lock_module, "fcntl", None)
    out = tmp_path / "out"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale_lock(out, pid=sleeper.pid, host=this_host())
        with pytest.raises(TrainerError, match=f"in use by another run: process {sleeper.pid} on this host"):
            lock_output_dir(out)
    finally:
        sleeper.kill()
        sleeper.wait()
    lock_output_dir(out, lambda line: None).release()  # once it is gone, taken over


def test_a_forked_child_leaves_its_parents_lock_alone(tmp_path):
    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    out = tmp_path / "out"
    lock = lock_output_dir(out)
    child = os.fork()
    if child == 0:  # a data-loader worker, say, that exits through the interpreter's exit handlers
        lock.release()
        os._exit(0)
    os.waitpid(child, 0)
    assert read_holder(out / LOCK_FILE).pid == os.getpid()
    with pytest.raises(TrainerError, match="in use"):  # still held
        lock_output_dir(out)
    lock.release()
    assert not (out / LOCK_FILE).exists()


# -- the engine --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "how_to_start",
    [{}, {"overwrite": True}, {"resume": "latest"}],
    ids=["plain", "overwrite", "resume"],
)
def test_a_second_run_is_refused_and_the_first_runs_files_are_untouched(tmp_path, no_training, how_to_start):
    out = previous_run(tmp_path / "out")
    with held_by_another_process(out) as holder:
        before = snapshot(out)
        with pytest.raises(
            TrainerError, match=f"is in use by another run: process {holder.pid} on this host"
        ):
            TrainerEngine().run_job(config_for(out), **how_to_start)
        assert snapshot(out) == before  # nothing cleared, no `failed` written into its status file
    assert no_training == []


def test_only_the_main_process_locks_and_a_dry_run_takes_no_lock(tmp_path, no_training, monkeypatch):
    out = tmp_path / "out"
    with held_by_another_process(out):
        before = snapshot(out)
        monkeypatch.setenv("RANK", "1")  # another process of the same run, under torchrun
        assert TrainerEngine().run_job(config_for(out)).status == "completed"
        monkeypatch.setenv("RANK", "0")
        assert TrainerEngine().run_job(config_for(out, dry_run=True)).status == "completed"
        assert snapshot(out) == before
        with pytest.raises(TrainerError, match="in use by another run"):
            TrainerEngine().run_job(config_for(out))
    assert len(no_training) == 2


def test_a_directory_holding_only_a_stale_lock_counts_as_empty(tmp_path, no_training):
    out = tmp_path / "out"
    stale_lock(out, pid=dead_pid(), host=this_host())
    messages: list[str] = []
    result = TrainerEngine(on_message=messages.append).run_job(config_for(out))
    assert result.status == "completed"
    assert [line for line in messages if line.startswith("warning: took over the lock")]
    assert sorted(path.name for path in out.iterdir()) == ["status.json"]  # and released at the end


def test_overwrite_keeps_the_lock_file_it_holds(tmp_path, monkeypatch):
    out = previous_run(tmp_path / "out")
    seen: list[list[str]] = []

    def run_without_training(self, config, base_dir, output_dir, hub, *rest):
        seen.append(sorted(path.name for path in output_dir.iterdir()))
        assert read_holder(output_dir / LOCK_FILE).pid == os.getpid()
        return RunResult(status="completed", output_dir=output_dir)

    monkeypatch.setattr(TrainerEngine, "_run", run_without_training)
    TrainerEngine().run_job(config_for(out), overwrite=True)
    assert seen == [[LOCK_FILE, "status.json"]]  # the previous run's files gone, the lock kept
    assert not (out / LOCK_FILE).exists()


@pytest.mark.parametrize(
    "stop",
    [RunInterrupted("stopped by SIGTERM", signal.SIGTERM), KeyboardInterrupt(), RuntimeError("bug")],
    ids=["interrupted", "ctrl-c", "crash"],
)
def test_the_lock_is_released_however_the_run_ends(tmp_path, monkeypatch, stop):
    def run_that_stops(self, *args):
        raise stop

    monkeypatch.setattr(TrainerEngine, "_run", run_that_stops)
    out = tmp_path / "out"
    with pytest.raises(type(stop)):
        TrainerEngine().run_job(config_for(out))
    assert not (out / LOCK_FILE).exists()
    lock_output_dir(out, lambda line: pytest.fail(line)).release()


def test_the_lock_is_released_after_a_failed_run(tmp_path):
    out = tmp_path / "out"
    config = TrainerConfig.from_dict(
        {"output": {"output_dir": str(out)}, "data": {"dataset_path": str(tmp_path / "missing.jsonl")}}
    )
    with pytest.raises(TrainerError, match="missing.jsonl"):
        TrainerEngine().run_job(config)
    assert json.loads((out / "status.json").read_text())["status"] == "failed"
    assert not (out / LOCK_FILE).exists()
    lock_output_dir(out, lambda line: pytest.fail(line)).release()


def test_the_lock_is_released_when_the_directory_is_refused(tmp_path):
    out = previous_run(tmp_path / "out")
    with pytest.raises(TrainerError, match="is not empty"):
        TrainerEngine().run_job(config_for(out))
    assert not (out / LOCK_FILE).exists()


# -- the command line --------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--overwrite", "--resume"])
def test_cli_refuses_a_second_run_in_one_line_naming_the_pid(run_trainer, tmp_path, flag):
    out = previous_run(tmp_path / "out")
    with held_by_another_process(out) as holder:
        before = snapshot(out)
        result = run_trainer("run", "--max-steps", "1", "--output-dir", "out", flag)
        assert snapshot(out) == before
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("Error: output directory 'out' is in use by another run")
    assert f"process {holder.pid} on this host" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads process states from /proc")
def test_a_run_in_progress_cannot_be_wiped_by_a_second_one(installed_plugins, run_trainer, tmp_path):
    """The bug this lock fixes: `--overwrite` in the directory of a run still training wiped it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINER_") and k != "PYTHONPATH"}
    env.update(
        PYTHONPATH=str(installed_plugins["signaller"]),
        TRAINER_TEST_SIGNAL="STOP",  # the first run freezes itself at step 2, in the middle of training
        TRAINER_TEST_SIGNAL_AT_STEP="2",
    )
    args = ["run", "--max-steps", "4", "--set", "inference.eval_steps=0", "--output-dir", "out"]
    first = subprocess.Popen(
        [sys.executable, "-m", "trainer", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = tmp_path / "out"
    try:
        deadline = time.monotonic() + 240
        while _state(first.pid) != "T":
            assert first.poll() is None, first.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the first run did not reach step 2"
            time.sleep(0.1)
        before = snapshot(out)
        assert json.loads((out / "status.json").read_text())["pid"] == first.pid

        second = run_trainer("run", "--max-steps", "1", "--output-dir", "out", "--overwrite")
        assert second.returncode == 2
        assert f"is in use by another run: process {first.pid} on this host" in second.stderr
        assert snapshot(out) == before
        shown = run_trainer("status", "--json", "out")
        assert json.loads(shown.stdout)["liveness"] == "running"  # stopped, not dead
    finally:
        os.kill(first.pid, signal.SIGCONT)
        stdout, stderr = first.communicate(timeout=240)
    assert first.returncode == 0, stderr[-3000:]
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "completed" and status["step"] == 4
    assert (out / "model.safetensors").is_file()
    assert not (out / LOCK_FILE).exists()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"
