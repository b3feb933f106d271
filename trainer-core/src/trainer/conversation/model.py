"""Messages, tool calls and tool schemas in their one canonical form.

The form is the OpenAI / Hugging Face chat format that datasets and chat
templates already use:

- a message is a dict with ``role`` (``system``, ``user``, ``assistant`` or
  ``tool``) and ``content`` (text);
- an assistant message may also carry ``reasoning_content`` (its thinking) and
  ``tool_calls``: ``[{"type": "function", "function": {"name": ..., "arguments": {...}}}]``
  (an ``id`` is kept when given);
- a tool message may carry ``name`` and ``tool_call_id``;
- a conversation may carry ``tools``: JSON-schema function descriptions, each
  ``{"type": "function", "function": {"name", "description", "parameters"}}``.

:func:`normalize_message` and :func:`normalize_tools` accept the common variants
(arguments as a JSON string, tools without the ``function`` wrapper, content as
a list of text parts, ``None`` content beside tool calls) and return the canonical form, or raise
:class:`~trainer.errors.InvalidExampleError` naming the message and the fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainer.errors import InvalidExampleError, short_repr

Message = dict[str, Any]
"""One chat message in canonical form (see the module documentation)."""

ROLES = ("system", "user", "assistant", "tool")
REASONING_KEYS = ("reasoning_content", "reasoning", "thinking")
"""Where a message's thinking may be given; it is kept as ``reasoning_content``."""

_THINK = re.compile(r"^\s*<think>(.*?)</think>\s*", re.DOTALL)


@dataclass
class Conversation:
    """What a profile may return instead of a plain list of messages: messages and the tools offered.

    :ivar messages: the turns, in canonical form once normalized.
    :ivar tools: the functions the model may call, or ``None``; passed to the chat
        template's ``tools`` argument.
    """

    messages: list[Message]
    tools: list[dict[str, Any]] | None = None


def normalize_message(message: Any, index: int) -> Message:
    """``message`` in canonical form.

    :param index: the message's position, for errors.
    :raises InvalidExampleError: not a dict with a known role, content that is
        not text, bad tool calls or reasoning on a turn that cannot have them.
    """
    if not isinstance(message, Mapping) or "role" not in message:
        raise InvalidExampleError(
            f"message {index} must be a dict with 'role' and 'content', got {short_repr(message)}"
        )
    role = message["role"]
    if role not in ROLES:
        raise InvalidExampleError(
            f"message {index} has role {short_repr(role)}; use one of: {', '.join(ROLES)}"
        )
    where = f"message {index} ({role})"
    content = _content(message.get("content"), where, role)
    result: Message = {"role": role, "content": content}
    reasoning = next((message[key] for key in REASONING_KEYS if message.get(key) is not None), None)
    calls = message.get("tool_calls")
    if role != "assistant":
        extra = [key for key in ("tool_calls", *REASONING_KEYS) if message.get(key) not in (None, "", [])]
        if extra:
            raise InvalidExampleError(
                f"{where} has {extra[0]}; only assistant turns may. Move it to the assistant turn"
            )
    if role == "assistant":
        if reasoning is not None:
            if not isinstance(reasoning, str):
                raise InvalidExampleError(
                    f"{where} reasoning_content must be text, got {type(reasoning).__name__}"
                )
            result["reasoning_content"] = reasoning
        if calls is not None and calls != []:
            if not isinstance(calls, list):
                raise InvalidExampleError(
                    f"{where} tool_calls must be a list of calls, got {type(calls).__name__}"
                )
            result["tool_calls"] = [normalize_tool_call(call, f"{where} tool call {n}") for n, call in
                                    enumerate(calls, start=1)]
    if role == "tool":
        for key in ("name", "tool_call_id"):
            value = message.get(key)
            if value is not None:
                if not isinstance(value, str):
                    raise InvalidExampleError(f"{where} {key} must be text, got {short_repr(value)}")
                result[key] = value
    return result


def normalize_tool_call(call: Any, where: str) -> dict[str, Any]:
    """One call as ``{"type": "function", "function": {"name", "arguments"}}`` (plus ``id``).

    Accepts the call with or without the ``function`` wrapper, and arguments as
    an object or a JSON string of one.

    :param where: names the call in errors (``message 2 (assistant) tool call 1``).
    :raises InvalidExampleError: no name, or arguments that are not a JSON object.
    """
    if not isinstance(call, Mapping):
        raise InvalidExampleError(f"{where} must be an object with a function name, got {short_repr(call)}")
    function = call.get("function", call)
    if not isinstance(function, Mapping):
        raise InvalidExampleError(f"{where}: 'function' must be an object, got {short_repr(function)}")
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidExampleError(f"{where} has no function name; give {{'function': {{'name': ...}}}}")
    arguments = parse_arguments(function.get("arguments"), f"{where} ({name!r})")
    result: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if isinstance(call.get("id"), str):
        result["id"] = call["id"]
    return result


