"""``trainer preview --tokens``: the first example's tokens, trained ones marked, readable without colour."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from trainer.testing import tiny_tokenizer as make_tokenizer

ROWS = [{"prompt": "Count to three.", "response": "one two three"}, {"prompt": "Say hi.", "response": "hi"}]


def save_tokenizer(directory: Path) -> Path:
    """A tiny byte-level BPE saved like a model's tokenizer, without a chat template."""
    words = ["system", "user", "assistant", "Count to three.", "one two three", "You are terse."]
    make_tokenizer(words * 10).save_pretrained(str(directory))
    return directory


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return path


def token_table(stdout: str) -> list[tuple[bool, str]]:
    """(trained, quoted token) for each row of the token table."""
    lines = stdout.split("=== tokens of example 1 (row 1) ===\n", 1)[1].splitlines()
    assert lines[0].endswith("trained (marked >>)")
    rows = []
    for line in lines[1:]:
        if not line.strip():
            break
        match = re.fullmatch(r" *\d+ (>>|  ) +\d+  (.+)", line)
        assert match, line
        rows.append((match.group(1) == ">>", match.group(2)))
    return rows


def test_tokens_with_a_model_tokenizer(run_trainer, tmp_path, dataset):
    model = save_tokenizer(tmp_path / "model")
    result = run_trainer(
        "preview", "--dataset", str(dataset), "--model", str(model), "-n", "1", "--tokens",
        "--set", "profile.system_prompt=You are terse.",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = token_table(result.stdout)
    trained = [token for is_trained, token in rows if is_trained]
    assert trained == ["'one'", "' two'", "' three'", "'<|im_end|>'"]
    assert rows[-1] == (False, "'\\n'")  # the newline after <|im_end|> is not trained
    assert rows[:3] == [(False, "'<|im_start|>'"), (False, "'system'"), (False, "'\\n'")]
    assert f"{len(rows)} tokens, 4 trained (marked >>)" in result.stdout


def test_tokens_as_json(run_trainer, tmp_path, dataset):
    model = save_tokenizer(tmp_path / "model")
    result = run_trainer("preview", "--dataset", str(dataset), "--model", str(model), "--tokens", "--json")
    assert result.returncode == 0, result.stderr
    examples = json.loads(result.stdout)["examples"]
    tokens = examples[0]["tokens"]
    assert [t["text"] for t in tokens if t["trained"]] == ["one", " two", " three", "<|im_end|>"]
    assert set(tokens[0]) == {"position", "token_id", "text", "trained"}
    assert "tokens" not in examples[1]  # only the first example


def test_tokens_without_a_model_use_the_demo_tokenizer(run_trainer, dataset):
    pytest.importorskip("trainer.models.demo")
    result = run_trainer("preview", "--dataset", str(dataset), "-n", "1", "--tokens")
    assert result.returncode == 0, result.stderr
    rows = token_table(result.stdout)
    assert [token for is_trained, token in rows if is_trained][-1] == "'<|im_end|>'"
    assert "".join(eval(token) for is_trained, token in rows if is_trained) == "one two three<|im_end|>"


def test_a_missing_model_directory_is_a_clean_error(run_trainer, tmp_path, dataset):
    result = run_trainer(
        "preview", "--dataset", str(dataset), "--model", str(tmp_path / "nowhere"), "--tokens"
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "nowhere" in result.stderr
