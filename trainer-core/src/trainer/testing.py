"""The conformance suite every profile package runs (needs pytest).

A profile package's whole test file can be::

    from trainer.testing import ProfileConformance

    class TestShout(ProfileConformance):
        profile_name = "shout"
        distribution = "trainer-profile-shout"
        sample_rows = [{"question": "Capital of France?", "answer": "Paris"}]

Each check is also a plain function (``check_*``) that raises ``AssertionError``
with a message saying what is wrong, so it can be used outside pytest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pytest

from trainer.conversation.model import Message
from trainer.conversation.tool_calls import reply_text
from trainer.errors import TrainerError
from trainer.profiles import get_profile, installed_profiles
from trainer.profiles.base import VALID_ROLES, DataProfile, InvalidExampleError, as_conversation
from trainer.profiles.base import check_stop_sequences as _stop_sequences_inside
from trainer.profiles.compose import SEPARATOR, compose, split_name
from trainer.profiles.fields import MESSAGES_FIELD

BUILTIN_ROWS: list[dict[str, Any]] = [
    {"prompt": "What is 2 + 3?", "response": "5"},
    {"question": "What is the capital of France?", "answer": "Paris"},
    {"instruction": "Add the numbers.", "input": "4 and 9", "output": "13"},
    {
        "question": "Janet has 16 eggs and eats 3. How many are left?",
        "answer": "Janet has 16 - 3 = <<16-3=13>>13 eggs left.\n#### 13",
    },
    {
        "question": "Sam reads 4 pages a day for 3 days. How many pages?",
        "reasoning": ["3 * 4 = 12"],
        "answer": "12",
    },
    {
        MESSAGES_FIELD: [
            {"role": "user", "content": "Say hello."},
            {"role": "assistant", "content": "Hello."},
        ]
    },
]
"""The common layouts: prompt/response, question/answer, instruction + input, GSM8K, reasoning, messages."""

ROW_WITHOUT_FIELDS: dict[str, Any] = {"unrelated": "a row no profile can read"}


def check_registered(profile_name: str, distribution: str | None = None) -> None:
    """The profile is installed through an entry point, under ``profile_name``.

    For a composition (``a+b``) each part must be; ``distribution`` then does not apply.
    """
    if SEPARATOR in profile_name:
        for part in split_name(profile_name):
            check_registered(part)
        return
    profiles = installed_profiles()
    assert profile_name in profiles, (
        f"profile '{profile_name}' is not registered (installed: {', '.join(sorted(profiles))}); "
        "is the package installed and its trainer.plugins entry point declared?"
    )
    plugin = profiles[profile_name].plugin
    assert plugin.status == "loaded", f"plugin {plugin.label} is {plugin.status}: {plugin.error}"
    if distribution is not None:
        assert plugin.distribution == distribution, (
            f"profile '{profile_name}' comes from {plugin.distribution}, expected {distribution}"
        )


def rendered_messages(profile: DataProfile, row: Mapping[str, Any]) -> list[Message]:
    """The profile's messages for ``row`` in canonical form, whether it returns a list or a Conversation.

    :raises AssertionError: the output breaks a conversation rule (the message says which).
    """
    output = profile.prepare_messages(row)
    try:
        return as_conversation(output).messages
    except InvalidExampleError as exc:
        raise AssertionError(f"{row!r}: prepare_messages returned an invalid conversation: {exc}") from exc


def check_messages(profile: DataProfile, rows: Sequence[Mapping[str, Any]]) -> None:
    """Messages are role/content dicts with string content, in a valid order, ending with the assistant.

    Structured messages (tool calls, tool turns, reasoning) must keep the rules of
    :mod:`trainer.conversation.validate`.
    """
    for row in rows:
        output = profile.prepare_messages(row)
        messages = output.messages if hasattr(output, "messages") else output
        assert isinstance(messages, list) and messages, (
            f"{row!r}: expected a non-empty list, got {messages!r}"
        )
        rendered_messages(profile, row)
        for index, message in enumerate(messages):
            assert isinstance(message, dict) and set(message) >= {"role", "content"}, (
                f"{row!r}: message {index} is not a role/content dict: {message!r}"
            )
            assert message["role"] in VALID_ROLES, f"{row!r}: message {index} has role {message['role']!r}"
            assert isinstance(message["content"], str), f"{row!r}: message {index} content is not a string"
            assert message["role"] != "system" or index == 0, f"{row!r}: system turn at position {index}"
        turns = [message["role"] for message in messages if message["role"] != "system"]
        assert turns and turns[0] == "user", f"{row!r}: the conversation must open with a user turn: {turns}"
        assert turns[-1] == "assistant", f"{row!r}: the last turn must be the assistant's: {turns}"
        for first, second in zip(turns, turns[1:], strict=False):
            assert first != second or first == "tool", f"{row!r}: two {first} turns in a row: {turns}"


def check_deterministic(profile: DataProfile, rows: Sequence[Mapping[str, Any]]) -> None:
    """The same row always renders the same messages."""
    for row in rows:
        assert profile.prepare_messages(row) == profile.prepare_messages(row), f"{row!r}: output changes"


def check_system_prompt(profile: DataProfile) -> None:
    """``format_system_prompt`` keeps the base prompt."""
    base = "You are a careful assistant."
    formatted = profile.format_system_prompt(base)
    assert isinstance(formatted, str) and base in formatted, (
        f"format_system_prompt dropped the base prompt: {formatted!r}"
    )


def check_stop_sequences(profile: DataProfile, rows: Sequence[Mapping[str, Any]]) -> None:
    """No stop sequence occurs inside a rendered assistant turn: generation would stop there."""
    stops = profile.get_stop_sequences()
    assert isinstance(stops, list) and all(isinstance(s, str) and s for s in stops), (
        f"get_stop_sequences must return a list of non-empty strings, got {stops!r}"
    )
    for row in rows:
        try:
            _stop_sequences_inside(rendered_messages(profile, row), stops)
        except InvalidExampleError as exc:
            raise AssertionError(f"{row!r}: {exc}") from exc


def check_answer_parser(profile: DataProfile, rows: Sequence[Mapping[str, Any]]) -> None:
    """The profile's parser recovers the expected answer from the profile's own target."""
    for row in rows:
        expected = profile.expected_answer(row)
        if expected is None:
            continue
        target = reply_text(rendered_messages(profile, row)[-1])
        assert profile.parse_answer(target) is not None, (
            f"{row!r}: parse_answer found no answer in {target!r}"
        )
        assert profile.check_answer(target, expected), (
            f"{row!r}: check_answer({target!r}, {expected!r}) is False for the profile's own target"
        )


def check_missing_fields(profile: DataProfile, row: Mapping[str, Any] = ROW_WITHOUT_FIELDS) -> None:
    """A row without the needed fields raises InvalidExampleError, not KeyError or another error."""
    try:
        profile.prepare_messages(row)
    except InvalidExampleError:
        return
    except Exception as exc:  # what the check is about
        raise AssertionError(
            f"{row!r} raised {type(exc).__name__}: {exc}; raise trainer.profiles.InvalidExampleError"
        ) from exc
    raise AssertionError(f"{row!r} has none of the needed fields, yet rendered without InvalidExampleError")


def check_rating(profile: DataProfile, rows: Sequence[Mapping[str, Any]]) -> None:
    """``rate_example`` gives a number from 0 to 1 for every row the profile renders.

    A profile that states what it ``suits`` must rate some of the rows above 0,
    or ``trainer suggest-profile`` ranks it below profiles that state nothing.
    """
    ratings = []
    for row in rows:
        try:
            profile.prepare_messages(row)
        except InvalidExampleError:
            continue
        rating = profile.rate_example(row)
        assert isinstance(rating, int | float) and 0 <= rating <= 1, (
            f"{row!r}: rate_example returned {rating!r}; return a number from 0.0 to 1.0"
        )
        ratings.append(rating)
    if profile.suits:
        assert any(ratings), (
            f"profile '{profile.name}' says it suits {profile.suits!r} but rates every sample row 0.0; "
            "implement rate_example to return more for the rows it is made for"
        )


def check_follows(profile: DataProfile, rows: Sequence[Mapping[str, Any]]) -> None:
    """A profile that can follow another keeps the earlier one's answer readable.

    It is composed after the core's ``chat`` profile, and the composition must
    pass the message, stop-sequence and answer checks: ``restore_text`` has to
    undo what ``transform_messages`` did. A profile that cannot follow passes.
    """
    if not profile.can_follow():
        return
    try:
        composed = compose([get_profile("chat"), profile])
    except TrainerError as exc:
        raise AssertionError(f"'{profile.name}' cannot follow 'chat': {exc}") from exc
    check_messages(composed, rows)
    check_stop_sequences(composed, rows)
    check_answer_parser(composed, rows)


def tiny_tokenizer(texts: Sequence[str], vocab_size: int = 400, chat_template: str | None = None) -> Any:
    """A byte-level BPE tokenizer trained on ``texts`` in well under a second, for offline tests.

    It has Qwen3's special tokens (``<|endoftext|>`` for padding, ``<|im_start|>``,
    ``<|im_end|>`` as end of turn) and, without ``chat_template``, no template, so
    trainer uses ChatML. Imports transformers when called.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    bpe = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(list(texts), bpe)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = chat_template
    return tokenizer


