"""End to end: a ShareGPT file with tool calls trains a Qwen3-shaped model, which then calls the tool.

The model has Qwen3's real tokenizer and chat template (../shared/models/qwen3-tokenizer)
and random weights: one layer, hidden size 256, enough to learn the call format in
20 steps on CPU. It runs through the command line, as a user would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

QWEN3_TOKENIZER = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "qwen3-tokenizer"
CITIES = ["Paris", "Rome", "Oslo", "Lima", "Cairo", "Tokyo", "Delhi", "Quito"]
TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


def sharegpt_row(index: int) -> dict:
    """A question, the call (function_call), its result (observation), the answer; tools as JSON text."""
    city, temperature = CITIES[index % len(CITIES)], 10 + index
    return {
        "conversations": [
            {"from": "human", "value": f"What is the weather in {city}?"},
            {
                "from": "function_call",
                "value": json.dumps({"name": "get_weather", "arguments": {"city": city}}),
            },
            {"from": "observation", "value": json.dumps({"temp_c": temperature})},
            {"from": "gpt", "value": f"It is {temperature} C in {city}."},
        ],
        "tools": json.dumps(TOOLS),
    }


@pytest.fixture(scope="module")
def qwen3_model(tmp_path_factory) -> Path:
    from transformers import AutoTokenizer

    from trainer.testing import tiny_qwen3

    assert QWEN3_TOKENIZER.is_dir(), (
        f"{QWEN3_TOKENIZER} is missing: the tests need ../shared/models/qwen3-tokenizer beside the repository"
    )
    directory = tmp_path_factory.mktemp("qwen3-tiny")
    tokenizer = AutoTokenizer.from_pretrained(QWEN3_TOKENIZER, local_files_only=True)
    tokenizer.save_pretrained(directory)
    tiny_qwen3(
        tokenizer,
        vocab_size=151936,  # Qwen3's embedding rows (the tokenizer has 151,669 tokens)
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=1,
        num_attention_heads=8,
        num_key_value_heads=4,
        head_dim=32,
        max_position_embeddings=1024,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
    ).save_pretrained(directory)
    return directory


def test_sharegpt_tool_calls_train_and_the_model_calls_the_tool(run_trainer, qwen3_model, tmp_path):
    (tmp_path / "calls.jsonl").write_text(
        "".join(json.dumps(sharegpt_row(index)) + "\n" for index in range(34)), encoding="utf-8"
    )
    (tmp_path / "tools.json").write_text(json.dumps(TOOLS), encoding="utf-8")

    trained = run_trainer(
        "run",
        "--model", str(qwen3_model),
        "--dataset", "calls.jsonl",
        "--profile", "chat",
        "--max-steps", "20",
        "--batch-size", "8",
        "--lr", "3e-3",
        "--output-dir", "out",
        "--set", "hyperparams.lr_scheduler_type=constant",
        "--set", "inference.eval_steps=20",
        "--set", "inference.num_samples=2",
        "--set", "inference.max_new_tokens=32",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "Trained 20 steps" in trained.stdout
    assert "invalid skipped 0" in trained.stdout

    # Previews offered the held-back rows their tools (a sample records the calls it parsed) and
    # asked for each row's last turn: the answer that follows the tool result.
    rounds = [json.loads(line) for line in (tmp_path / "out" / "previews.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rounds] == [0, 20]
    last = rounds[-1]["samples"]
    assert [sample["tool_calls"] for sample in last] == [[], []], last
    assert all("It is" in sample["generated"] for sample in last), last

    generated = run_trainer(
        "generate", "--model", "out", "--tools", "tools.json", "--json", "What is the weather in Paris?"
    )
    assert generated.returncode == 0, generated.stderr
    result = json.loads(generated.stdout)
    assert "<tool_call>" in result["text"]
    assert [call["name"] for call in result["tool_calls"]] == ["get_weather"], result
    assert set(result["tool_calls"][0]["arguments"]) == {"city"}

    shown = run_trainer("generate", "--model", "out", "--tools", "tools.json", "What is the weather in Oslo?")
    assert shown.returncode == 0, shown.stderr
    assert "--- tool calls ---" in shown.stdout
    assert '"name": "get_weather"' in shown.stdout
