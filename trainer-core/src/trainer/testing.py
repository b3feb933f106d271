"""The conformance suite every profile package runs (needs pytest).

A profile package's whole test file can be::

    from trainer.testing import ProfileConformance

    class TestShout(ProfileConformance):
        profile_name = "shout"
        distribution = "trainer-profile-shout"
        sample_rows = [{"question": "Capital of France?", "answer": "Paris"}]

The row checks run on one row of each common layout (:data:`BUILTIN_LAYOUTS`), then on
``sample_rows``. A profile that reads only some layouts, or only fields of its own,
names the layouts it reads, or none::

    class TestToolCalls(ProfileConformance):
        profile_name = "tool_calls"
        builtin_layouts = ()  # only sample_rows
        sample_rows = [{"call": "get_weather(city='Paris')", "tools": ["get_weather"]}]

Each check is also a plain function (``check_*``) that raises ``AssertionError``
with a message saying what is wrong, so it can be used outside pytest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import pytest

from trainer.conversation.model import Conversation, Message
from trainer.conversation.tool_calls import reply_text
from trainer.errors import TrainerError
from trainer.profiles import get_profile, installed_profiles
from trainer.profiles.base import VALID_ROLES, DataProfile, InvalidExampleError, as_conversation
from trainer.profiles.base import check_stop_sequences as _stop_sequences_inside
from trainer.profiles.compose import SEPARATOR, compose, split_name
from trainer.profiles.fields import MESSAGES_FIELD

BUILTIN_LAYOUTS: dict[str, dict[str, Any]] = {
    "prompt_response": {"prompt": "What is 2 + 3?", "response": "5"},
    "question_answer": {"question": "What is the capital of France?", "answer": "Paris"},
    "instruction_input": {"instruction": "Add the numbers.", "input": "4 and 9", "output": "13"},
    "gsm8k": {
        "question": "Janet has 16 eggs and eats 3. How many are left?",
        "answer": "Janet has 16 - 3 = <<16-3=13>>13 eggs left.\n#### 13",
    },
    "reasoning": {
        "question": "Sam reads 4 pages a day for 3 days. How many pages?",
        "reasoning": ["3 * 4 = 12"],
        "answer": "12",
    },
    "messages": {
        MESSAGES_FIELD: [
            {"role": "user", "content": "Say hello."},
            {"role": "assistant", "content": "Hello."},
        ]
    },
}
"""One row in each common layout, by the name ``ProfileConformance.builtin_layouts`` uses."""

BUILTIN_ROWS: list[dict[str, Any]] = list(BUILTIN_LAYOUTS.values())
"""The rows of :data:`BUILTIN_LAYOUTS`, in its order (messages last)."""

ROW_WITHOUT_FIELDS: dict[str, Any] = {"unrelated": "a row no profile can read"}

OPT_OUT = (
    "if your profile reads only some layouts or only its own fields, set builtin_layouts = (...) on your "
    "ProfileConformance test class to check only the layouts your profile reads (layouts: "
    + ", ".join(BUILTIN_LAYOUTS)
    + "), or builtin_layouts = () to check only its sample_rows"
)
"""How a profile package leaves out built-in layouts, as failure messages say it."""


def layout_name(row: Mapping[str, Any]) -> str | None:
    """The name of the built-in layout whose row ``row`` is, or None for any other row."""
    for name, layout_row in BUILTIN_LAYOUTS.items():
        if row == layout_row:
            return name
    return None


def layout_rows(names: Iterable[str]) -> list[dict[str, Any]]:
    """The rows of the built-in layouts ``names`` (keys of :data:`BUILTIN_LAYOUTS`), in that order.

    :raises ValueError: ``names`` is a string, or holds a name that is no layout (the message lists them).
    """
    if isinstance(names, str):
        raise ValueError(
            f"builtin_layouts must be a tuple of layout names, e.g. ({names!r},), not the string {names!r}"
        )
    names = list(names)
    unknown = [name for name in names if name not in BUILTIN_LAYOUTS]
    if unknown:
        raise ValueError(
            f"unknown built-in layout {', '.join(map(repr, unknown))}; the layouts are "
            f"{', '.join(BUILTIN_LAYOUTS)}"
        )
    return [BUILTIN_LAYOUTS[name] for name in names]


def _describe_row(row: Mapping[str, Any]) -> str:
    """``row`` for a failure message, with its layout's name when it is a built-in row."""
    layout = layout_name(row)
    return repr(row) if layout is None else f"built-in layout '{layout}' {row!r}"


