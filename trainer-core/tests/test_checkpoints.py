"""Checkpoints are whole or absent, checked before a run resumes, and a resumed run is the same run."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

from trainer.core import checkpoint_trainer
from trainer.core.checkpoints import (
    STAGING_DIR,
    check_same_run,
    checkpoint_dirs,
    publish,
    rotate,
    run_settings,
    safetensors_problem,
    settings_differences,
    verify_checkpoint,
    write_settings,
)
from trainer.core.interrupt import checkpoint_to_resume
from trainer.errors import TrainerError

# -- a checkpoint made by hand -----------------------------------------------------------------------


def make_checkpoint(path: Path, step: int, weights: str = "model") -> Path:
    """A checkpoint laid out as transformers saves one: weights, optimizer, scheduler, RNG, state."""
    import torch
    from safetensors.torch import save_file

    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    tensors = {
        "layer.weight": torch.arange(16, dtype=torch.float32).reshape(4, 4),
        "layer.bias": torch.ones(4),
    }
    if weights == "model":
        save_file(tensors, path / "model.safetensors")
    elif weights == "adapter":
        save_file(tensors, path / "adapter_model.safetensors")
    elif weights == "sharded":
        shards = {
            "model-00001-of-00002.safetensors": "layer.weight",
            "model-00002-of-00002.safetensors": "layer.bias",
        }
        for shard, name in shards.items():
            save_file({name: tensors[name]}, path / shard)
        index = {"metadata": {}, "weight_map": {name: shard for shard, name in shards.items()}}
        (path / "model.safetensors.index.json").write_text(json.dumps(index))
    torch.save({"state": {}, "param_groups": []}, path / "optimizer.pt")
    torch.save({"last_epoch": step}, path / "scheduler.pt")
    torch.save({"cpu": torch.random.get_rng_state()}, path / "rng_state.pth")
    write_settings(path, {"config": {}, "processes": 1})
    return path


def cut(file: Path, keep: int | None = None) -> None:
    """Truncate ``file`` to ``keep`` bytes (by default, all but its last 10), as a full disk or kill does."""
    data = file.read_bytes()
    file.write_bytes(data[: len(data) - 10 if keep is None else keep])


@pytest.mark.parametrize("weights", ["model", "adapter", "sharded"])
def test_a_whole_checkpoint_passes(tmp_path, weights):
    assert verify_checkpoint(make_checkpoint(tmp_path / "checkpoint-2", 2, weights)) is None


DAMAGE = {
    "truncated weights": (lambda c: cut(c / "model.safetensors"), "model.safetensors: truncated, "),
    "empty weights": (lambda c: cut(c / "model.safetensors", 0), "model.safetensors: truncated, 0 bytes"),
    "weights cut inside the header": (
        lambda c: cut(c / "model.safetensors", 30),
        "model.safetensors: truncated",
    ),
    "bytes after the data": (
        lambda c: (c / "model.safetensors").write_bytes((c / "model.safetensors").read_bytes() + b"xyz"),
        "model.safetensors: 3 bytes after the data its header describes",
    ),
    "header not JSON": (
        lambda c: (c / "model.safetensors").write_bytes(b"\x04\x00\x00\x00\x00\x00\x00\x00{{{{"),
        "model.safetensors: header is not readable JSON",
    ),
    "no weights": (lambda c: (c / "model.safetensors").unlink(), "model.safetensors: missing"),
    "state cut": (lambda c: cut(c / "trainer_state.json"), "trainer_state.json: not readable JSON"),
    "state gone": (lambda c: (c / "trainer_state.json").unlink(), "trainer_state.json: missing"),
    "state empty": (
        lambda c: (c / "trainer_state.json").write_text("{}"),
        "trainer_state.json: holds no global_step",
    ),
    "no optimizer": (lambda c: (c / "optimizer.pt").unlink(), "optimizer.pt: missing"),
    "optimizer cut": (lambda c: cut(c / "optimizer.pt"), "optimizer.pt: truncated or not a torch file"),
    "no scheduler": (lambda c: (c / "scheduler.pt").unlink(), "scheduler.pt: missing"),
    "RNG state cut": (lambda c: cut(c / "rng_state.pth"), "rng_state.pth: truncated or not a torch file"),
    "settings cut": (lambda c: cut(c / "trainer_config.json"), "trainer_config.json: not readable JSON"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_each_kind_of_damage_is_named_with_its_file(tmp_path, damage):
    harm, expected = DAMAGE[damage]
    checkpoint = make_checkpoint(tmp_path / "checkpoint-2", 2)
    harm(checkpoint)
    problem = verify_checkpoint(checkpoint)
    assert problem is not None and problem.startswith(expected), problem


def test_a_sharded_checkpoint_with_a_missing_or_cut_shard_is_damaged(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "checkpoint-2", 2, "sharded")
    cut(checkpoint / "model-00001-of-00002.safetensors")
    assert verify_checkpoint(checkpoint).startswith("model-00001-of-00002.safetensors: truncated")
    (checkpoint / "model-00002-of-00002.safetensors").unlink()
    (checkpoint / "model-00001-of-00002.safetensors").unlink()
    assert verify_checkpoint(checkpoint) == (
        "model-00001-of-00002.safetensors: missing, though model.safetensors.index.json lists it"
    )


def test_the_header_check_agrees_with_safetensors_itself(tmp_path):
    """Every length the file could be cut to, or grown to, is judged as safetensors judges it."""
    from safetensors.torch import load_file

    whole = make_checkpoint(tmp_path / "checkpoint-2", 2) / "model.safetensors"
    data = whole.read_bytes()
    file = tmp_path / "probe.safetensors"
    for length in [0, 7, 8, 9, 40, len(data) - 64, len(data) - 1, len(data), len(data) + 1]:
        file.write_bytes((data + b"\0")[:length])
        try:
            load_file(file)
            loads = True
        except Exception:
            loads = False
        assert (safetensors_problem(file) is None) == loads, length


# -- choosing the checkpoint to resume from ----------------------------------------------------------


def test_latest_passes_over_a_damaged_newest_checkpoint(tmp_path):
    make_checkpoint(tmp_path / "checkpoint-2", 2)
    newest = make_checkpoint(tmp_path / "checkpoint-4", 4)
    size = (newest / "model.safetensors").stat().st_size
    cut(newest / "model.safetensors")
    messages: list[str] = []
    assert checkpoint_to_resume("latest", tmp_path, messages.append) == str(tmp_path / "checkpoint-2")
    assert messages == [
        f"checkpoint-4 is damaged (model.safetensors: truncated, {size - 10:,} of {size:,} bytes); "
        "resuming from checkpoint-2"
    ]


def test_numbers_order_checkpoints_not_names(tmp_path):
    for step in (9, 10, 100):
        make_checkpoint(tmp_path / f"checkpoint-{step}", step)
    assert [path.name for path in checkpoint_dirs(tmp_path)] == [
        "checkpoint-100",
        "checkpoint-10",
        "checkpoint-9",
    ]
    assert checkpoint_to_resume("latest", tmp_path) == str(tmp_path / "checkpoint-100")


def test_a_damaged_checkpoint_named_by_path_is_refused_naming_the_file_and_a_whole_one(tmp_path):
    make_checkpoint(tmp_path / "checkpoint-2", 2)
    make_checkpoint(tmp_path / "checkpoint-4", 4)
    damaged = make_checkpoint(tmp_path / "checkpoint-6", 6)
    (damaged / "optimizer.pt").unlink()
    with pytest.raises(TrainerError) as caught:
        checkpoint_to_resume(str(damaged), tmp_path)
    message = str(caught.value)
    assert message.startswith(f"--resume: checkpoint '{damaged}' is damaged: optimizer.pt: missing; ")
    assert f"the newest whole checkpoint is {tmp_path / 'checkpoint-4'}" in message
    assert "\n" not in message


def test_no_whole_checkpoint_at_all_is_an_error_naming_each(tmp_path):
    cut(make_checkpoint(tmp_path / "checkpoint-2", 2) / "model.safetensors", 0)
    (make_checkpoint(tmp_path / "checkpoint-4", 4) / "scheduler.pt").unlink()
    with pytest.raises(
        TrainerError,
        match=r"no whole checkpoint in .*checkpoint-4 is damaged \(scheduler.pt: "
        r"missing\); checkpoint-2 is damaged \(model.safetensors: truncated, 0 bytes\)",
    ):
        checkpoint_to_resume("latest", tmp_path)
    with pytest.raises(TrainerError, match="no other whole checkpoint is there"):
        checkpoint_to_resume(str(tmp_path / "checkpoint-4"), tmp_path)


def test_a_staging_folder_is_never_taken_for_a_checkpoint(tmp_path):
    """Not by us, and not by transformers, which finds checkpoints by their name."""
    from transformers.trainer_utils import get_last_checkpoint

    make_checkpoint(tmp_path / "checkpoint-2", 2)
    make_checkpoint(tmp_path / STAGING_DIR / "checkpoint-6", 6)  # whole, but never renamed into place
    messages: list[str] = []
    assert checkpoint_to_resume("latest", tmp_path, messages.append) == str(tmp_path / "checkpoint-2")
    assert get_last_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-2")
    assert messages == [
        f"An interrupted save left {tmp_path / STAGING_DIR} incomplete; it is not a checkpoint and is removed"
    ]
    with pytest.raises(TrainerError, match="is an incomplete save in the staging folder, not a checkpoint"):
        checkpoint_to_resume(str(tmp_path / STAGING_DIR / "checkpoint-6"), tmp_path)


# -- writing: publish and rotate ---------------------------------------------------------------------


def test_publish_renames_into_place_replacing_an_old_checkpoint_of_that_step(tmp_path):
    old = make_checkpoint(tmp_path / "checkpoint-4", 4)
    cut(old / "model.safetensors")
    staged = make_checkpoint(tmp_path / STAGING_DIR / "checkpoint-4", 4)
    (staged / "marker").write_text("new")
    assert publish(staged, tmp_path) == tmp_path / "checkpoint-4"
    assert (tmp_path / "checkpoint-4" / "marker").read_text() == "new"
    assert verify_checkpoint(tmp_path / "checkpoint-4") is None
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint-4"]  # no staging folder left


def test_rotation_keeps_the_new_checkpoint_and_deletes_the_oldest(tmp_path):
    for step in (2, 4, 8):
        make_checkpoint(tmp_path / f"checkpoint-{step}", step)
    new = make_checkpoint(tmp_path / "checkpoint-6", 6)  # a resumed run saving below a stale checkpoint-8
    assert rotate(tmp_path, 1, keep=new) == [
        tmp_path / name for name in ("checkpoint-2", "checkpoint-4", "checkpoint-8")
    ]
    assert [path.name for path in checkpoint_dirs(tmp_path)] == ["checkpoint-6"]
    assert rotate(tmp_path, None, keep=new) == []


# -- the same run ------------------------------------------------------------------------------------


def settings(**changes) -> dict:
    """The demo's settings, with ``{"hyperparams.batch_size": 4, ...}`` changed."""
    from trainer.config import TrainerConfig

    config = TrainerConfig()
    for name, value in changes.items():
        *sections, field = name.split(".")
        target = config
        for section in sections:
            target = getattr(target, section)
        setattr(target, field, value)
    return json.loads(json.dumps(run_settings(config, config.hyperparams)))


