"""Interruption and resume: SIGKILL, SIGINT and SIGTERM at an exact step, then --resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

RUN = [
    "run",
    "--max-steps",
    "8",
    "--batch-size",
    "4",
    "--set",
    "output.save_steps=2",
    "--set",
    "inference.eval_steps=0",
    "--set",
    "data.max_length=128",
]


def final_state(out: Path) -> tuple[float, dict]:
    """The last logged training loss, and the final weights."""
    from safetensors.torch import load_file

    losses = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last = [entry for entry in losses if "loss" in entry][-1]
    assert last["step"] == 8
    return last["loss"], load_file(out / "model.safetensors")


@pytest.fixture(scope="module")
def uninterrupted(installed_plugins, tmp_path_factory) -> Path:
    import os
    import subprocess
    import sys

    cwd = tmp_path_factory.mktemp("uninterrupted")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINER_") and k != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, "-m", "trainer", *RUN, "--output-dir", "out"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    return cwd / "out"


def test_sigkill_then_resume_matches_an_uninterrupted_run(run_trainer, tmp_path, uninterrupted):
    import torch

    killed = run_trainer(
        *RUN,
        "--output-dir",
        "out",
        plugins=["signaller"],
        env={"TRAINER_TEST_SIGNAL": "KILL", "TRAINER_TEST_SIGNAL_AT_STEP": "5"},
    )
    assert killed.returncode == -9
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert not (out / "model.safetensors").exists()  # no final model: the run never finished

    resumed = run_trainer(*RUN, "--output-dir", "out", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming from" in resumed.stderr and "checkpoint-4" in resumed.stderr
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "completed" and status["step"] == 8
    # The completed run's checkpoints are deleted, and the status no longer names one.
    assert status["last_checkpoint"] is None and not (out / "checkpoints").exists()

    loss, weights = final_state(out)
    expected_loss, expected_weights = final_state(uninterrupted)
    assert loss == pytest.approx(expected_loss, abs=1e-4)
    assert weights.keys() == expected_weights.keys()
    for name, tensor in weights.items():
        torch.testing.assert_close(tensor, expected_weights[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("signal_name", "exit_code"), [("INT", 130), ("TERM", 143)])
def test_signal_saves_a_checkpoint_and_marks_the_run_interrupted(
    run_trainer, tmp_path, signal_name, exit_code
):
    stopped = run_trainer(
        *RUN,
        "--output-dir",
        "out",
        plugins=["signaller"],
        env={"TRAINER_TEST_SIGNAL": signal_name, "TRAINER_TEST_SIGNAL_AT_STEP": "3"},
    )
    assert stopped.returncode == exit_code, stopped.stderr
    assert f"training stopped by SIG{signal_name} at step 3" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    out = tmp_path / "out"
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "interrupted" and status["step"] == 3
    assert (out / "checkpoints" / "checkpoint-3" / "trainer_state.json").is_file()
    assert (out / "report.html").is_file() and "Report: " in stopped.stderr  # the curves so far

    resumed = run_trainer(*RUN, "--output-dir", "out", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads((out / "status.json").read_text())
    assert after["status"] == "completed"
    assert (out / "model.safetensors").is_file()
    # The resumed run reports the whole run: its first loss and the time spent before the stop.
    assert "Resuming from step 3" in resumed.stderr
    assert "Trained steps 4-8" in resumed.stdout and "resumed from step 3" in resumed.stdout
    assert "s of training over every part of the run; loss" in resumed.stdout
    assert f"loss {status['first_loss']:.4f} ->" in resumed.stdout
    assert after["resumed_from_step"] == 3
    assert after["first_loss"] == status["first_loss"]
    assert after["elapsed_seconds"] > status["elapsed_seconds"]
    assert after["tokens_seen"] > status["tokens_seen"]


def test_a_signal_after_the_last_step_still_completes_the_run(run_trainer, tmp_path):
    # What torchrun does to the other processes once one has ended: the run has trained every step.
    done = run_trainer(
        *RUN,
        "--output-dir",
        "out",
        plugins=["signaller"],
        env={"TRAINER_TEST_SIGNAL": "TERM", "TRAINER_TEST_SIGNAL_AT_STEP": "8"},
    )
    assert done.returncode == 0, done.stderr
    assert "SIGTERM arrived after the last step" in done.stderr
    out = tmp_path / "out"
    assert json.loads((out / "status.json").read_text())["status"] == "completed"
    assert (out / "model.safetensors").is_file()


def test_resume_without_a_checkpoint_is_one_line(run_trainer):
    result = run_trainer(*RUN, "--output-dir", "out", "--resume")
    assert result.returncode == 2
    assert "--resume: no checkpoint in" in result.stderr
    assert "Traceback" not in result.stderr


def test_resume_and_overwrite_together_are_refused(run_trainer):
    result = run_trainer(*RUN, "--output-dir", "out", "--resume", "--overwrite")
    assert result.returncode == 2
    assert "--overwrite and --resume" in result.stderr


def test_first_signal_asks_to_stop_and_a_second_stops_at_once():
    import os
    import signal

    from trainer.core.interrupt import StopRequest, stop_on_signals

    request = StopRequest()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match="second SIGINT"):
        with stop_on_signals(request):
            os.kill(os.getpid(), signal.SIGTERM)
            assert request.signum == signal.SIGTERM and request.name == "SIGTERM"
            os.kill(os.getpid(), signal.SIGINT)
            pytest.fail("the second signal should have stopped at once")
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
