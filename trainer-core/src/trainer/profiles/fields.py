"""The field layouts a profile accepts, read into one shape.

Profiles call :func:`read_example` instead of indexing rows themselves, so every
profile accepts the same layouts and reports a missing field the same way:

- the user turn: ``prompt``, ``question`` or ``instruction`` (an ``input`` field
  is appended to an instruction, as in Alpaca-style data);
- the target: ``response``, ``answer``, ``output`` or ``completion``;
- optional reasoning: ``reasoning``, ``steps`` or ``thinking`` (a string, one
  step per line, or a list of strings);
- GSM8K answers: worked lines with ``<<48/2=24>>`` calculator notes and a last
  line ``#### <answer>``; the notes are removed and the lines become reasoning;
- ready-made conversations: ``messages`` (OpenAI / Hugging Face layout, with
  ``tools``, ``tool_calls``, ``tool`` turns and ``reasoning_content``) or
  ``conversations`` (ShareGPT); see :mod:`trainer.conversation.layouts`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trainer.conversation.layouts import SHAREGPT_FIELD, read_conversation
from trainer.conversation.model import Message
from trainer.errors import InvalidExampleError, short_repr

PROMPT_FIELDS = ("prompt", "question", "instruction")
INPUT_FIELD = "input"
TARGET_FIELDS = ("response", "answer", "output", "completion")
REASONING_FIELDS = ("reasoning", "steps", "thinking")
MESSAGES_FIELD = "messages"

ACCEPTED_FIELDS = (
    f"{' / '.join(PROMPT_FIELDS)} (+ {INPUT_FIELD}) with {' / '.join(TARGET_FIELDS)}, "
    f"optionally {' / '.join(REASONING_FIELDS)}; or {MESSAGES_FIELD} (with tools); or {SHAREGPT_FIELD}"
)

# "\s*(\S.*)" and not "\s*(.+?)\s*$": the lazy form takes quadratic time on a long run of spaces.
_GSM8K_FINAL = re.compile(r"^\s*####\s*(\S.*)$")
_CALCULATOR_NOTE = re.compile(r"<<[^<>]*>>")
_BLANK_LINES = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Example:
    """One row, read into the parts profiles build on.

    :ivar prompt: the user turn ("" for ``messages`` rows).
    :ivar target: the target text exactly as the row gives it.
    :ivar answer: the final answer: GSM8K's ``####`` value, else the target.
    :ivar reasoning: reasoning lines (from a reasoning field or GSM8K's worked
        lines), without blank lines; empty when the row has none.
    :ivar messages: the row's ready-made messages (``messages`` or ShareGPT
        ``conversations``, in canonical form), or ``None``.
    :ivar tools: the tools a ready-made conversation offers, or ``None``.
    """

    prompt: str = ""
    target: str = ""
    answer: str = ""
    reasoning: list[str] = field(default_factory=list)
    messages: list[Message] | None = None
    tools: list[dict[str, Any]] | None = None


def read_example(example: Mapping[str, Any]) -> Example:
    """Read a row in any accepted layout.

    :raises InvalidExampleError: the row has neither ``messages`` nor a user turn
        and a target, naming the fields it has and the accepted ones.
    """
    if not isinstance(example, Mapping):
        raise InvalidExampleError(
            f"a row must be a mapping of field names to values, got {type(example).__name__}"
        )
    prompt = _first_text(example, PROMPT_FIELDS)
    target = _first_text(example, TARGET_FIELDS)
    if prompt is None or target is None:
        conversation = read_conversation(example) if prompt is None else None
        if conversation is not None:
            last = conversation.messages[-1]["role"]
            if last != "assistant":
                field = MESSAGES_FIELD if example.get(MESSAGES_FIELD) is not None else SHAREGPT_FIELD
                raise InvalidExampleError(
                    f"field '{field}': the conversation ends with a {last} turn; its last message must be "
                    "the assistant turn to train on"
                )
            return Example(messages=conversation.messages, tools=conversation.tools)
        missing = "a user turn" if prompt is None else "a target"
        present = ", ".join(sorted(map(_field_name, example))) or "none"
        raise InvalidExampleError(
            f"row lacks {missing} (fields present: {present}); accepted fields: {ACCEPTED_FIELDS}"
        )

    extra_input = _first_text(example, (INPUT_FIELD,))
    if extra_input and _first_text(example, PROMPT_FIELDS[:-1]) is None:
        # Alpaca layout: the instruction, then its input.
        prompt = f"{prompt}\n\n{extra_input}"

    reasoning = _reasoning_lines(example)
    answer = target
    final = _gsm8k_split(target)
    if final is not None:
        worked_lines, answer = final
        if not reasoning:
            reasoning = worked_lines
    return Example(prompt=prompt, target=target, answer=answer.strip(), reasoning=reasoning)


def read_reasoning(example: Mapping[str, Any]) -> list[str]:
    """The row's reasoning lines from its reasoning field (``reasoning``, ``steps``, ``thinking``).

    Needs no target, so a profile that adds reasoning to what another one built
    (``think`` after ``tool_use``) reads it from rows in any layout. GSM8K's
    worked lines are not read here: they are part of the target (:func:`read_example`).

    :return: the lines without blank ones or calculator notes; empty when the row has none.
    :raises InvalidExampleError: the field is neither text nor a list of strings.
    """
    return _reasoning_lines(example) if isinstance(example, Mapping) else []


def collapse_blank_lines(text: str) -> str:
    """Replace every run of blank lines with a single newline."""
    return _BLANK_LINES.sub("\n", text).strip()


def single_line(text: str) -> str:
    """Join the lines of ``text`` with spaces, for answers read back line by line."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def collapse_assistant_blank_lines(messages: list[Message]) -> list[Message]:
    """Copies of ``messages`` whose assistant turns have no blank lines.

    For profiles that stop generation at ``"\\n\\n"`` and take ``messages`` rows as given.
    """
    return [
        {**message, "content": collapse_blank_lines(message["content"])}
        if message["role"] == "assistant"
        else dict(message)
        for message in messages
    ]