def _prepare(profile: DataProfile, row: Mapping[str, Any]) -> list[Message] | Conversation:
    """``profile.prepare_messages(row)``; a row it cannot read is an AssertionError naming the row.

    For a built-in row the message names its layout and how to leave the layout out.
    """
    try:
        return profile.prepare_messages(row)
    except InvalidExampleError as exc:
        message = f"{_describe_row(row)}: the profile cannot read this row: {exc}"
        if layout_name(row) is not None:
            message += f"; {OPT_OUT}"
        raise AssertionError(message) from exc


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
    output = _prepare(profile, row)
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
        output = _prepare(profile, row)
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
        assert _prepare(profile, row) == _prepare(profile, row), f"{row!r}: output changes"


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
    """The profile's parser recovers the expected answer from the profile's own target.

    ``expected_answer`` must not raise for a row the profile renders: a profile that
    reads fields of its own overrides it (``None`` for a row without a reference answer).
    """
    for row in rows:
        target = reply_text(rendered_messages(profile, row)[-1])
        try:
            expected = profile.expected_answer(row)
        except InvalidExampleError as exc:
            raise AssertionError(
                f"{row!r}: the profile renders this row, yet expected_answer raised InvalidExampleError: "
                f"{exc}; override expected_answer to read your fields (None when a row has no reference "
                "answer)"
            ) from exc
        if expected is None:
            continue
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


def check_unread_rows(profile: DataProfile, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows the profile is not checked on (layouts it does not read) render or raise InvalidExampleError.

    trainer skips and counts a row that raises InvalidExampleError; any other error
    (``KeyError``, ``TypeError``, ...) would stop a whole run at the first such row.
    """
    for row in rows:
        try:
            profile.prepare_messages(row)
        except InvalidExampleError:
            continue
        except Exception as exc:  # what the check is about
            raise AssertionError(
                f"{_describe_row(row)} raised {type(exc).__name__}: {exc}; raise "
                "trainer.profiles.InvalidExampleError for a row the profile cannot read"
            ) from exc


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
    Rows ``chat`` cannot read are left out: a composition never hands them on.
    """
    if not profile.can_follow():
        return
    chat = get_profile("chat")
    try:
        composed = compose([chat, profile])
    except TrainerError as exc:
        raise AssertionError(f"'{profile.name}' cannot follow 'chat': {exc}") from exc
    rows = [row for row in rows if _reads(chat, row)]
    check_messages(composed, rows)
    check_stop_sequences(composed, rows)
    check_answer_parser(composed, rows)


def _reads(profile: DataProfile, row: Mapping[str, Any]) -> bool:
    """Whether ``profile`` renders ``row`` without InvalidExampleError."""
    try:
        profile.prepare_messages(row)
    except InvalidExampleError:
        return False
    return True


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


TINY_QWEN3: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "max_position_embeddings": 256,
    "tie_word_embeddings": True,
}
"""The shape :func:`tiny_qwen3` builds unless told otherwise: a few thousand weights past the embedding."""


