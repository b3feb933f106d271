"""Disk space: the estimate before training, the policy on free space, and a disk that fills mid-run.

A full disk is simulated (a save raising ENOSPC, or torch's wrapped error with ``disk_usage``
reporting almost nothing free), so the tests need no small filesystem and no root.
"""

from __future__ import annotations

import errno
import json
from collections import namedtuple
from pathlib import Path

import pytest

from trainer.core import disk
from trainer.core.checkpoints import STAGING_DIR, checkpoint_dirs, verify_checkpoint, write_settings
from trainer.core.disk import (
    ModelSizes,
    SpaceEstimate,
    estimate_space,
    optimizer_state_bytes,
    planned_saves,
    remove_partial_files,
    size_text,
    space_verdict,
    total_steps,
)
from trainer.errors import FileSystemError, OutOfSpaceError, TrainerError

MiB = 1024 * 1024
Usage = namedtuple("Usage", "total used free")

# -- the estimate ------------------------------------------------------------------------------------


def test_optimizer_state_follows_the_optimizer():
    shapes = [((10, 20), 4), ((20,), 4)]  # 220 float32 parameters: a matrix and a vector
    assert optimizer_state_bytes(shapes, "adamw_torch") == 2 * 220 * 4  # two moments
    assert optimizer_state_bytes(shapes, "adamw_torch_fused") == 2 * 220 * 4
    assert optimizer_state_bytes([((10, 20), 2)], "adamw_torch") == 2 * 200 * 2  # in the parameter's dtype
    assert optimizer_state_bytes(shapes, "lion_32bit") == 220 * 4
    assert optimizer_state_bytes(shapes, "sgd") == 0
    assert optimizer_state_bytes(shapes, "adamw_8bit") == 2 * 220
    assert optimizer_state_bytes(shapes, "adafactor") == 4 * (20 + 10) + 4 * 20  # a row and a column


def test_model_sizes_count_tied_weights_once_and_only_trainable_ones_for_the_optimizer():
    import torch

    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False))
    model[1].weight = model[0].weight  # tied, as embeddings often are
    frozen = torch.nn.Linear(4, 3)  # 12 + 3 parameters the optimizer does not update
    frozen.requires_grad_(False)
    model.append(frozen)
    sizes = disk.model_sizes(model, "adamw_torch")
    assert sizes.parameters == 40 + 15
    assert sizes.parameter_bytes == 4 * 55
    assert (sizes.trainable, sizes.trainable_bytes) == (40, 160)
    assert sizes.optimizer_bytes == 2 * 40 * 4
    assert not sizes.adapter
    assert disk.model_sizes(model, "adamw_torch", master_weights=True).optimizer_bytes == 2 * 160 + 160


FULL = ModelSizes(
    parameters=1000, parameter_bytes=4000, trainable=1000, trainable_bytes=4000, optimizer_bytes=8000
)


def test_a_checkpoint_holds_weights_optimizer_and_tokenizer_and_the_final_model_its_save_dtype():
    estimate = estimate_space(FULL, tokenizer_bytes=500, dtype_bytes=2, merge_lora=False, saves=1, limit=2)
    assert estimate.checkpoint_bytes == 4000 + 8000 + 500 + disk.SMALL_FILES
    assert estimate.final_model_bytes == 1000 * 2 + 500 + disk.SMALL_FILES  # bfloat16
    assert estimate.minimum_bytes == estimate.checkpoint_bytes + estimate.final_model_bytes


