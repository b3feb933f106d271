"""The ``think`` profile: native chain of thought, as Qwen3 and most 2026 reasoning data carry it.

The row's reasoning becomes the assistant turn's ``reasoning_content`` and the
final answer its content. The model's chat template renders the two, Qwen3's as::

    <think>
    Janet sells 16 - 3 - 4 = 9 duck eggs a day.
    She makes 9 * 2 = $18 every day at the farmer's market.
    </think>

    18

A template that shows no ``reasoning_content`` gets the same block written into
the content by trainer (see the conversations page), so the model learns the
format either way. With ``thinking=False`` the think block is empty, as Qwen3
trains its non-thinking mode.

Composed with a profile that builds its own reply, ``think`` adds the row's
reasoning before it: in ``think+tool_use`` the model reasons, then calls, and
``tool_use`` judges the calls after the think block::

    <think>
    The user asks about the weather in Paris, so I call get_weather.
    </think>

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainer.conversation.model import split_think
from trainer.profiles.base import DataProfile, Message
from trainer.profiles.fields import read_example, read_reasoning

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


class ThinkProfile(DataProfile):
    """Native chain of thought: reasoning in a <think> block, then the answer."""

    name = "think"
    description = "Native chain of thought: reasoning_content in <think>...</think>, then the answer"
    suits = "reasoning data: GSM8K worked lines, a reasoning field, <think> blocks or reasoning_content"

    def __init__(self, thinking: bool = True) -> None:
        """:param thinking: train the reasoning; ``False`` trains an empty think block, then the answer."""
        if not isinstance(thinking, bool):
            from trainer.errors import TrainerError

            raise TrainerError(
                f"profile 'think' option thinking must be true or false, got {thinking!r}. "
                "Set profile.options.thinking to true or false"
            )
        self.thinking = thinking

    def prepare_messages(self, example: Mapping[str, Any]) -> list[Message]:
        """A user turn and an assistant turn whose ``reasoning_content`` is the row's reasoning.

        The reasoning comes from the row's reasoning field (``reasoning``, ``steps``,
        ``thinking``), GSM8K's worked lines, or a ``<think>...</think>`` block that
        starts the target; the content is the final answer (GSM8K's ``####`` value,
        else the target after any think block). A row without reasoning gets an
        empty think block. Ready-made conversations keep their turns; each
        assistant turn's leading ``<think>`` block becomes its reasoning.

        :raises InvalidExampleError: the row lacks a user turn or a target.
        """
        parsed = read_example(example)
        if parsed.messages is not None:
            messages = [self._with_reasoning(dict(message)) for message in parsed.messages]
            if self.thinking is False:
                messages[-1]["reasoning_content"] = ""
            return messages
        reasoning, target = split_think(parsed.target)
        lines = parsed.reasoning or ([] if reasoning is None else reasoning.splitlines())
        answer = parsed.answer if parsed.answer != parsed.target else target.strip()
        return [
            {"role": "user", "content": parsed.prompt},
            {
                "role": "assistant",
                "content": answer,
                "reasoning_content": "\n".join(lines) if self.thinking else "",
            },
        ]

    def transform_messages(self, messages: list[Message], example: Mapping[str, Any]) -> list[Message]:
        """With another profile as the base (``think+tool_use``): the row's reasoning opens the reply.

        The last assistant turn, as the base built it (a call, or a reply), gets
        the row's reasoning field (``reasoning``, ``steps``, ``thinking``) as its
        ``reasoning_content``. A leading ``<think>`` block in an assistant turn's
        content becomes its reasoning, and a turn that has reasoning keeps it. A
        row without reasoning, or ``thinking=False``, gets an empty think block.
        """
        messages = [self._with_reasoning(dict(message)) for message in messages]
        last = messages[-1]
        if last["role"] == "assistant":
            if not self.thinking:
                last["reasoning_content"] = ""
            elif not last.get("reasoning_content"):
                last["reasoning_content"] = "\n".join(read_reasoning(example))
        return messages

    def restore_text(self, text: str) -> str | None:
        """The text after the closed think block, for the base's parser.

        :return: ``None`` when the text has no ``<think>`` ... ``</think>`` block:
            the format was not followed.
        """
        opened = text.find(THINK_OPEN)
        closed = text.rfind(THINK_CLOSE)
        if opened == -1 or closed < opened:
            return None
        return text[closed + len(THINK_CLOSE) :].lstrip()

    def _with_reasoning(self, message: Message) -> Message:
        if message["role"] != "assistant" or message.get("reasoning_content") is not None:
            return message
        reasoning, content = split_think(message["content"])
        if reasoning is not None:
            message.update(content=content, reasoning_content=reasoning)
        return message

    def expected_answer(self, example: Mapping[str, Any]) -> str | None:
        """The row's answer (GSM8K's ``####`` value, else the target) without a leading think block."""
        parsed = read_example(example)
        if parsed.messages is not None:
            return None
        return split_think(parsed.answer)[1].strip() or None

    def get_stop_sequences(self) -> list[str]:
        """None: the end-of-turn token ends generation, after the think block and the answer."""
        return []

    def format_system_prompt(self, base_prompt: str) -> str:
        """The base prompt unchanged: the template's think block carries the format, as in Qwen3."""
        return base_prompt

    def parse_answer(self, text: str) -> str | None:
        """The text after the closed think block.

        :return: ``None`` when the text has no ``<think>`` ... ``</think>`` block
            before the answer, or nothing after it.
        """
        answer = self.restore_text(text)
        return (answer or "").strip() or None

    def rate_example(self, example: Mapping[str, Any]) -> float:
        """1.0 for a row with reasoning (a field, GSM8K lines, a think block, reasoning_content), else 0."""
        parsed = read_example(example)
        if parsed.messages is not None:
            turns = [self._with_reasoning(dict(m)) for m in parsed.messages if m["role"] == "assistant"]
            return 1.0 if any(turn.get("reasoning_content") for turn in turns) else 0.0
        return 1.0 if parsed.reasoning or split_think(parsed.target)[0] else 0.0
