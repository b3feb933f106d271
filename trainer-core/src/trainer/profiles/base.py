"""``DataProfile``: how a raw example becomes chat messages.

A profile turns one row of a dataset into the messages a model is trained on,
says how its system prompt reads and where generation must stop. Subclass it,
implement the three abstract methods, and register the class through the
``register_profiles`` hook.
"""

from __future__ import annotations

import re
import reprlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from trainer.errors import TrainerError

Message = dict[str, str]
VALID_ROLES = ("system", "user", "assistant")


class InvalidExampleError(TrainerError):
    """A row lacks what the profile needs, or holds something it cannot render.

    The message names the missing or bad field and the fields the profile
    accepts. Callers that know where the row came from prefix the file and row
    number.
    """


class DataProfile(ABC):
    """Base class of every data profile.

    Required:

    - :meth:`prepare_messages` — one example to a list of ``{"role", "content"}``
      messages (``user`` and ``assistant`` turns; a ``system`` turn only when the
      row itself carries one).
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

    Optional, for composition (``--profile a+b``; see :mod:`trainer.profiles.compose`):
    a profile that implements :meth:`transform_messages` may follow another
    one, and then also uses :meth:`transform_system_prompt` and
    :meth:`restore_text`.

    Options from the run config's ``profile.options`` are passed to the
    constructor as keyword arguments; a profile that takes none rejects any.
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
    def prepare_messages(self, example: Mapping[str, Any]) -> list[Message]:
        """Turn one dataset row into chat messages.

        :param example: the row, a mapping of field name to value.
        :return: messages, each ``{"role": ..., "content": ...}``; the last one is
            the assistant turn the model learns to produce.
        :raises InvalidExampleError: the row lacks the fields the profile needs.
        """

    @abstractmethod
    def get_stop_sequences(self) -> list[str]:
        """Strings at which generation stops (never inside a training target)."""

    @abstractmethod
    def format_system_prompt(self, base_prompt: str) -> str:
        """The system prompt for this profile, built on the run's ``base_prompt``."""

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

    def transform_messages(self, messages: list[Message], example: Mapping[str, Any]) -> list[Message]:
        """Adapt the messages an earlier profile built, when this one follows it (``a+b``).

        :param messages: what the profiles before this one made of the row.
        :param example: the row itself, for the parts the messages no longer show.
        :return: the new messages; the earlier profile's answer must stay readable
            once :meth:`restore_text` has undone the change.
        :raises InvalidExampleError: the row cannot be transformed.

        The default cannot transform, so such a profile may only come first.
        """
        raise NotImplementedError(f"profile '{self.name}' does not implement transform_messages")

    def transform_system_prompt(self, system_prompt: str) -> str:
        """The system prompt when this profile follows another: add the instruction for its change.

        The default returns the prompt unchanged.
        """
        return system_prompt

    def restore_text(self, text: str) -> str | None:
        """Undo :meth:`transform_messages` on generated text, for the earlier profile's parser.

        :return: the text as the earlier profile would have written it, or ``None``
            when the text does not follow this profile's change. The default
            returns the text unchanged.
        """
        return text

    @classmethod
    def can_follow(cls) -> bool:
        """Whether the profile implements :meth:`transform_messages`, so may follow another."""
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
    """Check the shape of a profile's output; return it unchanged.

    :raises InvalidExampleError: not a list of ``{"role", "content"}`` dicts with
        string content, known roles, a system turn only first, and an assistant
        turn last.
    """
    if not isinstance(messages, list) or not messages:
        raise InvalidExampleError("messages must be a non-empty list of {'role', 'content'} dicts")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise InvalidExampleError(
                f"message {index} must be a dict with 'role' and 'content', got {short_repr(message)}"
            )
        role, content = message["role"], message["content"]
        if role not in VALID_ROLES:
            raise InvalidExampleError(
                f"message {index} has role {short_repr(role)}; use one of: {', '.join(VALID_ROLES)}"
            )
        if role == "system" and index != 0:
            raise InvalidExampleError(f"message {index} is a system turn; only the first message may be")
        if not isinstance(content, str):
            raise InvalidExampleError(
                f"message {index} content must be a string, got {type(content).__name__}"
            )
    if messages[-1]["role"] != "assistant":
        raise InvalidExampleError(
            "the last message must be the assistant turn to train on, got role "
            f"{short_repr(messages[-1]['role'])}"
        )
    return messages


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to about 60 characters, for quoting a row's value in an error.

    Only the start of a huge or deeply nested value is looked at; an int of more
    digits than Python converts to text is described instead.
    """
    try:
        text = repr(value[:61]) if isinstance(value, str) else _SHORT_REPR.repr(value)
    except ValueError:
        where = "" if isinstance(value, int) else f"a {type(value).__name__} holding "
        return f"<{where}an int of more than 4,300 digits>"
    return text if len(text) <= 60 else text[:57] + "..."


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxlist, _SHORT_REPR.maxdict = 3, 8, 8
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 80


def check_stop_sequences(messages: list[Message], stop_sequences: list[str]) -> None:
    """Raise when a stop sequence occurs inside an assistant turn.

    Generation would stop there, so the model could never produce the answer it
    was trained on.
    """
    for message in messages:
        if message["role"] != "assistant":
            continue
        for stop in stop_sequences:
            if stop and stop in message["content"]:
                raise InvalidExampleError(
                    f"the assistant turn contains the stop sequence {stop!r}; generation would stop "
                    "there. Remove it from the row or override profile.stop_sequences"
                )
