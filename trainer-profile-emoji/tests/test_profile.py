"""Tests of the ``emoji_think`` profile and its registration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from trainer import plugins
from trainer.errors import TrainerError
from trainer.profiles import InvalidExampleError, get_profile, installed_profiles
from trainer.profiles.fields import ACCEPTED_FIELDS
from trainer.testing import ProfileConformance

from trainer_profile_emoji import (
    MARKER_INSTRUCTION,
    THINKING_INSTRUCTION,
    THINKING_MARKER,
    EmojiThinkProfile,
)

# The shared GSM8K test split sits beside the repository; it is read, never copied.
GSM8K_TEST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gsm8k" / "test.jsonl"


@pytest.fixture
def profile() -> EmojiThinkProfile:
    return EmojiThinkProfile()


@pytest.fixture(scope="module")
def gsm8k_rows() -> list[dict]:
    if not GSM8K_TEST.is_file():
        pytest.fail(f"GSM8K test split not found at {GSM8K_TEST}; ../shared must sit beside the repo")
    with GSM8K_TEST.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def assistant_text(profile: EmojiThinkProfile, row: dict) -> str:
    return profile.prepare_messages(row)[-1]["content"]


# -- rendering ---------------------------------------------------------------


def test_messages_are_a_user_turn_then_an_assistant_turn(profile):
    messages = profile.prepare_messages({"prompt": "What is 2 + 2?", "response": "4"})

    assert messages == [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": f"{THINKING_MARKER}\nThe answer is 4"},
    ]


def test_assistant_turn_is_marker_then_reasoning_then_answer(profile):
    row = {"question": "What is 3 * 4 + 1?", "answer": "13", "reasoning": "3 * 4 = 12\n12 + 1 = 13"}

    lines = assistant_text(profile, row).split("\n")

    assert lines == [THINKING_MARKER, "3 * 4 = 12", "12 + 1 = 13", "The answer is 13"]


def test_blank_lines_never_reach_the_target(profile):
    row = {
        "prompt": "Explain.",
        "response": "first part\n\n\nsecond part",
        "reasoning": "step one\n\n  \nstep two\n",
    }

    text = assistant_text(profile, row)

    assert "\n\n" not in text
    assert text == f"{THINKING_MARKER}\nstep one\nstep two\nThe answer is first part second part"


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": "Use <think> tags?", "response": "no <think> here"},
        {"prompt": "Q", "response": "A", "reasoning": ["fine", "<think>hidden</think>"]},
    ],
    ids=["in-target", "in-reasoning"],
)
def test_a_stop_sequence_in_the_data_is_rejected(profile, row):
    with pytest.raises(InvalidExampleError, match="stop sequence '<think>'"):
        profile.prepare_messages(row)


def test_stop_sequences_in_the_user_turn_are_allowed(profile):
    messages = profile.prepare_messages({"prompt": "Line one\n\nLine two <think>", "response": "ok"})

    assert messages[0]["content"] == "Line one\n\nLine two <think>"


# -- system prompt, stops, penalties ------------------------------------------


def test_system_prompt_keeps_the_base_and_adds_the_instruction(profile):
    prompt = profile.format_system_prompt("You are a careful tutor.")

    assert prompt.startswith("You are a careful tutor.")
    assert prompt.endswith(THINKING_INSTRUCTION)
    assert THINKING_MARKER in prompt and "The answer is" in prompt


def test_system_prompt_without_a_base_is_the_instruction(profile):
    assert profile.format_system_prompt("  ") == THINKING_INSTRUCTION


def test_stop_sequences(profile):
    assert profile.get_stop_sequences() == ["\n\n", "<think>"]


def test_stop_sequences_are_a_fresh_list(profile):
    profile.get_stop_sequences().append("x")

    assert profile.get_stop_sequences() == ["\n\n", "<think>"]


def test_think_tags_are_penalized(profile):
    assert profile.penalized_strings == ("<think>", "</think>")


def test_options_are_rejected():
    with pytest.raises(TrainerError, match="takes no options, got: style"):
        EmojiThinkProfile(style="fancy")


# -- field layouts -------------------------------------------------------------


@pytest.mark.parametrize("prompt_field", ["prompt", "question", "instruction"])
@pytest.mark.parametrize("target_field", ["response", "answer", "output", "completion"])
def test_prompt_and_target_aliases(profile, prompt_field, target_field):
    messages = profile.prepare_messages({prompt_field: "Capital of France?", target_field: "Paris"})

    assert messages[0] == {"role": "user", "content": "Capital of France?"}
    assert messages[1]["content"] == f"{THINKING_MARKER}\nThe answer is Paris"


def test_instruction_with_input(profile):
    row = {"instruction": "Add the numbers.", "input": "2 and 5", "output": "7"}

    messages = profile.prepare_messages(row)

    assert messages[0]["content"] == "Add the numbers.\n\n2 and 5"
    assert messages[1]["content"].endswith("The answer is 7")


@pytest.mark.parametrize("reasoning_field", ["reasoning", "steps", "thinking"])
@pytest.mark.parametrize("value", ["2 + 5 = 7\nSo 7", ["2 + 5 = 7", "So 7"]], ids=["text", "list"])
def test_reasoning_aliases(profile, reasoning_field, value):
    row = {"prompt": "2 + 5?", "response": "7", reasoning_field: value}

    assert assistant_text(profile, row) == f"{THINKING_MARKER}\n2 + 5 = 7\nSo 7\nThe answer is 7"


@pytest.mark.parametrize(
    "row, missing",
    [
        ({"question": "What is 2 + 2?"}, "a target"),
        ({"answer": "4"}, "a user turn"),
        ({}, "a user turn"),
    ],
    ids=["no-target", "no-prompt", "empty"],
)
def test_missing_fields_name_the_accepted_ones(profile, row, missing):
    with pytest.raises(InvalidExampleError) as error:
        profile.prepare_messages(row)

    assert missing in str(error.value)
    assert ACCEPTED_FIELDS in str(error.value)


# -- GSM8K ----------------------------------------------------------------------


def test_first_gsm8k_row(profile, gsm8k_rows):
    messages = profile.prepare_messages(gsm8k_rows[0])

    assert messages[0]["content"].startswith("Janet’s ducks lay 16 eggs per day.")
    assert messages[1]["content"] == (
        f"{THINKING_MARKER}\n"
        "Janet sells 16 - 3 - 4 = 9 duck eggs a day.\n"
        "She makes 9 * 2 = $18 every day at the farmer’s market.\n"
        "The answer is 18"
    )


def test_every_gsm8k_target_is_free_of_stops_and_parses_back(profile, gsm8k_rows):
    assert len(gsm8k_rows) == 1319
    stops = profile.get_stop_sequences()
    for number, row in enumerate(gsm8k_rows, start=1):
        text = assistant_text(profile, row)
        expected = profile.expected_answer(row)
        assert not [stop for stop in stops if stop in text], f"row {number}: {text!r}"
        assert "<<" not in text, f"row {number} keeps a calculator note: {text!r}"
        assert profile.parse_answer(text) == expected, f"row {number}: {text!r}"
        assert profile.check_answer(text, expected), f"row {number}"


# -- messages rows --------------------------------------------------------------


def test_messages_rows_keep_the_conversation_and_collapse_assistant_blank_lines(profile):
    row = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Para one\n\nPara two"},
            {"role": "assistant", "content": "Sure.\n\n\nDone."},
        ]
    }

    messages = profile.prepare_messages(row)

    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Para one\n\nPara two"},
        {"role": "assistant", "content": "Sure.\nDone."},
    ]


def test_messages_rows_with_a_stop_sequence_are_rejected(profile):
    row = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "<think>hmm</think> Hello"},
        ]
    }

    with pytest.raises(InvalidExampleError, match="stop sequence '<think>'"):
        profile.prepare_messages(row)


def test_malformed_messages_rows_are_rejected(profile):
    with pytest.raises(InvalidExampleError, match="field 'messages'"):
        profile.prepare_messages({"messages": [{"role": "user", "content": "no answer"}]})


# -- parsing answers --------------------------------------------------------------


@pytest.mark.parametrize(
    "text, answer",
    [
        (f"{THINKING_MARKER}\nThe answer is 18", "18"),
        (f"  \n{THINKING_MARKER}\n9 * 2 = 18\nThe answer is 18.\n", "18"),
        (f"{THINKING_MARKER}\nThe answer is 3\nno, wait\nThe answer is 4", "4"),
        (f"{THINKING_MARKER} quick one\nthe answer is Paris", "Paris"),
    ],
    ids=["plain", "trailing-period", "last-answer-line", "lowercase"],
)
def test_parse_answer_reads_the_answer_line(profile, text, answer):
    assert profile.parse_answer(text) == answer


@pytest.mark.parametrize(
    "text",
    [
        "",
        "The answer is 18",
        "<think>9 * 2 = 18</think>\nThe answer is 18",
        f"Let me think. {THINKING_MARKER}\nThe answer is 18",
        f"{THINKING_MARKER}\n9 * 2 = 18",
        f"{THINKING_MARKER}\nThe answer is .",
    ],
    ids=["empty", "no-marker", "think-tags", "marker-not-first", "no-answer-line", "empty-answer"],
)
def test_parse_answer_rejects_text_off_the_format(profile, text):
    assert profile.parse_answer(text) is None


def test_check_answer_compares_numbers_by_value(profile):
    assert profile.check_answer(f"{THINKING_MARKER}\nThe answer is $18.00", "18")
    assert not profile.check_answer(f"{THINKING_MARKER}\nThe answer is 17", "18")
    assert not profile.check_answer("The answer is 18", "18")


# -- registration through the installed entry point ------------------------------


@pytest.fixture
def fresh_plugins(monkeypatch):
    for name in (plugins.ENV_ALLOW, plugins.ENV_BLOCK, plugins.ENV_STRICT):
        monkeypatch.delenv(name, raising=False)
    plugins.reset()
    yield
    plugins.reset()


def test_installed_entry_point_registers_the_profile(fresh_plugins):
    assert isinstance(get_profile("emoji_think"), EmojiThinkProfile)
    entry = installed_profiles()["emoji_think"]
    assert entry.profile_class is EmojiThinkProfile
    assert entry.plugin.distribution == "trainer-profile-emoji"
    assert entry.plugin.status == "loaded"
    assert entry.description == EmojiThinkProfile.description


def test_get_profile_rejects_options(fresh_plugins):
    with pytest.raises(TrainerError, match="takes no options"):
        get_profile("emoji_think", {"style": "fancy"})


def test_plugin_module_does_not_import_heavy_libraries():
    code = (
        "import sys, trainer_profile_emoji.plugin\n"
        "heavy = {'torch', 'transformers', 'datasets'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_original_import_path_still_works():
    """The single-package design imported the profile from trainer.profiles.emoji_think."""
    from trainer.profiles import get_profile
    from trainer.profiles.emoji_think import EmojiThinkProfile as FromOldPath

    assert FromOldPath is EmojiThinkProfile
    assert isinstance(get_profile("emoji_think"), FromOldPath)


class TestEmojiThinkConformance(ProfileConformance):
    """The conformance suite every profile package runs."""

    profile_name = "emoji_think"
    distribution = "trainer-profile-emoji"
    sample_rows = [
        {"question": "Ben has 3 apples and buys 4 more. How many now?", "steps": ["3 + 4 = 7"], "answer": "7"}
    ]


# -- following another profile (``a+emoji_think``) ---------------------------------------


def test_following_opens_the_last_assistant_turn_with_the_marker_once(profile):
    row = {"question": "Q?", "answer": "6"}
    built = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "Step 1: add\n\nAnswer: 6"}]
    marked = profile.transform_messages(built, row)
    assert marked[-1]["content"] == f"{THINKING_MARKER}\nStep 1: add\nAnswer: 6"
    assert profile.transform_messages(marked, row) == marked


def test_restore_text_removes_the_marker_line_and_rejects_text_without_it(profile):
    assert profile.restore_text(f"  {THINKING_MARKER}\nStep 1: add\nAnswer: 6") == "Step 1: add\nAnswer: 6"
    assert profile.restore_text("Step 1: add\nAnswer: 6") is None


def test_following_adds_only_the_marker_instruction(profile):
    assert profile.transform_system_prompt("Base.") == f"Base.\n\n{MARKER_INSTRUCTION}"
    assert "The answer is" not in MARKER_INSTRUCTION


def test_reasoning_rows_suit_it_best(profile):
    assert profile.rate_example({"question": "Q?", "reasoning": "add", "answer": "6"}) == 1.0
    assert profile.rate_example({"prompt": "Hi", "response": "Hello"}) == 0.0
