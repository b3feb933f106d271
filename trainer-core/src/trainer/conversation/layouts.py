"""Dataset layouts that hold whole conversations, read into a :class:`Conversation`.

- **OpenAI / Hugging Face**: ``messages`` (``role`` / ``content``, assistant
  ``tool_calls`` and ``reasoning_content``, ``tool`` turns) and, optionally,
  ``tools`` (a list of function schemas, or a JSON string of one).
- **ShareGPT**: ``conversations``, a list of ``{"from", "value"}`` turns, with
  an optional ``system`` field and ``tools`` (as above). ``from`` maps to a role:

  ==================================================  ===========================================
  ``from``                                            becomes
  ==================================================  ===========================================
  ``system``                                          a system turn
  ``human``, ``user``                                 a user turn
  ``gpt``, ``assistant``, ``model``, ``chatgpt``       an assistant turn
  ``function_call``, ``tool_call``                    an assistant turn whose ``tool_calls`` are the
                                                      value: a JSON call ``{"name", "arguments"}``,
                                                      a list of them, or ``<tool_call>`` blocks; it
                                                      joins an assistant turn (or call) right
                                                      before it: parallel calls
  ``observation``, ``tool``, ``function_response``    a tool turn (the call's result)
  ==================================================  ===========================================

  Turns may also be written ``{"role", "content"}``.

In both layouts an assistant turn's thinking is its ``reasoning_content``
(``reasoning`` and ``thinking`` are read as the same). Content that starts with a
``<think>...</think>`` block is kept as it is: Qwen3's template splits it into
reasoning itself, and other templates show it as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainer.conversation.model import Conversation, read_calls
from trainer.conversation.tool_calls import TOOL_CALL_OPEN, parse_tool_calls
from trainer.conversation.validate import normalize_conversation
from trainer.errors import InvalidExampleError, short_repr

MESSAGES_FIELD = "messages"
SHAREGPT_FIELD = "conversations"
TOOLS_FIELD = "tools"
SYSTEM_FIELD = "system"

SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "function_call": "call",
    "tool_call": "call",
    "observation": "tool",
    "tool": "tool",
    "function_response": "tool",
}


def read_conversation(row: Mapping[str, Any]) -> Conversation | None:
    """The conversation a row holds in ``messages`` or ``conversations``; ``None`` when it has neither.

    :raises InvalidExampleError: the conversation breaks a rule of
        :mod:`trainer.conversation.validate`, naming the field and the message.
    """
    if row.get(MESSAGES_FIELD) is not None:
        field, messages = MESSAGES_FIELD, row[MESSAGES_FIELD]
    elif row.get(SHAREGPT_FIELD) is not None:
        field = SHAREGPT_FIELD
        messages = sharegpt_messages(row[SHAREGPT_FIELD], row.get(SYSTEM_FIELD))
    else:
        return None
    try:
        return normalize_conversation(messages, row.get(TOOLS_FIELD))
    except InvalidExampleError as exc:
        raise InvalidExampleError(f"field '{field}': {exc}") from None


def sharegpt_messages(turns: Any, system: Any = None) -> list[dict[str, Any]]:
    """ShareGPT turns as messages (not yet normalized); see the module's table.

    :raises InvalidExampleError: not a list of turns, an unknown ``from``, or a
        function call that is not JSON.
    """
    if not isinstance(turns, list):
        raise InvalidExampleError(
            f"field '{SHAREGPT_FIELD}' must be a list of {{'from', 'value'}} turns, "
            f"got {type(turns).__name__}"
        )
    messages: list[dict[str, Any]] = []
    if isinstance(system, str) and system.strip():
        messages.append({"role": "system", "content": system})
    for index, turn in enumerate(turns):
        if not isinstance(turn, Mapping):
            raise InvalidExampleError(
                f"field '{SHAREGPT_FIELD}' turn {index} must be an object, got {short_repr(turn)}"
            )
        speaker = turn.get("from", turn.get("role"))
        value = turn.get("value", turn.get("content"))
        role = SHAREGPT_ROLES.get(str(speaker).lower()) if speaker is not None else None
        if role is None:
            raise InvalidExampleError(
                f"field '{SHAREGPT_FIELD}' turn {index} is from {short_repr(speaker)}; use one of: "
                f"{', '.join(SHAREGPT_ROLES)}"
            )
        if role != "call":
            messages.append({"role": role, "content": value})
            continue
        calls = _calls(value, f"field '{SHAREGPT_FIELD}' turn {index} ({speaker})")
        previous = messages[-1] if messages else None
        if previous is not None and previous["role"] == "assistant":
            # The reply's text, then its calls; or more calls of the same turn, made in parallel.
            previous["tool_calls"] = [*(previous.get("tool_calls") or []), *calls]
        else:
            messages.append({"role": "assistant", "content": "", "tool_calls": calls})
    return messages


def _calls(value: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(value, str) and TOOL_CALL_OPEN in value:
        calls = parse_tool_calls(value)
        if calls is None:
            raise InvalidExampleError(
                f"{where} holds a <tool_call> block that is not a JSON call; write "
                '{"name": ..., "arguments": {...}} inside the tags'
            )
        return calls
    return read_calls(value, where)
