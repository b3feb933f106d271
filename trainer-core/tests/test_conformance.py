"""The conformance suite: the core's chat profile passes it, and each check can fail."""

from __future__ import annotations

import pytest

from trainer.profiles.base import DataProfile, InvalidExampleError
from trainer.profiles.chat import ChatProfile
from trainer.profiles.fields import read_example
from trainer.testing import (
    BUILTIN_LAYOUTS,
    BUILTIN_ROWS,
    ProfileConformance,
    check_answer_parser,
    check_deterministic,
    check_follows,
    check_messages,
    check_missing_fields,
    check_rating,
    check_registered,
    check_stop_sequences,
    check_system_prompt,
    check_unread_rows,
    layout_name,
)


class TestChat(ProfileConformance):
    profile_name = "chat"
    distribution = "trainer-core"


class Broken(ChatProfile):
    """A profile that breaks one rule at a time, chosen by ``fault``."""

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.calls = 0

    def prepare_messages(self, example):
        self.calls += 1
        if self.fault == "keyerror":
            return [{"role": "user", "content": example["prompt"]}, {"role": "assistant", "content": "x"}]
        messages = super().prepare_messages(example)
        if self.fault == "role":
            messages[0]["role"] = "human"
        elif self.fault == "order":
            messages.reverse()
        elif self.fault == "content":
            messages[-1]["content"] = 42
        elif self.fault == "random":
            messages[-1]["content"] += "!" * self.calls
        elif self.fault == "stop":
            messages[-1]["content"] += "\n\nmore"
        elif self.fault == "answer":
            messages[-1]["content"] = "something else"
        return messages

    def get_stop_sequences(self):
        return ["\n\n"] if self.fault == "stop" else []

    @property
    def suits(self):
        return "everything" if self.fault == "unrated" else ""

    def rate_example(self, example):
        return 2.5 if self.fault == "rating" else 0.0

    def transform_messages(self, messages, example):
        messages[-1]["content"] += "!"
        return messages

    def restore_text(self, text):
        return text if self.fault == "restore" else text.removesuffix("!")

    def format_system_prompt(self, base_prompt):
        return "Forget the base." if self.fault == "system" else base_prompt


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ("role", lambda p: check_messages(p, BUILTIN_ROWS)),
        ("order", lambda p: check_messages(p, BUILTIN_ROWS)),
        ("content", lambda p: check_messages(p, BUILTIN_ROWS)),
        ("random", lambda p: check_deterministic(p, BUILTIN_ROWS)),
        ("system", check_system_prompt),
        ("stop", lambda p: check_stop_sequences(p, BUILTIN_ROWS)),
        ("answer", lambda p: check_answer_parser(p, BUILTIN_ROWS)),
        ("keyerror", check_missing_fields),
        ("rating", lambda p: check_rating(p, BUILTIN_ROWS)),
        ("unrated", lambda p: check_rating(p, BUILTIN_ROWS)),
        ("restore", lambda p: check_follows(p, BUILTIN_ROWS)),
    ],
)
def test_each_check_fails_on_a_profile_that_breaks_its_rule(fault, check):
    with pytest.raises(AssertionError):
        check(Broken(fault))


def test_the_well_behaved_profile_passes_every_check():
    profile = ChatProfile()
    for check in (
        check_messages,
        check_deterministic,
        check_stop_sequences,
        check_answer_parser,
        check_rating,
    ):
        check(profile, BUILTIN_ROWS)
    check_system_prompt(profile)
    check_missing_fields(profile)


def test_registration_check_fails_for_a_missing_profile_or_a_wrong_distribution():
    with pytest.raises(AssertionError, match="not registered"):
        check_registered("no_such_profile")
    with pytest.raises(AssertionError, match="comes from trainer-core"):
        check_registered("chat", "trainer-profile-chat")


def test_a_profile_that_silently_renders_junk_fails_the_missing_fields_check():
    class Lenient(DataProfile):
        name = "lenient"

        def prepare_messages(self, example):
            return [{"role": "user", "content": str(example)}, {"role": "assistant", "content": "ok"}]

        def get_stop_sequences(self):
            return []

        def format_system_prompt(self, base_prompt):
            return base_prompt

    with pytest.raises(AssertionError, match="without InvalidExampleError"):
        check_missing_fields(Lenient())
    assert read_example(BUILTIN_ROWS[0]).prompt == "What is 2 + 3?"


# -- a profile that reads only fields of its own (builtin_layouts) ------------------------------------


class ToolCallProfile(DataProfile):
    """Reads only its own fields: the tools offered and the call to make; no common layout."""

    name = "tool_call"

    def prepare_messages(self, example):
        if "call" not in example or "tools" not in example:
            raise InvalidExampleError(
                f"a tool_call row needs the fields call and tools; fields present: {', '.join(example)}"
            )
        return [
            {"role": "user", "content": "Tools: " + ", ".join(example["tools"])},
            {"role": "assistant", "content": example["call"]},
        ]

    def expected_answer(self, example):
        return example["call"]

    def get_stop_sequences(self):
        return ["\n\n"]

    def format_system_prompt(self, base_prompt):
        return base_prompt


TOOL_CALL_ROWS = [
    {"call": "get_weather(city='Paris')", "tools": ["get_weather", "get_time"]},
    {"call": "get_time(zone='UTC')", "tools": ["get_time"]},
]


