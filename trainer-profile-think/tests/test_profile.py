"""Tests of the ``think`` profile: rendering, judging, Qwen3's template, a short training run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from trainer.errors import TrainerError
from trainer.profiles import InvalidExampleError, get_profile
from trainer.testing import ProfileConformance

from trainer_profile_think import ThinkProfile

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
GSM8K_TEST = SHARED / "data" / "gsm8k" / "test.jsonl"
QWEN3_TOKENIZER = SHARED / "models" / "qwen3-tokenizer"
GSM8K_ROW = {
    "question": "Janet has 16 eggs and eats 3. She sells the rest at $2 each. How much does she make?",
    "answer": "She has 16 - 3 = <<16-3=13>>13 eggs.\nShe makes 13 * 2 = $<<13*2=26>>26.\n#### 26",
}


@pytest.fixture
def profile() -> ThinkProfile:
    return ThinkProfile()


@pytest.fixture(scope="module")
def gsm8k_rows() -> list[dict]:
    if not GSM8K_TEST.is_file():
        pytest.fail(f"GSM8K test split not found at {GSM8K_TEST}; ../shared must sit beside the repo")
    with GSM8K_TEST.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


# -- rendering ---------------------------------------------------------------


def test_gsm8k_worked_lines_become_the_reasoning_and_the_answer_the_content(profile):
    assert profile.prepare_messages(GSM8K_ROW) == [
        {"role": "user", "content": GSM8K_ROW["question"]},
        {
            "role": "assistant",
            "content": "26",
            "reasoning_content": "She has 16 - 3 = 13 eggs.\nShe makes 13 * 2 = $26.",
        },
    ]


@pytest.mark.parametrize(
    ("row", "reasoning", "content"),
    [
        ({"question": "2 + 3?", "reasoning": ["2 + 3 = 5"], "answer": "5"}, "2 + 3 = 5", "5"),
        ({"prompt": "Hi", "response": "<think>\ngreet back\n</think>\n\nHello!"}, "greet back", "Hello!"),
        ({"prompt": "Capital of France?", "response": "Paris"}, "", "Paris"),
    ],
    ids=["reasoning field", "think block in the target", "no reasoning"],
)
def test_reasoning_sources(profile, row, reasoning, content):
    assistant = profile.prepare_messages(row)[-1]
    assert (assistant["reasoning_content"], assistant["content"]) == (reasoning, content)


def test_thinking_off_trains_an_empty_think_block():
    assistant = get_profile("think", {"thinking": False}).prepare_messages(GSM8K_ROW)[-1]
    assert assistant == {"role": "assistant", "content": "26", "reasoning_content": ""}


def test_a_thinking_option_that_is_not_a_boolean_is_refused():
    with pytest.raises(TrainerError, match="thinking must be true or false"):
        get_profile("think", {"thinking": "yes"})


def test_conversations_keep_their_turns_and_think_blocks_become_reasoning(profile):
    row = {
        "messages": [
            {"role": "user", "content": "2 + 2?"},
            {"role": "assistant", "content": "<think>two and two</think>4"},
            {"role": "user", "content": "And 3 + 3?"},
            {"role": "assistant", "content": "6", "reasoning_content": "three and three"},
        ]
    }
    messages = profile.prepare_messages(row)
    assert messages[1] == {"role": "assistant", "content": "4", "reasoning_content": "two and two"}
    assert messages[3]["reasoning_content"] == "three and three"
    assert profile.rate_example(row) == 1.0


def test_a_row_without_a_target_is_refused(profile):
    with pytest.raises(InvalidExampleError, match="lacks a target"):
        profile.prepare_messages({"question": "What?"})


def test_every_gsm8k_row_renders_and_reads_its_own_answer_back(profile, gsm8k_rows):
    from trainer.conversation.tool_calls import reply_text

    for row in gsm8k_rows:
        assistant = profile.prepare_messages(row)[-1]
        assert assistant["reasoning_content"], row
        assert profile.check_answer(reply_text(assistant), profile.expected_answer(row)), row


# -- judging ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("<think>\n13 * 2 = 26\n</think>\n\n26", "26"),
        ("<think>\n\n</think>\n\n$26.", "$26."),
        ("<think>a</think><think>b</think> 26", "26"),
        ("26", None),
        ("<think>\n13 * 2 = 26\n", None),
        ("</think> 26", None),
        ("<think>\n13 * 2 = 26\n</think>\n\n", None),
    ],
)
def test_the_answer_is_read_after_a_closed_think_block(profile, text, answer):
    assert profile.parse_answer(text) == answer


def test_check_answer_compares_numbers_by_value(profile):
    assert profile.check_answer("<think>x</think>\n\n$26.00", "26")
    assert not profile.check_answer("<think>x</think>\n\n27", "26")
    assert not profile.check_answer("26", "26")


def test_suits_reasoning_rows_and_not_plain_pairs(profile):
    assert profile.rate_example(GSM8K_ROW) == 1.0
    assert profile.rate_example({"prompt": "Hi", "response": "Hello"}) == 0.0


# -- the model's template --------------------------------------------------------


def test_qwen3_renders_the_reasoning_in_its_think_block_and_trains_it(profile):
    from trainer.data.chat_template import render_conversation
    from trainer.data.conversation import build_conversation
    from transformers import AutoTokenizer

    assert QWEN3_TOKENIZER.is_dir(), f"{QWEN3_TOKENIZER} is missing: ../shared must sit beside the repo"
    tokenizer = AutoTokenizer.from_pretrained(QWEN3_TOKENIZER, local_files_only=True)
    conversation = build_conversation(profile, GSM8K_ROW, "You are a helpful assistant.", [])
    rendered = render_conversation(conversation.messages, tokenizer)
    start, end = rendered.spans[-1]
    assert rendered.text[start:end] == (
        "<think>\nShe has 16 - 3 = 13 eggs.\nShe makes 13 * 2 = $26.\n</think>\n\n26<|im_end|>"
    )


def test_a_template_without_thinking_support_gets_the_block_in_the_content(profile):
    from trainer.data.chat_template import render_conversation
    from trainer.data.conversation import build_conversation
    from trainer.data.template_text import TemplateText

    plain = TemplateText(
        "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        {"eos_token": "<|im_end|>"},
    )
    conversation = build_conversation(profile, GSM8K_ROW, "", [])
    rendered = render_conversation(conversation.messages, plain)
    start, end = rendered.spans[-1]
    trained = rendered.text[start:end]
    assert trained.startswith("<think>\nShe has 16 - 3 = 13 eggs.")
    assert trained.endswith("</think>\n\n26<|im_end|>")
    assert profile.parse_answer(trained.removesuffix("<|im_end|>")) == "26"


# -- a short run ---------------------------------------------------------------


def test_a_run_on_gsm8k_trains_and_previews_judge_the_answer_after_think(tmp_path, gsm8k_rows):
    (tmp_path / "gsm8k.jsonl").write_text("".join(json.dumps(row) + "\n" for row in gsm8k_rows[:40]))
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TRAINER_")}
    arguments = ["run", "--profile", "think", "--dataset", "gsm8k.jsonl", "--max-steps", "4"]
    arguments += ["--set", "inference.eval_steps=4", "--set", "inference.num_samples=2"]
    completed = subprocess.run(
        [sys.executable, "-m", "trainer", *arguments, "--output-dir", "out"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    rounds = [json.loads(line) for line in (tmp_path / "out" / "previews.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rounds] == [0, 4]
    for sample in rounds[-1]["samples"]:
        assert sample["format_ok"] == (ThinkProfile().parse_answer(sample["generated"]) is not None)
        answers = {row["answer"].split("####")[-1].strip() for row in gsm8k_rows[:40]}
        assert sample["expected"] in answers


# -- compositions ---------------------------------------------------------------


def test_think_then_regime3_numbers_the_steps_inside_the_think_block():
    from trainer.conversation.tool_calls import reply_text
    from trainer.generation import cut_at_stop

    composed = get_profile("think+regime3")
    assistant = composed.prepare_messages(GSM8K_ROW)[-1]
    steps = "Step 1: She has 16 - 3 = 13 eggs.\nStep 2: She makes 13 * 2 = $26."
    assert assistant["reasoning_content"] == steps
    assert assistant["content"] == "26"
    reply = reply_text(assistant)
    # regime3 stops generation at a blank line, but never inside the think block.
    assert "\n\n" in composed.get_stop_sequences()
    assert cut_at_stop(reply + "\n\nmore", composed.get_stop_sequences()) == reply
    assert composed.parse_answer(reply) == "26"
    assert composed.check_answer(reply, "26")
    assert composed.parse_answer("<think>\nStep 2: x\n</think>\n\n26") is None  # misnumbered steps


def test_think_then_regime3_prepares_gsm8k_for_training(tmp_path, gsm8k_rows):
    (tmp_path / "gsm8k.jsonl").write_text("".join(json.dumps(row) + "\n" for row in gsm8k_rows[:60]))
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TRAINER_")}
    completed = subprocess.run(
        [sys.executable, "-m", "trainer", "run", "--profile", "think+regime3", "--dataset", "gsm8k.jsonl"]
        + ["--dry-run"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert "invalid skipped 0" in completed.stdout


def test_before_a_base_think_adds_the_rows_reasoning_to_the_reply_the_base_built():
    from trainer.profiles.chat import ChatProfile
    from trainer.profiles.compose import compose

    composed = compose([ThinkProfile(), ChatProfile()])
    assert [part.name for part in composed.pipeline] == ["chat", "think"]  # chat builds, think transforms
    row = {"prompt": "Hi", "response": "Hello!", "reasoning": ["Someone greets me.", "I greet back."]}
    assert composed.prepare_messages(row)[-1] == {
        "role": "assistant",
        "content": "Hello!",
        "reasoning_content": "Someone greets me.\nI greet back.",
    }
    # No reasoning field: an empty think block. A think block in the reply becomes its reasoning.
    assert composed.prepare_messages({"prompt": "Hi", "response": "Hello!"})[-1]["reasoning_content"] == ""
    own = {"prompt": "Hi", "response": "<think>\nmine\n</think>\n\nHello!", "reasoning": "the row's"}
    assert composed.prepare_messages(own)[-1]["reasoning_content"] == "mine"
    off = compose([ThinkProfile(thinking=False), ChatProfile()])
    assert off.prepare_messages(row)[-1]["reasoning_content"] == ""
    # Judged by the base after the think block; without a closed block the format is not followed.
    assert composed.check_answer("<think>\nI greet back.\n</think>\n\nHello!", "Hello!")
    assert composed.parse_answer("Hello!") is None
    assert composed.parse_answer("<think>\nunclosed Hello!") is None


class TestThinkConformance(ProfileConformance):
    """The conformance suite every profile package runs."""

    profile_name = "think"
    distribution = "trainer-profile-think"
    sample_rows = [GSM8K_ROW, {"prompt": "Hi", "response": "<think>\ngreet\n</think>\n\nHello!"}]