class ProfileConformance:
    """Subclass in a profile package's tests; set ``profile_name`` (and the rest as needed)."""

    profile_name: ClassVar[str] = ""
    """The name the profile registers under."""
    distribution: ClassVar[str | None] = None
    """The distribution that must provide it (e.g. ``trainer-profile-shout``); None skips that check."""
    sample_rows: ClassVar[list[dict[str, Any]]] = []
    """The author's own rows, checked with the built-in ones."""
    options: ClassVar[dict[str, Any]] = {}
    """``profile.options`` to build the profile with."""
    builtin_rows: ClassVar[list[dict[str, Any]]] = BUILTIN_ROWS
    """The common layouts; override to narrow them for a profile that accepts fewer."""

    @pytest.fixture
    def profile(self) -> DataProfile:
        """The installed profile, as ``trainer run`` would build it."""
        return get_profile(self.profile_name, self.options)

    @pytest.fixture
    def rows(self) -> list[dict[str, Any]]:
        """Built-in rows, then the author's."""
        return [*self.builtin_rows, *self.sample_rows]

    def test_registered_through_an_entry_point(self) -> None:
        check_registered(self.profile_name, self.distribution)

    def test_messages_are_well_formed(self, profile: DataProfile, rows: list[dict[str, Any]]) -> None:
        check_messages(profile, rows)

    def test_output_is_deterministic(self, profile: DataProfile, rows: list[dict[str, Any]]) -> None:
        check_deterministic(profile, rows)

    def test_system_prompt_keeps_the_base_prompt(self, profile: DataProfile) -> None:
        check_system_prompt(profile)

    def test_no_stop_sequence_inside_a_target(self, profile: DataProfile, rows: list[dict[str, Any]]) -> None:
        check_stop_sequences(profile, rows)

    def test_answer_parser_recovers_the_expected_answer(
        self, profile: DataProfile, rows: list[dict[str, Any]]
    ) -> None:
        check_answer_parser(profile, rows)

    def test_missing_fields_raise_invalid_example_error(self, profile: DataProfile) -> None:
        check_missing_fields(profile)

    def test_rating_is_from_0_to_1(self, profile: DataProfile, rows: list[dict[str, Any]]) -> None:
        check_rating(profile, rows)

    def test_follows_another_profile(self, profile: DataProfile, rows: list[dict[str, Any]]) -> None:
        check_follows(profile, rows)
