"""The ``regime3`` profile: numbered reasoning steps, then the answer.

A rendered assistant turn reads::

    Step 1: Janet sells 16 - 3 - 4 = 9 duck eggs a day.
    Step 2: She makes 9 * 2 = $18 every day at the farmer’s market.
    Answer: 18

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

ANSWER_PREFIX = "Answer: "
"""Starts the last line of every assistant answer."""

STOP_SEQUENCES = ("</reasoning>", "\n\n")
"""Where generation stops; none of them can occur in a rendered target."""

REASONING_INSTRUCTION = (
    "Reason step by step. Write each step on a line of its own as 'Step 1: ...', "
    "'Step 2: ...' and so on, then give the final answer on a last line of the form "
    f"'{ANSWER_PREFIX}X'. Do not leave blank lines."
)
"""Appended to the run's base system prompt."""

STEP_INSTRUCTION = "Write each reasoning step on a line of its own as 'Step 1: ...', 'Step 2: ...' and so on."
"""Added to the system prompt when ``regime3`` follows another profile (``a+regime3``)."""

_STEP_LINE = re.compile(r"^Step\s+(\d+)\s*:\s*(.*)$", re.IGNORECASE)
_ANSWER_LINE = re.compile(rf"^{re.escape(ANSWER_PREFIX.strip())}\s*(.+)$", re.IGNORECASE)


class Regime3Profile(DataProfile):
    """Structured reasoning: 'Step N: ...' lines, then 'Answer: X'."""

    name = "regime3"
    description = f"Numbered 'Step N: ...' reasoning lines, then '{ANSWER_PREFIX}X'"
    suits = "reasoning data (GSM8K worked lines or a reasoning field) with a short final answer"

    def prepare_messages(self, example: Mapping[str, Any]) -> list[Message]:
        """Render a row as a user turn and a steps-then-answer assistant turn.

        Steps come from the row's reasoning field, else from GSM8K's worked lines;
        a step already written as 'Step N: ...' is renumbered, not doubled. Rows
        with ``messages`` keep their conversation; only blank lines inside
        assistant turns are collapsed.

        :raises InvalidExampleError: the row lacks a user turn or a target, or a
            stop sequence (such as ``</reasoning>``) occurs in the assistant turn.
        """
        parsed = read_example(example)
        if parsed.messages is not None:
            messages = collapse_assistant_blank_lines(parsed.messages)
        else:
            steps = [step for step in map(_without_step_label, parsed.reasoning) if step]
            lines = [f"Step {number}: {step}" for number, step in enumerate(steps, start=1)]
            lines.append(f"{ANSWER_PREFIX}{single_line(parsed.answer)}")
            messages = [
                {"role": "user", "content": parsed.prompt},
                {"role": "assistant", "content": "\n".join(lines)},
            ]
        check_stop_sequences(messages, self.get_stop_sequences())
        return messages

    def transform_messages(self, messages: list[Message], example: Mapping[str, Any]) -> list[Message]:
        """After another profile: number the row's reasoning lines in the last assistant turn.

        Each line of the turn that is the row's next reasoning step (with or
        without a 'Step N:' label) becomes 'Step N: ...'; other lines, such as an
        answer line or a marker, stay as they are. When the turn carries its
        reasoning as ``reasoning_content`` (after ``think``), the steps are
        numbered there, inside the think block. Rows with ``messages`` keep
        their conversation, as when ``regime3`` comes first; in both cases blank
        lines inside assistant turns are collapsed.
        """
        messages = collapse_assistant_blank_lines(messages)
        parsed = read_example(example)
        if parsed.messages is not None:
            return messages
        steps = [step for step in map(_without_step_label, parsed.reasoning) if step]
        field = "reasoning_content" if messages[-1].get("reasoning_content") else "content"
        lines, number = [], 0
        for line in messages[-1][field].split("\n"):
            if number < len(steps) and _without_step_label(line.strip()) == steps[number]:
                number += 1
                line = f"Step {number}: {steps[number - 1]}"
            lines.append(line)
        messages[-1][field] = "\n".join(lines)
        return messages

    def transform_system_prompt(self, system_prompt: str) -> str:
        """The prompt, then the instruction to number the reasoning steps."""
        base = system_prompt.strip()
        return f"{base}\n\n{STEP_INSTRUCTION}" if base else STEP_INSTRUCTION

    def restore_text(self, text: str) -> str | None:
        """The text with its 'Step N:' labels removed.

        :return: ``None`` when the labelled lines are not numbered 1, 2, 3...
        """
        lines = text.split("\n")
        labels = [step for line in lines if (step := _STEP_LINE.match(line.strip()))]
        if [int(step.group(1)) for step in labels] != list(range(1, len(labels) + 1)):
            return None
        return "\n".join(
            _without_step_label(line.strip()) if _STEP_LINE.match(line.strip()) else line for line in lines
        )

    def rate_example(self, example: Mapping[str, Any]) -> float:
        """1.0 for a row with reasoning lines and a one-line answer; 0.0 otherwise."""
        parsed = read_example(example)
        return 1.0 if parsed.reasoning and "\n" not in parsed.answer.strip() else 0.0

    def get_stop_sequences(self) -> list[str]:
        """The end of a reasoning tag, or a blank line."""
        return list(STOP_SEQUENCES)

    def format_system_prompt(self, base_prompt: str) -> str:
        """The base prompt, then the instruction to reason in numbered steps."""
        base = base_prompt.strip()
        return f"{base}\n\n{REASONING_INSTRUCTION}" if base else REASONING_INSTRUCTION

    def parse_answer(self, text: str) -> str | None:
        """``X`` from the last 'Answer: X' line.

        :return: ``None`` when there is no answer line, or when the lines before it
            are not 'Step N: ...' lines numbered 1, 2, 3... (no steps at all is
            fine). Lines after the answer line are ignored.
        """
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        answers = [(i, found) for i, line in enumerate(lines) if (found := _ANSWER_LINE.match(line))]
        if not answers:
            return None
        last, answer = answers[-1]
        for number, line in enumerate(lines[:last], start=1):
            step = _STEP_LINE.match(line)
            if step is None or int(step.group(1)) != number:
                return None
        return answer.group(1).strip() or None


def _without_step_label(line: str) -> str:
    step = _STEP_LINE.match(line)
    return step.group(2).strip() if step else line
