"""Previews during training, the metrics log, and sinks or callbacks that fail."""

from __future__ import annotations

import json
from pathlib import Path

from trainer.monitoring.previews import PreviewPrompt, PreviewRunner, preview_prompts
from trainer.profiles import get_profile


class FixedModel:
    """Stands in for a model in PreviewRunner: generation is patched, training mode is tracked."""

    training = True
    device = "cpu"

    def eval(self):
        self.training = False

    def train(self, mode=True):
        self.training = mode


def test_preview_runner_scores_with_the_profile(monkeypatch):
    profile = get_profile("chat")
    prompts = [
        PreviewPrompt(messages=[{"role": "user", "content": "2+2?"}], expected="4"),
        PreviewPrompt(messages=[{"role": "user", "content": "3+3?"}], expected="6"),
        PreviewPrompt(messages=[{"role": "user", "content": "hi"}], expected=None),
    ]
    monkeypatch.setattr("trainer.generation.generate_batch", lambda *args, **kwargs: ["4", "7", ""])
    model = FixedModel()
    result = PreviewRunner(
        prompts, profile, tokenizer=None, stop_sequences=[], max_new_tokens=8, temperature=0.0
    ).run(model, step=10)
    assert model.training  # back in training mode
    assert result["step"] == 10
    assert [s["format_ok"] for s in result["samples"]] == [True, True, False]
    assert [s["correct"] for s in result["samples"]] == [True, False, None]
    assert result["format_rate"] == 2 / 3
    assert result["accuracy"] == 0.5
    assert result["samples"][0]["prompt"] == "2+2?"


def test_preview_prompts_skip_invalid_rows_and_drop_the_reply():
    profile = get_profile("chat")
    rows = [{"text": "unusable"}, {"prompt": "a?", "response": "b"}, {"prompt": "c?", "response": "d"}]
    prompts = preview_prompts(rows, profile, "Be brief.", [], count=1)
    assert len(prompts) == 1
    assert prompts[0].messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "a?"},
    ]
    assert prompts[0].expected == "b"


def test_demo_run_records_preview_rounds(run_trainer, tmp_path: Path):
    result = run_trainer(
        "run",
        "--max-steps",
        "4",
        "--output-dir",
        "out",
        "--set",
        "inference.eval_steps=2",
        "--set",
        "inference.max_new_tokens=8",
    )
    assert result.returncode == 0, result.stderr
    assert "Holding back the last 4 rows for previews" in result.stderr
    out = tmp_path / "out"
    rounds = [json.loads(line) for line in (out / "previews.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rounds] == [0, 2, 4]
    for round_ in rounds:
        assert len(round_["samples"]) == 4
        assert {"prompt", "expected", "generated", "format_ok", "correct"} <= set(round_["samples"][0])
    status = json.loads((out / "status.json").read_text())
    assert [h["step"] for h in status["preview_history"]] == [0, 2, 4]
    assert status["previews"]["step"] == 4
    for key in (
        "eval_loss",
        "tokens_seen",
        "elapsed_seconds",
        "eta_seconds",
        "peak_memory_mb",
    ):
        assert key in status or key == "eval_loss", key
    # A completed run saves no checkpoint of its own (output.keep_checkpoints is off).
    assert "last_checkpoint" not in status and not (out / "checkpoints").exists()
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2, 3, 4]


def test_eval_loss_reaches_status_and_metrics(run_trainer, tmp_path: Path):
    result = run_trainer(
        "run",
        "--max-steps",
        "2",
        "--output-dir",
        "out",
        "--set",
        "data.validation_split=0.05",
        "--set",
        "output.save_steps=2",
        "--set",
        "inference.eval_steps=0",
    )
    assert result.returncode == 0, result.stderr
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["eval_loss"] > 0
    metrics = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_loss" in m for m in metrics)


def test_a_raising_third_party_sink_and_callback_do_not_stop_the_run(run_trainer, tmp_path: Path):
    result = run_trainer(
        "run",
        "--max-steps",
        "3",
        "--output-dir",
        "out",
        "--set",
        "inference.eval_steps=0",
        plugins=["badsink"],
    )
    assert result.returncode == 0, result.stderr
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["status"] == "completed"
    errors = {entry["sink"]: entry["error"] for entry in status["sink_errors"]}
    assert errors["badsink"] == "RuntimeError: sink broken on start"
    assert errors["callback badsink"] == "ValueError in on_step_end: callback broken"
    assert result.stderr.count("badsink disabled for the rest of the run") == 2


def test_tensorboard_event_files(run_trainer, tmp_path: Path):
    import pytest

    pytest.importorskip("tensorboard")
    result = run_trainer(
        "run",
        "--max-steps",
        "2",
        "--output-dir",
        "out",
        "--report-to",
        "tensorboard",
        "--set",
        "inference.eval_steps=1",
        "--set",
        "inference.max_new_tokens=4",
    )
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "out" / "tensorboard").rglob("events.out.tfevents.*"))
