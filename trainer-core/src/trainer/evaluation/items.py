"""What an evaluation asks: each row's prompt, tools and expected answer, as the profile renders them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trainer.data.conversation import build_conversation
from trainer.profiles.base import DataProfile, InvalidExampleError, Message


@dataclass(frozen=True)
class EvalItem:
    """One row to evaluate: the conversation up to the reply, its tools and the answer expected.

    :ivar row: the row's number in the dataset (1-based, as errors name rows).
    :ivar error: why the profile cannot render the row; such a row is counted, not evaluated.
    """

    row: int
    messages: tuple[Message, ...] = ()
    tools: tuple[dict[str, Any], ...] | None = None
    expected: str | None = None
    error: str | None = None

    @property
    def prompt(self) -> str:
        """The last user turn, for display."""
        users = [message["content"] for message in self.messages if message["role"] == "user"]
        return users[-1] if users else ""


def eval_items(
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    profile: DataProfile,
    system_prompt: str,
    stop_sequences: list[str],
) -> list[EvalItem]:
    """Every row as the profile renders it for generation, the reply left out.

    A row the profile cannot render becomes an item with its ``error``: an
    evaluation lists such rows in its summary and never stops on one.
    """
    items = []
    for number, row in rows:
        try:
            conversation = build_conversation(
                profile, row, system_prompt, stop_sequences, allow_consecutive_assistant=True
            )
            expected = profile.expected_answer(row)
        except InvalidExampleError as exc:
            items.append(EvalItem(row=number, error=str(exc)))
            continue
        items.append(
            EvalItem(
                row=number,
                messages=tuple(conversation.messages[:-1]),
                tools=None if conversation.tools is None else tuple(conversation.tools),
                expected=expected,
            )
        )
    return items