@pytest.mark.parametrize(
    ("saves", "limit", "existing", "at_once", "peak"),
    [
        (0, 2, 0, 0, lambda c, f: f),  # no checkpoint: the final model alone
        (1, 2, 0, 1, lambda c, f: c + f),
        (5, 2, 0, 3, lambda c, f: max(3 * c, 2 * c + f)),  # two kept, and a third while it is written
        (5, 1, 0, 2, lambda c, f: max(2 * c, c + f)),
        (5, None, 0, 5, lambda c, f: 5 * c + f),  # every checkpoint kept
        (2, 2, 2, 3, lambda c, f: max(3 * c, 2 * c + f) - 2 * c),  # a resumed run: two already on disk
    ],
    ids=["no saves", "one save", "limit 2", "limit 1", "no limit", "resumed"],
)
def test_checkpoints_on_disk_at_once_are_the_kept_ones_plus_the_one_being_written(
    saves, limit, existing, at_once, peak
):
    estimate = estimate_space(
        FULL, tokenizer_bytes=0, dtype_bytes=4, merge_lora=False, saves=saves, limit=limit, existing=existing
    )
    c, f = estimate.checkpoint_bytes, estimate.final_model_bytes
    assert estimate.checkpoints_at_once == at_once
    assert estimate.needed_bytes == peak(c, f)
    assert estimate.minimum_bytes == f + (c if saves else 0)


def test_lora_checkpoints_hold_the_adapter_and_the_final_model_is_the_adapter_or_the_merged_model():
    lora = ModelSizes(
        parameters=1100,
        parameter_bytes=4400,
        trainable=100,
        trainable_bytes=400,
        optimizer_bytes=800,
        adapter=True,
    )
    adapter = estimate_space(lora, tokenizer_bytes=0, dtype_bytes=2, merge_lora=False, saves=1, limit=2)
    assert adapter.checkpoint_bytes == 400 + 800 + disk.SMALL_FILES
    assert adapter.final_model_bytes == 400 + disk.SMALL_FILES  # saved as trained
    merged = estimate_space(lora, tokenizer_bytes=0, dtype_bytes=2, merge_lora=True, saves=1, limit=2)
    assert merged.final_model_bytes == 1000 * 2 + disk.SMALL_FILES  # the base weights, merged


def test_steps_and_saves():
    assert total_steps(8, 1000, 4, 1, 1, 3.0) == 8  # max_steps wins
    assert total_steps(-1, 100, 4, 1, 1, 2.0) == 50
    assert total_steps(-1, 100, 4, 2, 2, 1.0) == 6  # 13 batches a process, 2 per step
    assert total_steps(-1, 3, 4, 8, 1, 1.0) == 1
    assert planned_saves(0, 8, 4, keep_final=True) == 2  # steps 4 and 8
    assert planned_saves(0, 10, 4, keep_final=True) == 3  # 4, 8 and the last one
    assert planned_saves(0, 10, 4, keep_final=False) == 2  # no checkpoint at the end
    assert planned_saves(4, 10, 4, keep_final=False) == 1  # resumed at 4: only 8 is left
    assert planned_saves(0, 3, 500, keep_final=False) == 0
    assert planned_saves(10, 10, 4, keep_final=True) == 0


def test_size_text():
    assert size_text(512) == "512 bytes"
    assert size_text(1536) == "1.5 KiB"
    assert size_text(42.4 * MiB) == "42.4 MiB"
    assert size_text(3 * 1024**4) == "3.0 TiB"


# -- the policy ----------------------------------------------------------------------------------------

ESTIMATE = SpaceEstimate(
    checkpoint_bytes=40 * MiB,
    final_model_bytes=15 * MiB,
    saves=2,
    checkpoints_at_once=2,
    needed_bytes=95 * MiB,
    minimum_bytes=55 * MiB,
)


def test_enough_space_says_nothing():
    assert space_verdict(ESTIMATE, 95 * MiB, "refuse", "/scratch (xfs)") is None


def test_short_of_the_whole_run_warns_naming_both_numbers():
    warning = space_verdict(ESTIMATE, 60 * MiB, "refuse", "/scratch (xfs)")
    assert warning is not None and warning.startswith("warning: /scratch (xfs) has 60.0 MiB free")
    assert "about 95.0 MiB at its fullest" in warning
    assert "up to 2 checkpoints of 40.0 MiB at once, and the final model of 15.0 MiB" in warning
    assert "output.save_total_limit" in warning