def strip_calculator_notes(text: str) -> str:
    """Remove GSM8K's ``<<48/2=24>>`` calculator notes."""
    return _CALCULATOR_NOTE.sub("", text)


def _first_text(example: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = example.get(name)
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            try:
                return str(value)
            except ValueError:  # an int of more digits than Python converts to text
                raise InvalidExampleError(
                    f"field '{name}' holds a number of more than 4,300 digits; write it as text"
                ) from None
        if isinstance(value, str) and value.strip():
            return value
        if not isinstance(value, str):
            raise InvalidExampleError(
                f"field '{name}' must be text, got {type(value).__name__}: {short_repr(value)}"
            )
    return None


def _field_name(name: Any) -> str:
    # A field name with a line break or a control character is quoted, so messages stay one line.
    text = str(name)
    return text if text.isprintable() else repr(text)


def _reasoning_lines(example: Mapping[str, Any]) -> list[str]:
    for name in REASONING_FIELDS:
        value = example.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            lines = value.splitlines()
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            lines = [line for item in value for line in item.splitlines()]
        else:
            raise InvalidExampleError(
                f"field '{name}' must be text or a list of strings, got {type(value).__name__}"
            )
        return [strip_calculator_notes(line).strip() for line in lines if line.strip()]
    return []


def _gsm8k_split(target: str) -> tuple[list[str], str] | None:
    lines = [line for line in target.splitlines() if line.strip()]
    if not lines:
        return None
    final = _GSM8K_FINAL.match(lines[-1])
    if final is None:
        return None
    worked = [strip_calculator_notes(line).strip() for line in lines[:-1]]
    return [line for line in worked if line], final.group(1).strip()
