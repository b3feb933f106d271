"""Several processes: `trainer run` under torchrun on CPU (gloo), and FSDP / DeepSpeed settings.

The engines themselves (FSDP, DeepSpeed) need GPUs; here only their settings' way into
transformers' ``TrainingArguments`` is checked.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.config import TrainerConfig
from trainer.core import RunResult, TrainerEngine, arguments, engine
from trainer.errors import TrainerError

STEPS = 4
# Measured on 2 CPU cores (torch 2.13, transformers 5.24): the two losses differ by at most
# 1e-6 per step (4.8e-7 over 40 steps). They are not bit-identical because each process pads
# its own two rows (to their longest, not to the longest of four), and token losses and
# gradients are summed across the processes in another order than one process sums its four
# rows. Other rows move the loss by far more: when each process read all the data on its own
# (accelerate not told to run several processes on CPU), the first loss was 0.05 off.
LOSS_TOLERANCE = 1e-4


def trainer_env() -> dict[str, str]:
    """This environment without TRAINER_* controls or PYTHONPATH, one thread per process."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TRAINER_") and key != "PYTHONPATH"
    }
    env["OMP_NUM_THREADS"] = "1"  # what torchrun gives each process, so the runs compare
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_run(
    cwd: Path, *launcher: str, output_dir: str, batch_size: int, steps: int = STEPS
) -> subprocess.CompletedProcess:
    """``trainer run`` on the embedded demo model, for ``steps`` steps, previews off."""
    return subprocess.run(
        [
            *launcher,
            "-m",
            "trainer",
            "run",
            "--max-steps",
            str(steps),
            "--batch-size",
            str(batch_size),
            "--set",
            "inference.eval_steps=0",
            "--set",
            "output.keep_checkpoints=true",  # the final checkpoint holds the log history compared below
            # float32 and batches drawn at random: bf16 (auto's choice on CPUs with native bf16)
            # would move the losses more than the tolerance, and grouping by length groups each
            # process's batch of 2, not the global batch of 4, so the rows would differ.
            "--set",
            "model.precision=float32",
            "--set",
            "data.group_by_length=false",
            "--output-dir",
            output_dir,
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=trainer_env(),
        timeout=240,
    )


def logged_steps(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    two = demo_run(tmp_path, *torchrun, "--master_port", str(free_port()), output_dir="two", batch_size=2)
    assert two.returncode == 0, two.stderr[-3000:]
    one = demo_run(tmp_path, sys.executable, output_dir="one", batch_size=4)
    assert one.returncode == 0, one.stderr[-3000:]

    # The main process alone writes: one status file, one metrics log, one final model.
    out = tmp_path / "two"
    assert [p.relative_to(tmp_path) for p in tmp_path.glob("**/status.json")] == [
        Path("one/status.json"),
        Path("two/status.json"),
    ]
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "completed" and status["step"] == STEPS and status["error"] is None
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["model.safetensors"]
    assert not list(out.glob(".final-*"))
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [f"checkpoint-{STEPS}"]
    # ... and speaks once: the CLI's summary and the engine's messages are not repeated.
    assert two.stdout.count(f"Trained {STEPS} steps") == 1
    assert two.stderr.count("Using the embedded demo model") == 1
    assert two.stderr.count("Report: ") == 1

    # One line per logging step, not one per process.
    multi, single = logged_steps(out), logged_steps(tmp_path / "one")
    assert [entry["step"] for entry in multi] == [entry["step"] for entry in single] == [1, 2, 3, 4]
    # The same rows in the same order: accelerate's seeded sampler draws one order on every
    # process and deals each its share of every global batch.
    assert [entry["tokens_seen"] for entry in multi] == [entry["tokens_seen"] for entry in single]
    for step, (a, b) in enumerate(zip(multi, single, strict=True), start=1):
        assert a["loss"] == pytest.approx(b["loss"], abs=LOSS_TOLERANCE), f"step {step}"
    assert multi[-1]["loss"] < multi[0]["loss"] - 0.5  # it trained
    state = json.loads((out / "checkpoints" / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())
    assert [entry["loss"] for entry in state["log_history"] if "loss" in entry] == pytest.approx(
        [entry["loss"] for entry in multi], abs=1e-6
    )


SOAK_RUNS = int(os.environ.get("TRAINER_SOAK_RUNS", "30"))
"""30 runs catch a fault that strikes one run in ten with 96% probability (1 - 0.9 ** 30)."""


@pytest.mark.soak
def test_two_processes_end_cleanly_run_after_run(tmp_path):
    """The end of a two-process run, over and over: no rank aborts, every run completes.

    A process group torn down by the interpreter at exit, threads still running, aborted one
    rank now and then (``terminate called without an active exception``), and torchrun then
    stopped the other in the middle of its last step. ``nox -s soak`` runs this (so does CI).
    """
    failures = []
    for attempt in range(1, SOAK_RUNS + 1):
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
        launcher = [*torchrun, "--master_port", str(free_port())]
        done = demo_run(tmp_path, *launcher, output_dir=f"run-{attempt}", batch_size=2, steps=2)
        status_file = tmp_path / f"run-{attempt}" / "status.json"
        status = json.loads(status_file.read_text())["status"] if status_file.exists() else "none"
        if done.returncode != 0 or status != "completed" or "terminate called" in done.stderr:
            failures.append(f"run {attempt}: exit {done.returncode}, status {status}: {done.stderr[-1500:]}")
        shutil.rmtree(tmp_path / f"run-{attempt}", ignore_errors=True)
    assert not failures, f"{len(failures)} of {SOAK_RUNS} runs failed:\n" + "\n".join(failures)


# -- FSDP, DeepSpeed and the DDP backend reach TrainingArguments ------------------------------


def test_fsdp_reaches_the_training_arguments(tmp_path, monkeypatch):
    # TrainingArguments records an FSDP loading choice in the environment; keep it in this test.
    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "false")
    system = TrainerConfig.from_dict(
        {
            "system": {
                "fsdp": "full_shard auto_wrap",
                "fsdp_config": {"state_dict_type": "SHARDED_STATE_DICT"},
            }
        }
    ).system
    distributed = arguments.distributed_arguments(system, tmp_path)
    assert distributed == {
        "fsdp": "full_shard auto_wrap",
        "fsdp_config": {"state_dict_type": "SHARDED_STATE_DICT"},
    }
    args = arguments.training_arguments(
        checkpoints_dir=tmp_path / "checkpoints",
        hyper=TrainerConfig().hyperparams,
        precision="float32",
        device="cpu",
        evaluate=False,
        save_steps=10,
        save_total_limit=1,
        report_to=[],
        **distributed,
    )
    assert args.fsdp  # transformers' own form of it varies between versions
    assert args.fsdp_config["state_dict_type"] == "SHARDED_STATE_DICT"
    assert args.world_size == 1  # FSDP wants several processes; here it is only configured

    system.fsdp = "true"
    assert arguments.distributed_arguments(system, tmp_path)["fsdp"] is True


def test_ddp_backend_reaches_the_training_arguments_of_several_processes(tmp_path, monkeypatch):
    system = TrainerConfig.from_dict({"system": {"ddp_backend": "gloo"}}).system
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert arguments.distributed_arguments(system, tmp_path) == {}  # one process: no process group
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert arguments.distributed_arguments(system, tmp_path) == {"ddp_backend": "gloo"}


def test_nothing_distributed_is_passed_by_default(tmp_path):
    assert arguments.distributed_arguments(TrainerConfig().system, tmp_path) == {}


def test_deepspeed_config_path_is_resolved_against_base_dir(tmp_path, monkeypatch):
    import importlib.util

    (tmp_path / "ds_zero3.json").write_text('{"zero_optimization": {"stage": 3}}')
    system = TrainerConfig.from_dict(
        {"system": {"deepspeed": "ds_zero3.json", "base_dir": str(tmp_path)}}
    ).system
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "deepspeed" else find_spec(name, *a)
    )
    assert arguments.distributed_arguments(system, tmp_path) == {"deepspeed": str(tmp_path / "ds_zero3.json")}


def test_deepspeed_not_installed_is_one_clear_error(tmp_path):
    import importlib.util

    if importlib.util.find_spec("deepspeed") is not None:
        pytest.skip("DeepSpeed is installed here")
    (tmp_path / "ds.json").write_text("{}")
    system = TrainerConfig.from_dict({"system": {"deepspeed": "ds.json", "base_dir": str(tmp_path)}}).system
    with pytest.raises(TrainerError, match="needs DeepSpeed.*pip install deepspeed"):
        arguments.distributed_arguments(system, tmp_path)


def test_run_job_passes_the_system_settings_on(tmp_path, monkeypatch):
    """The flow hands ``system.*`` to the TrainingArguments it builds (checked on a dry run)."""
    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "false")
    seen: dict = {}
    build = arguments.training_arguments

    def spy(**kwargs):
        seen.update(copy.deepcopy(kwargs))  # TrainingArguments fills fsdp_config in place
        return build(**kwargs)

    monkeypatch.setattr(engine, "training_arguments", spy)
    config = TrainerConfig.from_dict(
        {
            "system": {"fsdp": "shard_grad_op", "fsdp_config": {"version": 2}, "ddp_backend": "gloo"},
            "output": {"output_dir": str(tmp_path / "out")},
            "debug": {"dry_run": True, "example_limit": 16},
        }
    )
    assert TrainerEngine().run_job(config).status == "dry_run"
    assert config.system.fsdp_config == {"version": 2}  # the config is left as it was
    assert seen["fsdp"] == "shard_grad_op"
    assert seen["fsdp_config"] == {"version": 2}
    assert "ddp_backend" not in seen  # a single process


def test_other_processes_neither_check_the_output_dir_nor_report(tmp_path, monkeypatch):
    """Rank 1 may start after rank 0 wrote its status file: it must not refuse, nor write, nor speak."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "status.json").write_text('{"status": "starting"}')
    monkeypatch.setenv("RANK", "1")

    def run_without_training(self, config, base_dir, output_dir, hub, *rest):
        self.on_message("trained")
        hub.emit("end", status="completed")
        return RunResult(status="completed", output_dir=output_dir)

    monkeypatch.setattr(TrainerEngine, "_run", run_without_training)
    messages: list[str] = []
    config = TrainerConfig.from_dict({"output": {"output_dir": str(tmp_path / "out")}})
    result = TrainerEngine(on_message=messages.append).run_job(config)
    assert result.status == "completed" and not result.main_process
    assert messages == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["status.json"]
    assert json.loads((tmp_path / "out" / "status.json").read_text()) == {"status": "starting"}

    monkeypatch.setenv("RANK", "0")
    with pytest.raises(TrainerError, match="is not empty"):
        TrainerEngine(on_message=messages.append).run_job(config)