def test_short_of_the_final_model_and_one_checkpoint_is_refused_with_the_way_to_go_on():
    with pytest.raises(OutOfSpaceError) as refused:
        space_verdict(ESTIMATE, 24 * MiB, "refuse", "/scratch (xfs)")
    message = str(refused.value)
    assert message.startswith(
        "not enough space on /scratch (xfs) for this run: 24.0 MiB free, and the final model (15.0 MiB) "
        "and one checkpoint (40.0 MiB) need 55.0 MiB"
    )
    assert "output.disk_space_check: warn" in message and "\n" not in message
    assert isinstance(refused.value, TrainerError)  # exit 2, no traceback


def test_warn_only_warns_and_off_does_not_compare():
    warning = space_verdict(ESTIMATE, 24 * MiB, "warn", "/scratch (xfs)")
    assert warning is not None and "24.0 MiB free" in warning
    assert space_verdict(ESTIMATE, 24 * MiB, "off", "/scratch (xfs)") is None
    assert space_verdict(ESTIMATE, None, "refuse", "/scratch (xfs)") is None  # the filesystem cannot say


def test_a_run_that_saves_no_checkpoint_needs_only_the_final_model():
    estimate = estimate_space(FULL, tokenizer_bytes=0, dtype_bytes=4, merge_lora=False, saves=0, limit=2)
    free = estimate.final_model_bytes
    assert space_verdict(estimate, free, "refuse", "/x") is None
    with pytest.raises(OutOfSpaceError, match=r"and the final model \([^)]*\) need"):
        space_verdict(estimate, free - 1, "refuse", "/x")


# -- the message for a full disk ------------------------------------------------------------------------


def test_the_full_disk_line_says_how_much_and_how_to_go_on():
    estimate = {"checkpoint_bytes": 40 * MiB, "needed_bytes": 95 * MiB, "free_bytes": 24 * MiB}
    line = disk.out_of_space_message(
        quota=False,
        where="/scratch (xfs)",
        doing="writing checkpoint 4",
        needed=40 * MiB,
        estimate=estimate,
        resumable=True,
        started=True,
    )
    assert line == (
        "no space left on /scratch (xfs) while writing checkpoint 4; it needs about 40.0 MiB, the run "
        "about 95.0 MiB in all, and 24.0 MiB was free when it started. Free space there or set "
        "output.output_dir to a larger filesystem, then continue with --resume"
    )
    quota = disk.out_of_space_message(
        quota=True,
        where="/home (nfs4)",
        doing="tokenizing the data (datasets' cache)",
        elsewhere="point HF_DATASETS_CACHE at",
        needed=None,
        estimate={},
        resumable=False,
        started=False,
    )
    assert quota.startswith("disk quota exceeded on /home (nfs4) while tokenizing the data")
    assert "how much it needs was not yet estimated. Free space within your quota (quota -s)" in quota
    assert quota.endswith("or point HF_DATASETS_CACHE at a larger filesystem, then run again")


# -- partial files -----------------------------------------------------------------------------------


def make_checkpoint(path: Path, step: int) -> Path:
    import torch
    from safetensors.torch import save_file

    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    save_file({"weight": torch.ones(4, 4)}, path / "model.safetensors")
    torch.save({"state": {}, "param_groups": []}, path / "optimizer.pt")
    torch.save({"last_epoch": step}, path / "scheduler.pt")
    write_settings(path, {"config": {}, "processes": 1})
    return path


def test_partial_files_are_removed_and_whole_checkpoints_kept(tmp_path):
    out = tmp_path / "out"
    checkpoints = out / "checkpoints"
    whole = make_checkpoint(checkpoints / "checkpoint-2", 2)
    half = make_checkpoint(checkpoints / "checkpoint-4", 4)
    (half / "optimizer.pt").write_bytes((half / "optimizer.pt").read_bytes()[:100])  # cut by a full disk
    staged = make_checkpoint(checkpoints / STAGING_DIR / "checkpoint-6", 6)
    (out / ".final-abc123").mkdir()
    (out / ".final-abc123" / "model.safetensors").write_bytes(b"partial")
    (out / "status.json").write_text("{}")

    removed = remove_partial_files(out)

    assert sorted(path.name for path in removed) == [".final-abc123", STAGING_DIR, "checkpoint-4"]
    assert checkpoint_dirs(checkpoints) == [whole] and verify_checkpoint(whole) is None
    assert not staged.exists() and not (out / ".final-abc123").exists()
    assert (out / "status.json").exists()
    assert remove_partial_files(tmp_path / "never-made") == []


