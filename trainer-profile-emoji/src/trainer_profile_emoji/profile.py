"""The ``emoji_think`` profile: a thinking marker, reasoning lines, then the answer.

A rendered assistant turn reads::

    🤔🤔🤔🤔
    Janet sells 16 - 3 - 4 = 9 duck eggs a day.
    She makes 9 * 2 = $18 every day at the farmer’s market.
    The answer is 18

Lines are joined with a single newline and never left blank, because ``"\\n\\n"``
is a stop sequence: a blank line inside a target would end generation before the
answer the model was trained to give.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from trainer.profiles.base import DataProfile, Message, check_stop_sequences
from trainer.profiles.fields import collapse_assistant_blank_lines, read_example, single_line

THINKING_MARKER = "🤔🤔🤔🤔"
"""Opens every assistant answer, on a line of its own."""

ANSWER_PREFIX = "The answer is "
"""Starts the last line of every assistant answer."""

STOP_SEQUENCES = ("\n\n", "<think>")
"""Where generation stops; none of them can occur in a rendered target."""

THINKING_INSTRUCTION = (
    f"Before answering, think. Start your reply with {THINKING_MARKER} on a line of its own, "
    f"then write your reasoning, one step per line, and end with a last line of the form "
    f"'{ANSWER_PREFIX}X'. Do not use <think> tags and do not leave blank lines."
)
"""Appended to the run's base system prompt."""

MARKER_INSTRUCTION = (
    f"Start your reply with {THINKING_MARKER} on a line of its own. "
    "Do not use <think> tags and do not leave blank lines."
)
"""Added to the system prompt when ``emoji_think`` follows another profile (``a+emoji_think``)."""

_ANSWER_LINE = re.compile(rf"^{re.escape(ANSWER_PREFIX.strip())}\s+(.+)$", re.IGNORECASE)


class EmojiThinkProfile(DataProfile):
    """Reasoning opened by the 🤔🤔🤔🤔 marker and closed by 'The answer is X'."""

    name = "emoji_think"
    # Plain ASCII: wide emoji would misalign the `trainer profiles` table.
    description = f"Thinking-emoji marker, reasoning lines, then '{ANSWER_PREFIX}X'"
    # The model must think after the emoji marker, not inside think tags.
    penalized_strings = ("<think>", "</think>")
    suits = "reasoning data (GSM8K worked lines or a reasoning field) with a short final answer"

    def prepare_messages(self, example: Mapping[str, Any]) -> list[Message]:
        """Render a row as a user turn and a marker-reasoning-answer assistant turn.

        Rows with ``messages`` keep their conversation; only blank lines inside
        assistant turns are collapsed.

        :raises InvalidExampleError: the row lacks a user turn or a target, or a
            stop sequence (such as ``<think>``) occurs in the assistant turn.
        """
        parsed = read_example(example)
        if parsed.messages is not None:
            messages = collapse_assistant_blank_lines(parsed.messages)
        else:
            answer = single_line(parsed.answer)
            lines = [THINKING_MARKER, *parsed.reasoning, f"{ANSWER_PREFIX}{answer}"]
            messages = [
                {"role": "user", "content": parsed.prompt},
                {"role": "assistant", "content": "\n".join(lines)},
            ]
        check_stop_sequences(messages, self.get_stop_sequences())
        return messages

    def transform_messages(self, messages: list[Message], example: Mapping[str, Any]) -> list[Message]:
        """After another profile: open the last assistant turn with the thinking marker.

        Rows with ``messages`` keep their conversation, as when ``emoji_think``
        comes first; in both cases blank lines inside assistant turns are collapsed.
        """
        messages = collapse_assistant_blank_lines(messages)
        if read_example(example).messages is not None:
            return messages
        last = messages[-1]
        if not last["content"].startswith(THINKING_MARKER):
            last["content"] = f"{THINKING_MARKER}\n{last['content']}"
        return messages

    def transform_system_prompt(self, system_prompt: str) -> str:
        """The prompt, then the instruction to open the reply with the marker."""
        base = system_prompt.strip()
        return f"{base}\n\n{MARKER_INSTRUCTION}" if base else MARKER_INSTRUCTION

    def restore_text(self, text: str) -> str | None:
        """The text without its opening marker line; ``None`` when it does not open with the marker."""
        stripped = text.strip()
        if not stripped.startswith(THINKING_MARKER):
            return None
        return stripped.removeprefix(THINKING_MARKER).lstrip()

    def rate_example(self, example: Mapping[str, Any]) -> float:
        """1.0 for a row with reasoning lines and a one-line answer; 0.0 otherwise."""
        parsed = read_example(example)
        return 1.0 if parsed.reasoning and "\n" not in parsed.answer.strip() else 0.0

    def get_stop_sequences(self) -> list[str]:
        """A blank line, or the start of a think tag."""
        return list(STOP_SEQUENCES)

    def format_system_prompt(self, base_prompt: str) -> str:
        """The base prompt, then the instruction to think after the marker."""
        base = base_prompt.strip()
        return f"{base}\n\n{THINKING_INSTRUCTION}" if base else THINKING_INSTRUCTION

    def parse_answer(self, text: str) -> str | None:
        """``X`` from the last 'The answer is X' line, without a final period.

        :return: ``None`` when the text does not start with the thinking marker or
            has no answer line.
        """
        stripped = text.strip()
        if not stripped.startswith(THINKING_MARKER):
            return None
        for line in reversed(stripped.splitlines()):
            found = _ANSWER_LINE.match(line.strip())
            if found:
                answer = found.group(1).strip().removesuffix(".").strip()
                return answer or None
        return None
