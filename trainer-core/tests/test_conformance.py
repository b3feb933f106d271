"""The conformance suite: the core's chat profile passes it, and each check can fail."""

from __future__ import annotations

import pytest

from trainer.profiles.base import DataProfile
from trainer.profiles.chat import ChatProfile
from trainer.profiles.fields import read_example
from trainer.testing import (
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
