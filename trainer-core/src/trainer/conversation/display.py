"""Conversations as readable text, for ``trainer preview`` and the documentation."""

from __future__ import annotations

import json
from collections.abc import Sequence

from trainer.conversation.model import Message


def message_lines(messages: Sequence[Message], system_stand_in: str | None = None) -> list[str]:
    """Messages as lines: a ``[role]`` header, then reasoning, content and calls, each labelled.

    :param system_stand_in: shown instead of the system turn's text (the docs say
        "(the system prompt above)" rather than repeat it).
    """
    lines = []
    for message in messages:
        role = message["role"]
        name = message.get("name") or message.get("tool_call_id")
        lines.append(f"[{role} {name}]" if role == "tool" and name else f"[{role}]")
        if role == "system" and system_stand_in is not None:
            lines.append(system_stand_in)
            continue
        if message.get("reasoning_content") is not None:
            lines += ["(reasoning)", message["reasoning_content"], "(answer)"]
        if message["content"] or not message.get("tool_calls"):
            lines.append(message["content"])
        for call in message.get("tool_calls", []):
            lines.append("(tool call) " + json.dumps(call["function"], ensure_ascii=False))
    return lines
