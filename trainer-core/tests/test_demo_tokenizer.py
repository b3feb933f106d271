"""The demo tokenizer shipped in the package: offline loading, special tokens, ChatML, assistant mask."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import trainer
from trainer.data.chatml import render_chatml
from trainer.models.demo import DEMO_TOKENIZER_DIR, load_demo_tokenizer

BUILD_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build_demo_tokenizer.py"
THINKING_MARKER = "🤔🤔🤔🤔"
GSM8K_TEXT = "Janet’s ducks lay 16 eggs per day. She makes 9 * 2 = $18."

CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "Step 1: 2 + 3 = 5\nAnswer: 5"},
]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return load_demo_tokenizer()


@pytest.fixture(scope="module")
def build_script() -> ModuleType:
    """The build script, imported from the repository; it trains on every bundled profile."""
    pytest.importorskip("trainer_profile_emoji", reason="the build script needs trainer-profile-emoji")
    pytest.importorskip("trainer_profile_regime3", reason="the build script needs trainer-profile-regime3")
    spec = importlib.util.spec_from_file_location("build_demo_tokenizer", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None, BUILD_SCRIPT
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_files_ship_inside_the_package():
    assert DEMO_TOKENIZER_DIR.is_relative_to(Path(trainer.__file__).parent)
    files = {path.name: path.stat().st_size for path in DEMO_TOKENIZER_DIR.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"} <= set(files)
    assert sum(files.values()) < 300_000, files


def test_loads_offline_without_a_cache(tmp_path):
    """A fresh machine: hub access forbidden and an empty Hugging Face cache."""
    probe = (
        "import json\n"
        "from trainer.models.demo import load_demo_tokenizer\n"
        "t = load_demo_tokenizer()\n"
        "print(json.dumps([len(t), t.eos_token, t.pad_token]))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=False
    )
    assert completed.returncode == 0, completed.stderr
    size, eos, pad = json.loads(completed.stdout.strip().splitlines()[-1])
    assert 2000 <= size <= 4096
    assert (eos, pad) == ("<|im_end|>", "<|endoftext|>")


def test_vocab_size_is_small_and_as_built(tokenizer, build_script):
    assert 2000 <= len(tokenizer) <= 4096
    assert len(tokenizer) == build_script.VOCAB_SIZE


@pytest.mark.parametrize("token", ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"])
def test_special_tokens_are_single_ids(tokenizer, token):
    ids = tokenizer.encode(token, add_special_tokens=False)
    assert len(ids) == 1
    assert tokenizer.convert_ids_to_tokens(ids) == [token]
    # Also inside text, with no space around it.
    ids = tokenizer.encode(f"x{token}y", add_special_tokens=False)
    assert tokenizer.convert_ids_to_tokens(ids) == ["x", token, "y"]


def test_eos_ends_the_turn_and_pad_is_end_of_text(tokenizer):
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.unk_token is None
    # Nothing is added around plain text.
    assert tokenizer.encode("Answer: 5") == tokenizer.encode("Answer: 5", add_special_tokens=False)


def test_decoding_drops_control_tokens_but_keeps_think_tags(tokenizer):
    ids = tokenizer.encode("<|im_start|>assistant\n<think>x</think>5<|im_end|><|endoftext|>")
    assert tokenizer.decode(ids, skip_special_tokens=True) == "assistant\n<think>x</think>5"


@pytest.mark.parametrize(
    "text",
    [
        THINKING_MARKER,
        GSM8K_TEXT,
        f"{THINKING_MARKER}\nMia has 12 apples.\nThe answer is 17",
        "Step 1: 48 / 2 = 24\nStep 2: 48 + 24 = 72\nAnswer: 72",
        "#### 1,234.50\n\n  indented\ttab, 25% off, “quotes” — naïve café 東京 🙂",
        "cafe\u0301 (decomposed, left as written)",
    ],
    ids=["marker", "gsm8k", "emoji_think", "regime3", "mixed", "nfd"],
)
def test_text_round_trips_exactly(tokenizer, text):
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text
    assert None not in tokenizer.convert_ids_to_tokens(ids)
    assert all(0 <= i < len(tokenizer) for i in ids)


def test_common_strings_are_compact(tokenizer):
    def tokens(text: str) -> list[str]:
        return tokenizer.convert_ids_to_tokens(tokenizer.encode(text, add_special_tokens=False))

    assert len(tokens("🤔")) == 1
    assert len(tokens(THINKING_MARKER)) == 1
    assert tokens("Step") == ["Step"]
    assert tokens("Answer:") == ["Answer", ":"]
    assert tokens("The answer is") == ["The", "Ġanswer", "Ġis"]
    # One token per digit, so arithmetic is done on digits.
    assert tokens(" 128") == ["Ġ", "1", "2", "8"]


def test_chat_template_renders_chatml(tokenizer):
    expected = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n"
        "<|im_start|>assistant\nStep 1: 2 + 3 = 5\nAnswer: 5<|im_end|>\n"
    )
    assert tokenizer.apply_chat_template(CONVERSATION, tokenize=False) == expected
    assert expected == render_chatml(CONVERSATION)

    prompt = tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=False, add_generation_prompt=True)
    assert prompt == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert prompt == render_chatml(CONVERSATION[:2], add_generation_prompt=True)


def _masked_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[str], list[int]]:
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    assert len(out["assistant_masks"]) == len(out["input_ids"])
    assert out["input_ids"] == tokenizer.encode(render_chatml(messages), add_special_tokens=False)
    masked = [i for i, keep in zip(out["input_ids"], out["assistant_masks"], strict=True) if keep]
    return tokenizer.convert_ids_to_tokens(masked), masked


def test_assistant_mask_covers_content_and_end_of_turn(tokenizer):
    tokens, _ = _masked_tokens(tokenizer, CONVERSATION)
    assert tokens == [
        "Step", "Ġ", "1", ":", "Ġ", "2", "Ġ+", "Ġ", "3", "Ġ=", "Ġ", "5", "Ċ",
        "Answer", ":", "Ġ", "5", "<|im_end|>",
    ]  # fmt: skip


def test_assistant_mask_marks_every_assistant_turn(tokenizer):
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": f"{THINKING_MARKER}\nThe answer is 4"},
        {"role": "user", "content": "And twice that?"},
        {"role": "assistant", "content": "8"},
    ]
    _, masked = _masked_tokens(tokenizer, messages)
    expected: list[int] = []
    for message in messages:
        if message["role"] == "assistant":
            expected += tokenizer.encode(message["content"], add_special_tokens=False)
            expected.append(tokenizer.eos_token_id)
    assert masked == expected


def test_build_is_deterministic(build_script, tmp_path):
    first = build_script.build_demo_tokenizer(tmp_path / "first")
    second = build_script.build_demo_tokenizer(tmp_path / "second")
    names = sorted(path.name for path in first.iterdir())
    assert names == sorted(path.name for path in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_shipped_files_are_what_the_script_builds(build_script, tmp_path):
    rebuilt = build_script.build_demo_tokenizer(tmp_path / "rebuilt")
    fix = f"the shipped demo tokenizer is out of date; regenerate it with: python {BUILD_SCRIPT}"

    def parts(folder: Path) -> dict[str, Any]:
        saved = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        return {
            "vocab": saved["model"]["vocab"],
            "merges": saved["model"]["merges"],
            "added_tokens": saved["added_tokens"],
            "pre_tokenizer": saved["pre_tokenizer"],
            "chat_template": (folder / "chat_template.jinja").read_text(encoding="utf-8"),
        }

    shipped, fresh = parts(DEMO_TOKENIZER_DIR), parts(rebuilt)
    for key in shipped:
        assert shipped[key] == fresh[key], f"{key} differs: {fix}"
