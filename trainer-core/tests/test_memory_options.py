"""Memory and disk options: gradient checkpointing, the optimizer, checkpoints kept, the save dtype."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROWS = [
    {"prompt": f"What is {a} plus {b}?", "response": f"{a} plus {b} is {a + b}."}
    for a in range(6)
    for b in range(4)
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from trainer.testing import tiny_qwen3, tiny_tokenizer

    directory = tmp_path_factory.mktemp("model")
    tokenizer = tiny_tokenizer([f"{row['prompt']} {row['response']}" for row in ROWS] * 2)
    tokenizer.save_pretrained(directory)
    tiny_qwen3(tokenizer, max_position_embeddings=128).save_pretrained(directory)
    (directory / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return directory


def config_for(model_dir: Path, output: Path, **hyper):
    from trainer.config import create_default_config

    config = create_default_config(
        model_path=str(model_dir), dataset_path=str(model_dir / "rows.jsonl"), output_dir=str(output)
    )
    config.profile.name = "chat"
    config.hyperparams.max_steps = 2
    config.hyperparams.batch_size = 4
    config.inference.eval_steps = 0
    for name, value in hyper.items():
        setattr(config.hyperparams, name, value)
    return config


@pytest.mark.parametrize("lora", [False, True])
def test_gradient_checkpointing_trains_with_and_without_lora(model_dir, tmp_path, lora):
    if lora:
        pytest.importorskip("peft")
    from trainer.core import TrainerEngine

    config = config_for(model_dir, tmp_path / "out", gradient_checkpointing=True)
    config.model.lora.enabled = lora
    result = TrainerEngine().run_job(config)
    assert result.status == "completed"
    assert result.metrics["first_loss"] is not None and result.metrics["final_loss"] is not None
    saved = json.loads((tmp_path / "out" / "trainer_run.json").read_text())
    assert saved["config"]["hyperparams"]["gradient_checkpointing"] is True


def test_another_optimizer_is_passed_to_transformers(model_dir, tmp_path):
    from trainer.core import TrainerEngine

    result = TrainerEngine().run_job(config_for(model_dir, tmp_path / "out", optim="adafactor"))
    assert result.status == "completed"


def test_an_unknown_or_uninstalled_optimizer_is_one_line_and_exit_2(run_trainer, model_dir):
    common = [
        "run",
        "--model",
        str(model_dir),
        "--dataset",
        str(model_dir / "rows.jsonl"),
        "--profile",
        "chat",
    ]
    unknown = run_trainer(*common, "--output-dir", "a", "--set", "hyperparams.optim=adamw_fast")
    assert unknown.returncode == 2
    message = unknown.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: hyperparams.optim 'adamw_fast' is not an optimizer transformers knows")
    assert "use one of adamw_torch" in message
    from importlib.util import find_spec

    if find_spec("bitsandbytes") is None:
        eight_bit = run_trainer(*common, "--output-dir", "b", "--set", "hyperparams.optim=adamw_8bit")
        assert eight_bit.returncode == 2
        assert "needs bitsandbytes, which is not installed: pip install bitsandbytes" in eight_bit.stderr


def test_a_completed_run_keeps_no_checkpoint_and_saves_in_the_base_models_dtype(
    model_dir, tmp_path, run_trainer
):
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    bf16 = tmp_path / "bf16-model"
    AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).save_pretrained(bf16)
    for name in ("tokenizer.json", "tokenizer_config.json", "rows.jsonl"):
        (bf16 / name).write_bytes((model_dir / name).read_bytes())
    result = run_trainer(
        "run",
        "--model",
        str(bf16),
        "--dataset",
        str(bf16 / "rows.jsonl"),
        "--profile",
        "chat",
        "--max-steps",
        "3",
        "--output-dir",
        "out",
        "--set",
        "inference.eval_steps=0",
    )
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert not (out / "checkpoints").exists()
    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(name).dtype for name in weights.keys()} == {torch.bfloat16}
    saved = (out / "trainer_run.json").read_text()
    assert '"save_dtype": "bfloat16"' in saved
    line = next(line for line in result.stdout.splitlines() if line.startswith("Model saved to out ("))
    assert " in all); status in " in line

    kept = run_trainer(
        "run",
        "--model",
        str(bf16),
        "--dataset",
        str(bf16 / "rows.jsonl"),
        "--profile",
        "chat",
        "--max-steps",
        "3",
        "--output-dir",
        "kept",
        "--set",
        "inference.eval_steps=0",
        "--set",
        "output.keep_checkpoints=true",
        "--set",
        "output.save_dtype=float32",
    )
    assert kept.returncode == 0, kept.stderr
    assert [path.name for path in (tmp_path / "kept" / "checkpoints").iterdir()] == ["checkpoint-3"]
    with safe_open(str(tmp_path / "kept" / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(name).dtype for name in weights.keys()} == {torch.float32}