def test_settings_that_change_the_run_are_told_from_harmless_ones():
    saved = settings()
    current = settings(
        **{
            "hyperparams.batch_size": 4,
            "hyperparams.learning_rate": 1e-3,
            "hyperparams.max_steps": 500,
            "data.packing": True,
            "model.lora.r": 8,
            "profile.options": {"exclamations": 2},
            "inference.num_samples": 2,
            "output.save_steps": 100,
        }
    )
    refused, harmless = settings_differences(saved, current)
    assert refused == [
        "data.packing false -> true",
        "hyperparams.batch_size 8 -> 4",
        "hyperparams.learning_rate 0.0002 -> 0.001",
        "model.lora.r 16 -> 8",
        "profile.options.exclamations (unset) -> 2",
    ]
    assert harmless == [
        "hyperparams.max_steps null -> 500",
        "inference.num_samples 4 -> 2",
        "output.save_steps 500 -> 100",
    ]


def test_the_data_mixture_and_the_number_of_processes_are_part_of_the_run():
    from trainer.config import TrainerConfig

    mixed = TrainerConfig.from_dict(
        {"data": {"mixture": [{"path": "a.jsonl", "weight": 1.0}, {"path": "b.jsonl", "weight": 1.0}]}}
    )
    other = TrainerConfig.from_dict(
        {"data": {"mixture": [{"path": "a.jsonl", "weight": 1.0}, {"path": "b.jsonl", "weight": 3.0}]}}
    )
    saved = run_settings(mixed, mixed.hyperparams)
    refused, _ = settings_differences(saved, run_settings(other, other.hyperparams))
    assert len(refused) == 1 and refused[0].startswith("data.mixture [")
    refused, _ = settings_differences({**saved, "processes": 2}, saved)
    assert refused == ["processes 2 -> 1"]