# -- a disk that fills mid-run: the engine on a tiny model ---------------------------------------------

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
            "output": {"output_dir": str(tmp_path / "out"), "save_steps": 2, **output},
        }
    )


def status_of(out: Path) -> dict:
    return json.loads((out / "status.json").read_text())


@pytest.fixture
def free_space(monkeypatch):
    """``shutil.disk_usage`` says ``free["bytes"]`` are free, on every filesystem."""
    free = {"bytes": 10**12}

    def usage(path):
        return Usage(10**13, 10**13 - free["bytes"], free["bytes"])

    monkeypatch.setattr(disk.shutil, "disk_usage", usage)
    return free


def test_the_estimate_matches_what_the_run_writes(tmp_path, model_dir):
    from trainer.core import TrainerEngine

    config = tiny_run(tmp_path, model_dir, keep_checkpoints=True, save_total_limit=1)
    engine = TrainerEngine()
    engine.run_job(config)
    out = tmp_path / "out"
    estimate = engine.space_needed
    (checkpoint,) = checkpoint_dirs(out / "checkpoints")
    written = sum(path.stat().st_size for path in checkpoint.rglob("*") if path.is_file())
    final = sum(
        path.stat().st_size
        for path in out.iterdir()
        if path.is_file() and path.name not in {"status.json", "metrics.jsonl", "previews.jsonl"}
    )
    # Never less than is written; over by at most the allowance for the small files.
    assert written <= estimate["checkpoint_bytes"] <= written + disk.SMALL_FILES
    assert final <= estimate["final_model_bytes"] <= final + disk.SMALL_FILES
    assert estimate["saves"] == 2 and estimate["checkpoints_at_once"] == 2  # limit 1, and one being written
    assert estimate["filesystem"] and estimate["free_bytes"] > 0


def test_too_little_space_is_refused_before_the_first_step(tmp_path, model_dir, free_space):
    from trainer.core import TrainerEngine

    free_space["bytes"] = 1000
    with pytest.raises(OutOfSpaceError, match=r"not enough space on .* 1,000 bytes free") as refused:
        TrainerEngine().run_job(tiny_run(tmp_path, model_dir))
    out = tmp_path / "out"
    assert status_of(out)["status"] == "failed" and status_of(out)["error"] == str(refused.value)
    assert status_of(out)["step"] == 0 and checkpoint_dirs(out / "checkpoints") == []

    messages: list[str] = []
    config = tiny_run(tmp_path, model_dir, disk_space_check="warn")
    assert TrainerEngine(on_message=messages.append).run_job(config, overwrite=True).status == "completed"
    assert any(line.startswith("warning: ") and "1,000 bytes free" in line for line in messages)


def test_a_full_disk_mid_checkpoint_is_one_line_with_the_partial_files_gone(tmp_path, model_dir, monkeypatch):
    from transformers import Trainer

    from trainer.core import TrainerEngine

    out = tmp_path / "out"

    def fill_the_disk(self, output_dir):
        # What an older, non-atomic save left: a checkpoint folder with its optimizer cut short.
        half = out / "checkpoints" / "checkpoint-2"
        half.mkdir(parents=True)
        (half / "optimizer.pt").write_bytes(b"PK\x03\x04 cut short")
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(output_dir) / "rng_state.pth"))

    monkeypatch.setattr(Trainer, "_save_rng_state", fill_the_disk)
    with pytest.raises(OutOfSpaceError) as caught:
        TrainerEngine().run_job(tiny_run(tmp_path, model_dir))
    message = str(caught.value)
    assert message.startswith("no space left on /")
    assert " while writing checkpoint 2; it needs about " in message
    assert "the run about" in message and "was free when it started" in message
    assert message.endswith("then run again with --overwrite") and "\n" not in message
    assert list((out / "checkpoints").iterdir()) == []  # neither the staged save nor the half one
    status = status_of(out)
    assert status["status"] == "failed" and status["error"] == message


