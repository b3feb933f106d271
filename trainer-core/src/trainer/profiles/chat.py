"""The core's pass-through ``chat`` profile."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainer.conversation.model import Conversation, split_think
from trainer.profiles.base import DataProfile, Message
from trainer.profiles.fields import read_example


class ChatProfile(DataProfile):
    """Plain chat: ready-made messages, or one user turn and one assistant turn."""

    name = "chat"
    description = "Pass-through: ready-made messages, or prompt/response pairs as they stand"
    suits = "ready-made conversations (messages, tools, ShareGPT), or prompt/response pairs without reasoning"

    def prepare_messages(self, example: Mapping[str, Any]) -> list[Message] | Conversation:
        """Conversations (``messages`` with ``tools``, ShareGPT) pass as they are; others become
        user + assistant turns."""
        parsed = read_example(example)
        if parsed.messages is not None:
            messages = [dict(message) for message in parsed.messages]
            return Conversation(messages, parsed.tools) if parsed.tools else messages
        return [
            {"role": "user", "content": parsed.prompt},
            {"role": "assistant", "content": parsed.target},
        ]

    def rate_example(self, example: Mapping[str, Any]) -> float:
        """1.0 for ``messages`` rows, 0.5 for plain pairs, 0.0 for rows with reasoning it would flatten."""
        parsed = read_example(example)
        if parsed.messages is not None:
            return 1.0
        return 0.0 if parsed.reasoning else 0.5

    def get_stop_sequences(self) -> list[str]:
        """None: the end-of-turn token ends generation, so any text may be a target."""
        return []

    def format_system_prompt(self, base_prompt: str) -> str:
        """The base prompt, unchanged."""
        return base_prompt

    def expected_answer(self, example: Mapping[str, Any]) -> str | None:
        """The target as the row gives it, after a leading ``<think>`` block (``None`` for ``messages`` rows).

        The think block is reasoning, not the answer: no two runs reason alike.
        """
        parsed = read_example(example)
        return None if parsed.messages is not None else _after_think(parsed.target)

    def check_answer(self, text: str, expected: str) -> bool:
        """Exact match of the stripped texts, each after a leading ``<think>`` block."""
        return _after_think(text) == _after_think(expected)


def _after_think(text: str) -> str:
    return split_think(text)[1].strip()