def test_resuming_with_other_settings_is_refused_in_one_line_unless_anyway(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "checkpoint-4", 4)
    write_settings(checkpoint, settings(**{"hyperparams.batch_size": 8}))
    messages: list[str] = []
    with pytest.raises(TrainerError) as caught:
        check_same_run(checkpoint, settings(**{"hyperparams.batch_size": 4}), False, messages.append)
    assert "hyperparams.batch_size 8 -> 4" in str(caught.value) and "--resume-anyway" in str(caught.value)
    assert "\n" not in str(caught.value) and messages == []

    check_same_run(checkpoint, settings(**{"hyperparams.batch_size": 4}), True, messages.append)
    assert messages == [
        "warning: --resume-anyway: continuing checkpoint-4 with changed settings: "
        "hyperparams.batch_size 8 -> 4"
    ]
    messages.clear()
    check_same_run(checkpoint, settings(**{"hyperparams.batch_size": 8}), False, messages.append)
    assert messages == []  # the same settings: nothing to say


def test_harmless_changes_pass_with_a_note(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "checkpoint-4", 4)
    write_settings(checkpoint, settings())
    messages: list[str] = []
    changed = settings(
        **{"inference.num_samples": 2, "inference.eval_steps": 10, "hyperparams.max_steps": 900}
    )
    check_same_run(checkpoint, changed, False, messages.append)
    assert messages == [
        "note: settings changed since checkpoint-4, none that changes the run: "
        "hyperparams.max_steps null -> 900, inference.eval_steps 50 -> 10, inference.num_samples 4 -> 2"
    ]