def tiny_qwen3(tokenizer: Any = None, *, seed: int = 0, **config: Any) -> Any:
    """A ``Qwen3ForCausalLM`` with random weights, small enough to train in a test.

    :param tokenizer: sets the vocabulary size and the end-of-turn and padding
        ids; without one, pass ``vocab_size``.
    :param seed: the same seed always gives the same weights; the global random
        state is left as it was.
    :param config: ``Qwen3Config`` fields in place of :data:`TINY_QWEN3`'s.

    Save it beside its tokenizer (``model.save_pretrained(directory)``) for a
    model directory ``--model`` reads. Imports torch and transformers when called.
    """
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    fields = dict(TINY_QWEN3)
    if tokenizer is not None:
        fields.update(vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id)
        fields.update(pad_token_id=tokenizer.pad_token_id)
    fields.update(config)
    if "vocab_size" not in fields:
        raise TypeError("tiny_qwen3 needs a tokenizer or vocab_size")
    with torch.random.fork_rng(devices=[]):  # the global random state is left as it was
        torch.manual_seed(seed)
        return Qwen3ForCausalLM(Qwen3Config(**fields))


class ProfileConformance:
    """Subclass in a profile package's tests; set ``profile_name`` (and the rest as needed).

    The row checks run on the rows of ``builtin_layouts`` (every common layout unless
    the subclass names fewer), then on ``sample_rows``.
    """

    profile_name: ClassVar[str] = ""
    """The name the profile registers under."""
    distribution: ClassVar[str | None] = None
    """The distribution that must provide it (e.g. ``trainer-profile-shout``); None skips that check."""
    sample_rows: ClassVar[list[dict[str, Any]]] = []
    """The author's own rows, checked after the built-in ones; required when ``builtin_layouts`` is ()."""
    options: ClassVar[dict[str, Any]] = {}
    """``profile.options`` to build the profile with."""
    builtin_layouts: ClassVar[tuple[str, ...]] = tuple(BUILTIN_LAYOUTS)
    """The common layouts the profile reads, by name (keys of :data:`BUILTIN_LAYOUTS`); all by default.

    Name fewer for a profile that reads only some, e.g. ``("question_answer", "gsm8k")``,
    or set ``()`` for one that reads only fields of its own: then only ``sample_rows`` are
    checked. A layout left out must still render or raise InvalidExampleError.
    """
    builtin_rows: ClassVar[list[dict[str, Any]]] = BUILTIN_ROWS
    """Superseded by ``builtin_layouts``: a subclass that sets other rows here is checked on exactly those."""

    @classmethod
    def checked_rows(cls) -> list[dict[str, Any]]:
        """The rows the row checks run on: those of ``builtin_layouts``, then ``sample_rows``.

        :raises ValueError: ``builtin_layouts`` names a layout that does not exist.
        :raises AssertionError: there is no row to check (no built-in layout and no sample row).
        """
        builtin = cls._builtin_rows()
        assert builtin or cls.sample_rows, (
            f"{cls.__name__} sets builtin_layouts = () but has no sample_rows, so no row would be checked; "
            "add rows in the layout your profile reads to sample_rows"
        )
        return [*builtin, *cls.sample_rows]

    @classmethod
    def unread_rows(cls) -> list[dict[str, Any]]:
        """The built-in rows the row checks leave out (layouts not in ``builtin_layouts``)."""
        checked = cls._builtin_rows()
        return [row for row in BUILTIN_ROWS if row not in checked]

    @classmethod
    def _builtin_rows(cls) -> list[dict[str, Any]]:
        if cls.builtin_rows is not BUILTIN_ROWS:  # set by a subclass written before builtin_layouts
            return list(cls.builtin_rows)
        return layout_rows(cls.builtin_layouts)

    @pytest.fixture
    def profile(self) -> DataProfile:
        """The installed profile, as ``trainer run`` would build it."""
        return get_profile(self.profile_name, self.options)

    @pytest.fixture
    def rows(self) -> list[dict[str, Any]]:
        """The rows of ``builtin_layouts``, then the author's (:meth:`checked_rows`)."""
        return self.checked_rows()

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
        check_unread_rows(profile, self.unread_rows())

    def test_rating_is_from_0_to_1(self, profile: DataProfile, rows: list[dict[str, Any]]) -> None:
        check_rating(profile, rows)

    def test_follows_another_profile(self, profile: DataProfile, rows: list[dict[str, Any]]) -> None:
        check_follows(profile, rows)