class TestOwnFieldsOnly(ProfileConformance):
    """The whole suite, run by pytest, on a profile that reads no common layout."""

    profile_name = "tool_call"
    builtin_layouts = ()
    sample_rows = TOOL_CALL_ROWS

    @pytest.fixture
    def profile(self):
        return ToolCallProfile()

    def test_registered_through_an_entry_point(self):
        pytest.skip("a throwaway profile: not installed through an entry point")


class OwnFieldsAtTheDefault(ProfileConformance):
    """Not collected: the same profile with builtin_layouts left at every layout."""

    profile_name = "tool_call"
    sample_rows = TOOL_CALL_ROWS


ROW_CHECKS = [
    "test_messages_are_well_formed",
    "test_output_is_deterministic",
    "test_no_stop_sequence_inside_a_target",
    "test_answer_parser_recovers_the_expected_answer",
]


def test_only_the_sample_rows_are_checked_when_builtin_layouts_is_empty():
    assert TestOwnFieldsOnly.checked_rows() == TOOL_CALL_ROWS
    assert TestOwnFieldsOnly.unread_rows() == BUILTIN_ROWS
    suite, profile = TestOwnFieldsOnly(), ToolCallProfile()
    for name in ROW_CHECKS:
        getattr(suite, name)(profile, TestOwnFieldsOnly.checked_rows())


@pytest.mark.parametrize("name", ROW_CHECKS)
def test_at_the_default_layouts_a_row_check_names_the_layout_and_the_opt_out(name):
    suite = OwnFieldsAtTheDefault()
    with pytest.raises(AssertionError) as failure:
        getattr(suite, name)(ToolCallProfile(), OwnFieldsAtTheDefault.checked_rows())
    message = str(failure.value)
    assert message.startswith("built-in layout 'prompt_response' {'prompt': 'What is 2 + 3?'")
    assert "fields present: prompt, response" in message  # the profile's own error
    assert "set builtin_layouts = (...) on your ProfileConformance test class" in message
    assert "builtin_layouts = () to check only its sample_rows" in message
    assert ", ".join(BUILTIN_LAYOUTS) in message  # the names to choose from


def test_builtin_layouts_selects_named_layouts_in_order():
    class Narrow(ProfileConformance):
        builtin_layouts = ("gsm8k", "question_answer")

    assert Narrow.checked_rows() == [BUILTIN_LAYOUTS["gsm8k"], BUILTIN_LAYOUTS["question_answer"]]
    assert [layout_name(row) for row in Narrow.unread_rows()] == [
        "prompt_response",
        "instruction_input",
        "reasoning",
        "messages",
    ]
    assert ProfileConformance.checked_rows() == BUILTIN_ROWS  # the default: every layout, as before
    assert list(BUILTIN_LAYOUTS) == [
        "prompt_response",
        "question_answer",
        "instruction_input",
        "gsm8k",
        "reasoning",
        "messages",
    ]
    assert [layout_name(row) for row in BUILTIN_ROWS] == list(BUILTIN_LAYOUTS)
    assert layout_name(TOOL_CALL_ROWS[0]) is None


def test_builtin_layouts_mistakes_are_clear():
    class Empty(ProfileConformance):
        builtin_layouts = ()

    with pytest.raises(AssertionError, match=r"builtin_layouts = \(\) but has no sample_rows"):
        Empty.checked_rows()

    class Misspelled(ProfileConformance):
        builtin_layouts = ("gsm8k", "qa")

    with pytest.raises(ValueError, match="unknown built-in layout 'qa'; the layouts are prompt_response, "):
        Misspelled.checked_rows()

    class NotATuple(ProfileConformance):
        builtin_layouts = "messages"  # ("messages") without the comma

    with pytest.raises(ValueError, match=r"e\.g\. \('messages',\), not the string 'messages'"):
        NotATuple.checked_rows()


def test_layouts_left_out_must_still_raise_invalid_example_error_not_another_error():
    class KeyErrors(ToolCallProfile):
        def prepare_messages(self, example):
            return [{"role": "user", "content": example["tools"][0]}, {"role": "assistant", "content": "x"}]

    with pytest.raises(AssertionError, match="built-in layout 'prompt_response' .* raised KeyError"):
        check_unread_rows(KeyErrors(), BUILTIN_ROWS)
    with pytest.raises(AssertionError, match="raised KeyError"):
        TestOwnFieldsOnly().test_missing_fields_raise_invalid_example_error(KeyErrors())
    check_unread_rows(ToolCallProfile(), BUILTIN_ROWS)  # refused properly
    check_unread_rows(ChatProfile(), BUILTIN_ROWS)  # or rendered


def test_an_own_fields_profile_must_override_expected_answer():
    class DefaultAnswer(ToolCallProfile):
        expected_answer = DataProfile.expected_answer

    with pytest.raises(AssertionError, match="expected_answer raised InvalidExampleError.*override "):
        check_answer_parser(DefaultAnswer(), TOOL_CALL_ROWS)


def test_a_sample_row_the_profile_cannot_read_is_named_without_the_opt_out():
    with pytest.raises(AssertionError) as failure:
        check_messages(ToolCallProfile(), [{"call": "f()"}])
    assert str(failure.value).startswith("{'call': 'f()'}: the profile cannot read this row: ")
    assert "builtin_layouts" not in str(failure.value)