def test_a_checkpoint_without_settings_is_not_compared(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "checkpoint-4", 4)
    (checkpoint / "trainer_config.json").unlink()
    messages: list[str] = []
    check_same_run(checkpoint, settings(), False, messages.append)
    assert messages == [
        "note: checkpoint-4 holds no trainer_config.json (an older trainer saved it); settings not compared"
    ]


# -- saving, in process: a tiny model ----------------------------------------------------------------

ROWS = [
    {"prompt": f"What is {a} plus {b}?", "response": f"{a} plus {b} is {a + b}."}
    for a in range(6)
    for b in range(4)
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A two-layer Qwen3 model with its own tokenizer, saved as a user's model would be."""
    from trainer.testing import tiny_qwen3, tiny_tokenizer

    directory = tmp_path_factory.mktemp("model")
    tokenizer = tiny_tokenizer(
        [row["prompt"] + " " + row["response"] for row in ROWS] * 3 + ["You are a helpful assistant."]
    )
    tokenizer.save_pretrained(directory)
    tiny_qwen3(tokenizer, max_position_embeddings=128).save_pretrained(directory)
    return directory


def tiny_run(tmp_path: Path, model_dir: Path, **output) -> object:
    from trainer.config import TrainerConfig

    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return TrainerConfig.from_dict(
        {
            "model": {"model_path": str(model_dir)},
            "data": {"dataset_path": str(tmp_path / "rows.jsonl"), "max_length": 64},
            "hyperparams": {"max_steps": 4, "batch_size": 4, "learning_rate": 1e-3},
            "inference": {"eval_steps": 0},
            "output": {"output_dir": str(tmp_path / "out"), "save_steps": 1, **output},
        }
    )


def test_checkpoints_appear_whole_with_the_run_settings_and_old_ones_go_only_after(
    tmp_path, model_dir, monkeypatch
):
    from trainer.core import TrainerEngine

    seen: list[tuple[str, list[str]]] = []
    real_rotate = checkpoint_trainer.rotate

    def spy(checkpoints_dir, limit, keep):
        # When old checkpoints are deleted, the new one is already whole and in place.
        assert verify_checkpoint(keep) is None and keep.parent == checkpoints_dir
        seen.append((keep.name, [path.name for path in checkpoint_dirs(checkpoints_dir)]))
        return real_rotate(checkpoints_dir, limit, keep)

    monkeypatch.setattr(checkpoint_trainer, "rotate", spy)
    config = tiny_run(tmp_path, model_dir, save_total_limit=2, keep_checkpoints=True)
    assert TrainerEngine().run_job(config).status == "completed"
    assert seen == [
        ("checkpoint-1", ["checkpoint-1"]),
        ("checkpoint-2", ["checkpoint-2", "checkpoint-1"]),
        ("checkpoint-3", ["checkpoint-3", "checkpoint-2", "checkpoint-1"]),
        ("checkpoint-4", ["checkpoint-4", "checkpoint-3", "checkpoint-2"]),
    ]
    checkpoints = tmp_path / "out" / "checkpoints"
    assert sorted(path.name for path in checkpoints.iterdir()) == ["checkpoint-3", "checkpoint-4"]
    saved = json.loads((checkpoints / "checkpoint-4" / "trainer_config.json").read_text())
    assert saved["config"]["hyperparams"]["batch_size"] == 4 and saved["processes"] == 1
    assert saved["config"]["data"]["dataset_path"] == str(tmp_path / "rows.jsonl")


@pytest.mark.parametrize(
    ("failure", "raised"),
    [(RuntimeError("boom"), RuntimeError), (OSError(errno.ENOSPC, "No space left on device"), TrainerError)],
    ids=["a bug", "a full disk"],
)
def test_a_failure_mid_save_leaves_no_checkpoint(tmp_path, model_dir, monkeypatch, failure, raised):
    from transformers import Trainer

    from trainer.core import TrainerEngine

    def fail(self, output_dir):  # the model and optimizer are written by now, the RNG state not yet
        assert (Path(output_dir) / "model.safetensors").is_file()
        raise failure

    monkeypatch.setattr(Trainer, "_save_rng_state", fail)
    with pytest.raises(raised) as caught:
        TrainerEngine().run_job(tiny_run(tmp_path, model_dir))
    checkpoints = tmp_path / "out" / "checkpoints"
    assert list(checkpoints.iterdir()) == []  # neither a checkpoint-1 nor what was staged
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["status"] == "failed"
    if raised is TrainerError:  # the engine's one line for a full disk (trainer.core.disk)
        assert "\n" not in str(caught.value) and "checkpoint 1" in str(caught.value)


# -- the command line: a demo run stopped at step 4, then resumed -------------------------------------

RUN = [
    "run",
    "--max-steps",
    "6",
    "--batch-size",
    "4",
    "--set",
    "output.save_steps=2",
    "--set",
    "inference.eval_steps=0",
    "--set",
    "data.max_length=128",
    "--output-dir",
    "out",
]


@pytest.fixture(scope="module")
def stopped_run(installed_plugins, tmp_path_factory) -> Path:
    """A demo run stopped by SIGINT at step 4 of 6, with checkpoint-2 and checkpoint-4."""
    import os
    import subprocess
    import sys

    cwd = tmp_path_factory.mktemp("stopped")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINER_") and k != "PYTHONPATH"}
    env.update(
        PYTHONPATH=str(installed_plugins["signaller"]),
        TRAINER_TEST_SIGNAL="INT",
        TRAINER_TEST_SIGNAL_AT_STEP="4",
    )
    completed = subprocess.run(
        [sys.executable, "-m", "trainer", *RUN], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 130, completed.stderr
    out = cwd / "out"
    assert [path.name for path in checkpoint_dirs(out / "checkpoints")] == ["checkpoint-4", "checkpoint-2"]
    return out


@pytest.fixture
def out(stopped_run, tmp_path) -> Path:
    """A copy of the stopped run, in this test's folder."""
    return Path(shutil.copytree(stopped_run, tmp_path / "out"))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def test_cli_resume_passes_over_a_damaged_checkpoint_and_a_leftover_staging_folder(run_trainer, out):
    cut(out / "checkpoints" / "checkpoint-4" / "model.safetensors")
    leftover = out / "checkpoints" / STAGING_DIR / "checkpoint-6"
    leftover.mkdir(parents=True)
    (leftover / "model.safetensors").write_bytes(b"\x10\x00")  # a kill -9 mid-save
    resumed = run_trainer(*RUN, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "checkpoint-4 is damaged (model.safetensors: truncated, " in resumed.stderr
    assert "; resuming from checkpoint-2\n" in resumed.stderr
    assert (
        "Resuming from step 2" in resumed.stderr and "it is not a checkpoint and is removed" in resumed.stderr
    )
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "completed" and status["step"] == 6
    checkpoints = out / "checkpoints"
    assert not checkpoints.exists() or not (checkpoints / STAGING_DIR).exists()


def test_cli_resume_path_to_a_damaged_checkpoint_is_one_line(run_trainer, out):
    damaged = out / "checkpoints" / "checkpoint-4"
    cut(damaged / "model.safetensors")
    result = run_trainer(*RUN, "--resume", str(damaged))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = error_lines(result.stderr)
    assert line.startswith(
        f"Error: --resume: checkpoint '{damaged}' is damaged: model.safetensors: truncated, "
    )
    assert line.endswith(
        f"the newest whole checkpoint is {out / 'checkpoints' / 'checkpoint-2'}: "
        f"pass --resume {out / 'checkpoints' / 'checkpoint-2'}"
    )


def test_cli_resume_with_another_batch_size_is_refused_in_one_line(run_trainer, out):
    record = (out / "status.json").read_bytes()
    result = run_trainer(*RUN, "--batch-size", "2", "--resume")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = error_lines(result.stderr)
    assert "hyperparams.batch_size 4 -> 2" in line and "--resume-anyway" in line
    # The refused command leaves the record of the run it meant to continue as it was.
    assert (out / "status.json").read_bytes() == record


def test_cli_resume_anyway_continues_with_a_warning_and_a_note_of_harmless_changes(run_trainer, out):
    result = run_trainer(
        *RUN, "--batch-size", "2", "--set", "inference.num_samples=2", "--resume", "--resume-anyway"
    )
    assert result.returncode == 0, result.stderr
    assert (
        "warning: --resume-anyway: continuing checkpoint-4 with changed settings: "
        "hyperparams.batch_size 4 -> 2\n" in result.stderr
    )
    assert (
        "note: settings changed since checkpoint-4, none that changes the run: inference.num_samples 4 -> 2\n"
        in result.stderr
    )
    assert "Trained steps 5-6" in result.stdout


def test_cli_resume_anyway_without_resume_is_refused(run_trainer):
    result = run_trainer(*RUN, "--resume-anyway")
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        "Error: --resume-anyway goes with --resume: add --resume, or leave --resume-anyway out"
    ]
