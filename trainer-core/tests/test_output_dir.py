"""The output directory before a run: a failed start does not block the corrected command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.core.output_dir import FAILED_ATTEMPTS_DIR, prepare_output_dir
from trainer.errors import TrainerError


def write_status(out: Path, **state) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    status = out / "status.json"
    state.setdefault("updated_at", "2026-12-03T06:50:12+00:00")
    status.write_text(json.dumps(state))
    return status


def test_an_empty_or_missing_directory_is_ready(tmp_path):
    assert prepare_output_dir(tmp_path / "new", tmp_path / "new" / "status.json", False) is None
    assert (tmp_path / "new").is_dir()


def test_a_failed_start_is_kept_aside_and_does_not_block(tmp_path):
    out = tmp_path / "run"
    status = write_status(out, status="failed", step=0, error="dataset file 'x.jsonl' not found")
    (out / "previews.jsonl").write_text('{"step": 0}\n')
    (out / "checkpoints").mkdir()  # created before step 1, holding no checkpoint

    news = prepare_output_dir(out, status, overwrite=False)

    assert news is not None and "failed before its first step" in news
    assert sorted(path.name for path in out.iterdir()) == [FAILED_ATTEMPTS_DIR]
    (kept,) = (out / FAILED_ATTEMPTS_DIR).iterdir()
    assert kept.name == "2026-12-03T06-50-12Z"
    assert "x.jsonl" in json.loads((kept / "status.json").read_text())["error"]
    assert (kept / "previews.jsonl").is_file()
    # A second failed start is kept beside the first, and still does not block.
    status = write_status(out, status="interrupted", step=0)
    assert prepare_output_dir(out, status, overwrite=False) is not None
    assert len(list((out / FAILED_ATTEMPTS_DIR).iterdir())) == 2


@pytest.mark.parametrize(
    ("state", "extra"),
    [
        ({"status": "failed", "step": 7}, None),  # it trained: its metrics and checkpoints matter
        ({"status": "training", "step": 0}, None),  # may still be going in another process
        ({"status": "starting", "step": 0}, None),
        ({"status": "completed", "step": 30}, "model.safetensors"),
        ({"status": "failed", "step": 0}, "notes.txt"),  # something of the user's
    ],
)
def test_anything_more_than_a_failed_start_is_refused_with_what_is_there(tmp_path, state, extra):
    out = tmp_path / "run"
    status = write_status(out, **state)
    if extra:
        (out / extra).write_text("x")
    with pytest.raises(TrainerError) as raised:
        prepare_output_dir(out, status, overwrite=False)
    message = str(raised.value)
    assert f"a run {state['status']} at step {state['step']}" in message
    assert "status.json" in message and "--overwrite" in message
    assert "--resume" not in message  # no checkpoint there to resume from
    assert status.is_file()


def test_a_checkpoint_makes_it_more_than_a_failed_start(tmp_path):
    out = tmp_path / "run"
    status = write_status(out, status="interrupted", step=0)
    (out / "checkpoints" / "checkpoint-0").mkdir(parents=True)
    with pytest.raises(TrainerError, match="checkpoints/.*pass --resume to continue the run there"):
        prepare_output_dir(out, status, overwrite=False)


def test_overwrite_clears_everything_and_a_file_is_refused(tmp_path):
    out = tmp_path / "run"
    status = write_status(out, status="completed", step=3)
    (out / "sub").mkdir()
    assert prepare_output_dir(out, status, overwrite=True) is None
    assert list(out.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrainerError, match="is a file"):
        prepare_output_dir(tmp_path / "file", tmp_path / "status.json", overwrite=False)


def test_the_message_names_a_few_entries_then_counts(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for name in "abcdef":
        (out / f"{name}.txt").write_text("x")
    with pytest.raises(TrainerError, match=r"not empty: a\.txt, b\.txt, c\.txt, d\.txt and 2 more\."):
        prepare_output_dir(out, out / "status.json", overwrite=False)


def test_a_model_path_holding_a_failed_run_says_so(tmp_path):
    from trainer.models.loading import load_tokenizer

    write_status(tmp_path / "run", status="failed", step=0)
    with pytest.raises(TrainerError, match=r"'.*run' holds a run that saved no model \(see trainer status"):
        load_tokenizer(str(tmp_path / "run"))