def read_calls(value: Any, where: str) -> list[dict[str, Any]]:
    """Calls as a dataset gives them, in canonical form: one call or a list, or JSON text of either.

    :param where: names the value in errors (``field 'call'``).
    :raises InvalidExampleError: text that is not JSON, an empty list, or a bad call.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidExampleError(
                f"{where} is not valid JSON ({exc.msg} at character {exc.pos}: {short_repr(value)}); write "
                'the call as {"name": ..., "arguments": {...}}'
            ) from None
    items = value if isinstance(value, list) else [value]
    if not items:
        raise InvalidExampleError(f"{where} is an empty list; give at least one call")
    return [normalize_tool_call(item, f"{where} call {n}") for n, item in enumerate(items, start=1)]


def parse_arguments(arguments: Any, where: str) -> dict[str, Any]:
    """A call's arguments as a dict: an object as it is, a JSON string parsed, none as ``{}``.

    :raises InvalidExampleError: a string that is not JSON, or JSON that is not an object.
    """
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise InvalidExampleError(
                f"{where} has arguments that are not valid JSON ({exc.msg} at character {exc.pos}: "
                f"{short_repr(arguments)}); fix the JSON or give the arguments as an object"
            ) from None
    if not isinstance(arguments, Mapping):
        raise InvalidExampleError(
            f"{where} has arguments {short_repr(arguments)}; arguments must be a JSON object of "
            "parameter names to values"
        )
    return dict(arguments)


def normalize_tools(tools: Any) -> list[dict[str, Any]] | None:
    """Tool schemas as ``[{"type": "function", "function": {...}}]``; ``None`` for no tools.

    Accepts a list (or a JSON string of a list) of schemas with or without the
    ``{"type": "function", "function": ...}`` wrapper.

    :raises InvalidExampleError: not a list of objects with distinct function names.
    """
    if tools is None or tools == "" or tools == []:
        return None
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError as exc:
            raise InvalidExampleError(
                f"field 'tools' is text but not valid JSON ({exc.msg}); give a list of function schemas"
            ) from None
    if isinstance(tools, Mapping):
        tools = [tools]
    if not isinstance(tools, list):
        raise InvalidExampleError(
            f"field 'tools' must be a list of function schemas, got {type(tools).__name__}"
        )
    result: list[dict[str, Any]] = []
    names: set[str] = set()
    for number, tool in enumerate(tools, start=1):
        function = tool.get("function", tool) if isinstance(tool, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str) or not name.strip():
            raise InvalidExampleError(
                f"tool {number} in 'tools' has no function name ({short_repr(tool)}); give "
                "{'type': 'function', 'function': {'name': ..., 'parameters': {...}}}"
            )
        if name in names:
            raise InvalidExampleError(f"'tools' describes the function {name!r} twice; keep one")
        names.add(name)
        assert isinstance(function, Mapping)
        if "function" not in tool:  # the flat layout: {"type": "function", "name": ..., ...}
            function = {key: value for key, value in function.items() if key != "type"}
        result.append({"type": "function", "function": dict(function)})
    return result


def split_think(content: str) -> tuple[str | None, str]:
    """``(reasoning, answer)`` of content that starts with a ``<think>...</think>`` block.

    :return: ``(None, content)`` when the content has no such block. Content is
        otherwise kept as given: templates that read thinking from the content
        (Qwen3's) split it themselves.
    """
    found = _THINK.match(content)
    if found is None:
        return None, content
    return found.group(1).strip("\n"), content[found.end() :]


def tool_names(tools: list[dict[str, Any]] | None) -> list[str]:
    """The function names of normalized ``tools``."""
    return [tool["function"]["name"] for tool in tools or []]


def call_names(message: Message) -> list[str]:
    """The function names an assistant message calls, in order."""
    return [call["function"]["name"] for call in message.get("tool_calls", [])]


def _content(content: Any, where: str, role: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if role == "tool" and isinstance(content, (Mapping, list, int, float, bool)) and not _text_parts(content):
        return json.dumps(content, ensure_ascii=False)  # a structured tool result, as the model reads it
    if isinstance(content, list):
        # [{"type": "text", "text": ...}, ...]: the multimodal layout, text parts only.
        texts = []
        for part in content:
            if _text_parts([part]):
                texts.append(part["text"])
            else:
                raise InvalidExampleError(
                    f"{where} content holds {short_repr(part)}; only text parts "
                    "({'type': 'text', 'text': ...}) are supported"
                )
        return "".join(texts)
    raise InvalidExampleError(f"{where} content must be a string, got {type(content).__name__}")


def _text_parts(content: Any) -> bool:
    return isinstance(content, list) and all(
        isinstance(part, Mapping) and part.get("type", "text") == "text" and isinstance(part.get("text"), str)
        for part in content
    )
