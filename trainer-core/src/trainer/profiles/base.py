"""``DataProfile``: how a raw example becomes chat messages.

A profile turns one row of a dataset into the messages a model is trained on,
says how its system prompt reads and where generation must stop. Subclass it,
implement the three abstract methods, and register the class through the
``register_profiles`` hook.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from trainer.conversation.model import ROLES, Conversation, Message
from trainer.conversation.validate import normalize_conversation
from trainer.errors import InvalidExampleError, TrainerError, short_repr

VALID_ROLES = ROLES

__all__ = [
    "VALID_ROLES",
    "Conversation",
    "DataProfile",
    "InvalidExampleError",
    "Message",
    "answers_match",
    "as_conversation",
    "check_stop_sequences",
    "normalize_answer",
    "short_repr",
    "validate_messages",
]


class DataProfile(ABC):
    """Base class of every data profile.

    Required:

    - :meth:`prepare_messages` — one example to a list of messages
      (``{"role", "content"}`` dicts; a ``system`` turn only when the row itself
      carries one), or to a :class:`~trainer.conversation.Conversation` when the
      row offers tools. Messages may be structured: assistant ``tool_calls`` and
      ``reasoning_content``, ``tool`` turns (see :mod:`trainer.conversation`).
    - :meth:`get_stop_sequences` — strings at which generation stops. None of
      them may occur inside the profile's own training targets.
    - :meth:`format_system_prompt` — the run's base system prompt, adapted to
      the profile (for instance with an instruction about the answer format).

    Optional, with defaults:

    - ``name`` / ``description`` — shown by ``trainer profiles``.
    - ``penalized_strings`` — strings whose tokens generation should avoid
      (applied by a logits processor during previews and ``trainer generate``).
    - :meth:`expected_answer` — the reference answer of a row, for scoring.
    - :meth:`parse_answer` — the answer found in generated text, or ``None`` when
      the text does not follow the profile's format.
    - :meth:`check_answer` — whether generated text answers correctly.
    - ``suits`` and :meth:`rate_example` — what data the profile is made for,
      used by ``trainer suggest-profile`` to rank profiles for a dataset.
    - :meth:`format_row_system_prompt` — the system prompt when it depends on
      the row (plugin API 1.2); the default is :meth:`format_system_prompt`.
    - :meth:`default_dataset` — a sample the profile ships, trained on when the
      run names no dataset (plugin API 1.2); the default is trainer's own sample.

    Optional, for composition (``--profile a+b``; see :mod:`trainer.profiles.compose`):
    a profile that implements :meth:`transform_messages` may transform what
    another one (the composition's base) built, and then also uses
    :meth:`transform_system_prompt` and :meth:`restore_text`. A profile that
    does not is a base: it builds the messages and owns the answer wherever it
    is written (plugin API 1.3; before, the base was always the first part).

    Options from the run config's ``profile.options`` (flat, or keyed by the
    profile's name) are passed to the constructor as keyword arguments; a
    profile that takes none rejects any.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    penalized_strings: ClassVar[tuple[str, ...]] = ()
    suits: ClassVar[str] = ""
    """One line on the data this profile is made for, shown by ``trainer suggest-profile``."""

    def __init__(self, **options: Any) -> None:
        if options:
            raise TrainerError(
                f"profile '{self.name}' takes no options, got: {', '.join(sorted(options))}. "
                "Remove them from profile.options."
            )

    @abstractmethod
    def prepare_messages(self, example: Mapping[str, Any]) -> list[Message] | Conversation:
        """Turn one dataset row into chat messages.

        :param example: the row, a mapping of field name to value.
        :return: messages, each ``{"role": ..., "content": ...}`` and, on assistant
            turns, optionally ``tool_calls`` and ``reasoning_content``; ``tool``
            turns for call results. The last one is the assistant turn the model
            learns to produce. Return a :class:`~trainer.conversation.Conversation`
            to offer the row's ``tools`` as well.
        :raises InvalidExampleError: the row lacks the fields the profile needs.
        """

    @abstractmethod
    def get_stop_sequences(self) -> list[str]:
        """Strings at which generation stops (never inside a training target)."""

    @abstractmethod
    def format_system_prompt(self, base_prompt: str) -> str:
        """The system prompt for this profile, built on the run's ``base_prompt``."""

    def format_row_system_prompt(self, base_prompt: str, example: Mapping[str, Any]) -> str:
        """The system prompt for one row, when it depends on the row (plugin API 1.2).

        :param base_prompt: the run's base prompt, or the system turn the row's
            messages bring.
        :param example: the row being rendered.

        The default ignores the row and returns :meth:`format_system_prompt`.
        """
        return self.format_system_prompt(base_prompt)

    def default_dataset(self) -> str | None:
        """A dataset file the profile ships, used when a run or preview names none (plugin API 1.2).

        :return: the path of a JSONL (or other readable) file, or ``None``, the
            default, for trainer's built-in sample of arithmetic word problems.
        """
        return None

    def expected_answer(self, example: Mapping[str, Any]) -> str | None:
        """The reference answer of a row (the GSM8K ``####`` value or the target).

        :return: the answer, or ``None`` when the row has none (``messages`` rows).
        """
        from trainer.profiles.fields import read_example

        return read_example(example).answer or None

    def parse_answer(self, text: str) -> str | None:
        """The answer in generated ``text``; ``None`` when the format is not followed.

        The default takes the whole stripped text.
        """
        stripped = text.strip()
        return stripped or None

    def check_answer(self, text: str, expected: str) -> bool:
        """Whether generated ``text`` gives the ``expected`` answer.

        The default compares the parsed answer with ``expected``, treating numbers
        equal when their values are (``18``, ``18.0``, ``$18``).
        """
        found = self.parse_answer(text)
        return found is not None and answers_match(found, expected)

    def rate_example(self, example: Mapping[str, Any]) -> float:
        """How well a row the profile can render suits it, from 0.0 to 1.0.

        ``trainer suggest-profile`` ranks profiles first by how many sample rows
        they render, then by the mean of this rating. The default, 0.0, states no
        preference.
        """
        return 0.0

    def transform_messages(
        self, messages: list[Message], example: Mapping[str, Any]
    ) -> list[Message] | Conversation:
        """Adapt the messages another profile built, when composed with it (``a+b``).

        :param messages: what the composition's base, and the transforms applied
            before this one, made of the row.
        :param example: the row itself, for the parts the messages no longer show.
        :return: the new messages (the tools stay those the base gave, unless a
            :class:`~trainer.conversation.Conversation` is returned); the base's
            answer must stay readable once :meth:`restore_text` has undone the change.
        :raises InvalidExampleError: the row cannot be transformed.

        The default cannot transform, so such a profile is a composition's base:
        a composition has at most one.
        """
        raise NotImplementedError(f"profile '{self.name}' does not implement transform_messages")

    def transform_system_prompt(self, system_prompt: str) -> str:
        """The system prompt when this profile follows another: add the instruction for its change.

        The default returns the prompt unchanged.
        """
        return system_prompt

    def restore_text(self, text: str) -> str | None:
        """Undo :meth:`transform_messages` on generated text, for the base's parser.

        :return: the text as the profiles applied before this one wrote it, or ``None``
            when the text does not follow this profile's change. The default
            returns the text unchanged.
        """
        return text

    @classmethod
    def can_follow(cls) -> bool:
        """Whether the profile implements :meth:`transform_messages`, so may transform another's messages."""
        return cls.transform_messages is not DataProfile.transform_messages

    def __repr__(self) -> str:
        return f"<{type(self).__name__} profile {self.name!r}>"


_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")


def normalize_answer(answer: str) -> str:
    """Canonical form of an answer for comparison: trimmed, no ``$``, commas or final period."""
    text = answer.strip().rstrip(".").strip()
    compact = text.replace(",", "").replace("$", "").strip()
    if _NUMBER.match(compact):
        value = float(compact)
        return str(int(value)) if value.is_integer() else str(value)
    return " ".join(text.split()).lower()


def answers_match(found: str, expected: str) -> bool:
    """True when two answers are the same after :func:`normalize_answer`."""
    return normalize_answer(found) == normalize_answer(expected)


def validate_messages(messages: Any) -> list[Message]:
    """Check a profile's messages; return them in canonical form.

    :raises InvalidExampleError: a message breaks a rule of
        :mod:`trainer.conversation.validate`, or the last message is not the
        assistant turn to train on.
    """
    return as_conversation(messages).messages


def as_conversation(output: Any) -> Conversation:
    """What ``prepare_messages`` returned (a list or a :class:`Conversation`), checked and normalized.

    :raises InvalidExampleError: see :func:`validate_messages`.
    """
    if isinstance(output, Conversation):
        conversation = normalize_conversation(output.messages, output.tools)
    else:
        conversation = normalize_conversation(output)
    last = conversation.messages[-1]["role"]
    if last != "assistant":
        raise InvalidExampleError(
            f"the last message must be the assistant turn to train on, got role {short_repr(last)}"
        )
    return conversation


def check_stop_sequences(messages: list[Message], stop_sequences: list[str]) -> None:
    """Raise when a stop sequence occurs inside an assistant turn's content or tool calls.

    Generation would stop there, so the model could never produce the answer it
    was trained on.
    """
    for message in messages:
        if message["role"] != "assistant":
            continue
        # Reasoning is left out: it sits in the think block, where stop sequences do not apply.
        written = [message["content"]] + [
            json.dumps(call["function"], ensure_ascii=False) for call in message.get("tool_calls", [])
        ]
        for stop in stop_sequences:
            if stop and any(stop in text for text in written):
                raise InvalidExampleError(
                    f"the assistant turn contains the stop sequence {stop!r}; generation would stop "
                    "there. Remove it from the row or override profile.stop_sequences"
                )
