"""Tool calls in generated text: the Hermes / Qwen ``<tool_call>{json}</tool_call>`` format.

A model trained on Qwen3's template (or trainer's ChatML fallback) writes each
call as::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

:func:`parse_tool_calls` reads them back into canonical calls, and
:func:`calls_match` says whether two lists of calls are the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"

_BLOCK = re.compile(re.escape(TOOL_CALL_OPEN) + r"(.*?)" + re.escape(TOOL_CALL_CLOSE), re.DOTALL)


def parse_tool_calls(text: str) -> list[dict[str, Any]] | None:
    """The calls written in ``text``, each ``{"type": "function", "function": {"name", "arguments"}}``.

    :return: the calls in order; ``[]`` when the text has no ``<tool_call>``
        block; ``None`` when a block is not a JSON object with a ``name`` and
        object ``arguments`` (a malformed call), or a block is left unclosed.
    """
    calls: list[dict[str, Any]] = []
    for block in _BLOCK.findall(text):
        call = _parse_block(block)
        if call is None:
            return None
        calls.append(call)
    if text.count(TOOL_CALL_OPEN) != len(calls):
        return None  # an unclosed block: generation stopped inside a call
    return calls


def format_tool_calls(calls: list[dict[str, Any]]) -> str:
    """``calls`` written as the model writes them: ``<tool_call>`` blocks, one per line."""
    blocks = []
    for call in calls:
        function = call.get("function", call)
        body = json.dumps(
            {"name": function["name"], "arguments": function.get("arguments", {})}, ensure_ascii=False
        )
        blocks.append(f"{TOOL_CALL_OPEN}\n{body}\n{TOOL_CALL_CLOSE}")
    return "\n".join(blocks)


def reply_text(message: Mapping[str, Any]) -> str:
    """An assistant message as the text the model writes for it (Qwen3 / ChatML form).

    Its ``<think>`` block when it has reasoning, its content, then its calls as
    ``<tool_call>`` blocks: what a profile's ``parse_answer`` reads from generated text.
    """
    text = message.get("content") or ""
    calls = message.get("tool_calls") or []
    if calls:
        text = (text + "\n" if text else "") + format_tool_calls(calls)
    reasoning = message.get("reasoning_content")
    if reasoning is not None:
        text = f"<think>\n{reasoning}\n</think>\n\n{text}"
    return text


def calls_match(found: list[dict[str, Any]], expected: list[dict[str, Any]]) -> bool:
    """Same functions with JSON-equal arguments, in any order; numbers equal by value (``2`` and ``2.0``)."""
    return sorted(map(_canonical, found)) == sorted(map(_canonical, expected))


def _parse_block(block: str) -> dict[str, Any] | None:
    try:
        value = json.loads(block)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, Mapping):
        return None
    name = value.get("name")
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None
    if not isinstance(name, str) or not name or not isinstance(arguments, Mapping):
        return None
    return {"type": "function", "function": {"name": name, "arguments": dict(arguments)}}


def _canonical(call: Mapping[str, Any]) -> str:
    function = call.get("function", call)
    return json.dumps([function.get("name"), _numbers(function.get("arguments", {}))], sort_keys=True)


def _numbers(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, Mapping):
        return {key: _numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers(item) for item in value]
    return value