def test_torchs_wrapped_write_error_is_a_full_disk_when_the_disk_is_full(
    tmp_path, model_dir, monkeypatch, free_space
):
    from transformers import Trainer

    from trainer.core import TrainerEngine

    def write_until_full(self, output_dir):
        (Path(output_dir) / "optimizer.pt").write_bytes(b"PK\x03\x04 and no more")
        free_space["bytes"] = 4096
        try:
            raise RuntimeError("basic_ios::clear: iostream error")
        except RuntimeError:  # torch raises its zip writer's complaint while handling the stream's
            raise RuntimeError(  # noqa: B904
                "[enforce fail at inline_container.cc:672] . unexpected pos 9713344 vs 9713232"
            )

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", write_until_full)
    with pytest.raises(OutOfSpaceError, match=r"^no space left on .* while writing checkpoint 2; it needs"):
        TrainerEngine().run_job(tiny_run(tmp_path, model_dir))
    assert list((tmp_path / "out" / "checkpoints").iterdir()) == []


def test_torchs_wrapped_write_error_with_space_left_is_named_not_unexpected(
    tmp_path, model_dir, monkeypatch, free_space
):
    from transformers import Trainer

    from trainer.core import TrainerEngine

    def fail(self, output_dir):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 9713344 vs 9713232")

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", fail)
    with pytest.raises(FileSystemError) as caught:
        TrainerEngine().run_job(tiny_run(tmp_path, model_dir))
    assert not isinstance(caught.value, OutOfSpaceError)
    assert str(caught.value).startswith("writing checkpoint 2 failed: torch could not write the file")
    assert "quota" in str(caught.value)


def test_a_full_disk_while_saving_the_final_model(tmp_path, model_dir, monkeypatch):
    from transformers import PreTrainedModel

    from trainer.core import TrainerEngine

    def fill_the_disk(self, save_directory, **kwargs):
        (Path(save_directory) / "model.safetensors").write_bytes(b"partial")
        raise RuntimeError(  # what safetensors raises, holding Rust's error
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on '
            'device" })'
        )

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", fill_the_disk)
    config = tiny_run(tmp_path, model_dir, save_steps=500)  # no checkpoint: only the final model is saved
    with pytest.raises(OutOfSpaceError) as caught:
        TrainerEngine().run_job(config)
    out = tmp_path / "out"
    assert " while writing the final model; it needs about " in str(caught.value)
    assert not list(out.glob(".final-*")) and not (out / "model.safetensors").exists()
    assert status_of(out)["error"] == str(caught.value)


def test_the_status_file_says_failed_even_when_the_full_disk_disabled_its_sink(
    tmp_path, model_dir, monkeypatch
):
    from transformers import Trainer

    from trainer.core import TrainerEngine
    from trainer.monitoring import TrainingStatusWriter

    class FullDiskWriter(TrainingStatusWriter):
        """The status sink: from the first step on, each of its writes meets a full disk."""

        def emit(self, event, state):
            if event != "start":
                raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
            super().emit(event, state)

    def fail(self, output_dir):
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(output_dir) / "rng_state.pth"))

    monkeypatch.setattr(Trainer, "_save_rng_state", fail)
    writer = FullDiskWriter(tmp_path / "status.json")
    with pytest.raises(OutOfSpaceError) as caught:
        TrainerEngine(writer).run_job(tiny_run(tmp_path, model_dir))
    status = json.loads(writer.path.read_text())
    assert status["status"] == "failed" and status["error"] == str(caught.value)
    assert status["step"] == 2  # the state the run had reached, not the start's
    assert "No space left" in status["sink_errors"][0]["error"]  # the sink was disabled


def test_a_bug_is_not_taken_for_the_disk(tmp_path, model_dir, monkeypatch):
    from transformers import Trainer

    from trainer.core import TrainerEngine

    def bug(self, output_dir):
        raise KeyError("global_step")

    monkeypatch.setattr(Trainer, "_save_rng_state", bug)
    with pytest.raises(KeyError):
        TrainerEngine().run_job(tiny_run(tmp_path, model_dir))
    assert status_of(tmp_path / "out")["error"] == "KeyError: 'global_step'"
