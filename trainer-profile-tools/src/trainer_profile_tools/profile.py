"""The ``tool_use`` profile: a question, the tools on offer and the call(s) the model should make.

A row such as::

    {"question": "What's the weather in Paris?",
     "tools": [{"type": "function", "function": {"name": "get_weather", ...}}],
     "call": {"name": "get_weather", "arguments": {"city": "Paris"}}}

becomes a :class:`~trainer.conversation.Conversation`: the user turn, then an
assistant turn whose ``tool_calls`` hold the call, with the row's ``tools``. The
model's chat template writes the tools block and the call, Qwen3's (and the
ChatML fallback's) as::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

``calls`` (a list) gives parallel calls; a row with ``answer`` and no call is
answered in text, without a tool. Ready-made ``messages`` conversations (or
ShareGPT ``conversations``) with ``tool_calls`` and ``tool`` turns are passed
through, checked by the core.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainer.conversation.model import Conversation, normalize_tools, read_calls, split_think
from trainer.conversation.tool_calls import TOOL_CALL_OPEN, calls_match, parse_tool_calls
from trainer.conversation.validate import normalize_conversation
from trainer.profiles.base import DataProfile, InvalidExampleError, answers_match, short_repr
from trainer.profiles.fields import INPUT_FIELD, PROMPT_FIELDS, TARGET_FIELDS, read_example

TOOLS_FIELD = "tools"
CALL_FIELD = "call"
CALLS_FIELD = "calls"
CONVERSATION_FIELDS = ("messages", "conversations")

ACCEPTED_FIELDS = (
    f"{' / '.join(PROMPT_FIELDS)} with {TOOLS_FIELD} (function schemas) and {CALL_FIELD} "
    f"({{'name', 'arguments'}}) or {CALLS_FIELD} (a list: parallel calls), or {' / '.join(TARGET_FIELDS)} "
    f"(a reply without a tool); or messages / conversations (with {TOOLS_FIELD})"
)

SAMPLE_FILE = Path(__file__).with_name("sample_tool_calls.jsonl")
"""The bundled sample: ~600 generated rows over get_weather, calculate, convert_units and web_search."""


def canonical_calls(calls: list[dict[str, Any]]) -> str:
    """``calls`` (canonical or ``{"name", "arguments"}``) as the JSON text answers are compared in.

    A JSON list of ``{"name", "arguments"}``, keys sorted, in the calls' order.
    """
    plain = []
    for call in calls:
        function = call.get("function", call)
        plain.append({"name": function["name"], "arguments": function.get("arguments", {})})
    return json.dumps(plain, ensure_ascii=False, sort_keys=True)


class ToolUseProfile(DataProfile):
    """Function calling: the question and the tools, then the call(s) in the template's <tool_call> form."""

    name = "tool_use"
    description = "Function calling: a question and tool schemas, then the call(s) as <tool_call> blocks"
    suits = "tool-use data: a question, tool schemas and the expected call(s)"

    def prepare_messages(self, example: Mapping[str, Any]) -> Conversation:
        """A user turn and an assistant turn making the row's call(s), with the row's tools.

        The user turn is ``prompt``, ``question`` or ``instruction`` (+ ``input``);
        ``tools`` are JSON-schema functions (with or without the
        ``{"type": "function"}`` wrapper, or a JSON string of the list); ``call``
        is one ``{"name", "arguments"}`` call and ``calls`` a list of parallel
        ones, arguments as an object or a JSON string. Without a call, the text
        ``answer`` (or ``response``, ``output``, ``completion``) is the reply: the
        model learns not to call a tool. ``messages`` / ``conversations`` rows are
        passed through.

        :raises InvalidExampleError: no question, no tools, neither a call nor an
            answer, a malformed call, or a call to a function the tools do not describe.
        """
        if not isinstance(example, Mapping):
            raise InvalidExampleError(
                f"a row must be a mapping of field names to values, got {type(example).__name__}"
            )
        prompt = _prompt(example)
        if prompt is None:
            if any(example.get(name) is not None for name in CONVERSATION_FIELDS):
                parsed = read_example(example)  # checked by the core: turn order, calls, results
                assert parsed.messages is not None
                return Conversation(parsed.messages, parsed.tools)
            raise InvalidExampleError(
                f"row lacks a question (fields present: {_present(example)}); "
                f"accepted fields: {ACCEPTED_FIELDS}"
            )
        tools = normalize_tools(example.get(TOOLS_FIELD))
        if tools is None:
            raise InvalidExampleError(
                f"row has no '{TOOLS_FIELD}' (fields present: {_present(example)}); give the function "
                f"schemas the model may call; accepted fields: {ACCEPTED_FIELDS}"
            )
        calls, field = _calls(example)
        if calls is not None:
            reply: dict[str, Any] = {"role": "assistant", "content": "", "tool_calls": calls}
        else:
            answer = _answer(example)
            if answer is None:
                raise InvalidExampleError(
                    f"row has neither a call nor an answer (fields present: {_present(example)}); give "
                    f"'{CALL_FIELD}' or '{CALLS_FIELD}', or an answer for a reply without a tool; "
                    f"accepted fields: {ACCEPTED_FIELDS}"
                )
            reply = {"role": "assistant", "content": answer}
        try:
            return normalize_conversation([{"role": "user", "content": prompt}, reply], tools)
        except InvalidExampleError as exc:  # e.g. a call to a function the tools do not describe
            raise InvalidExampleError(f"field '{field or 'answer'}': {exc}") from None

    def expected_answer(self, example: Mapping[str, Any]) -> str | None:
        """The expected calls as canonical JSON text (:func:`canonical_calls`), or a no-tool row's answer.

        :return: ``None`` for ``messages`` / ``conversations`` rows.
        """
        if _prompt(example) is None:
            self.prepare_messages(example)  # raises for a row the profile cannot read
            return None
        reply = self.prepare_messages(example).messages[-1]
        if reply.get("tool_calls"):
            return canonical_calls(reply["tool_calls"])
        return reply["content"].strip() or None

    def get_stop_sequences(self) -> list[str]:
        """None: the end-of-turn token ends generation, after the calls or the reply."""
        return []

    def format_system_prompt(self, base_prompt: str) -> str:
        """The base prompt unchanged: the chat template writes the tools block and the call format."""
        return base_prompt

    def parse_answer(self, text: str) -> str | None:
        """The calls in ``text`` as canonical JSON text (:func:`canonical_calls`).

        :return: ``None`` unless ``text`` holds one or more well-formed
            ``<tool_call>`` blocks: plain text never follows the format, and
            neither does a malformed or unclosed block. (A no-tool row's reply is
            judged by :meth:`check_answer`, which compares the text itself.)
        """
        calls = parse_tool_calls(text)
        return canonical_calls(calls) if calls else None

    def check_answer(self, text: str, expected: str) -> bool:
        """Whether ``text`` makes the expected calls, or gives a no-tool row's answer without a call.

        Calls are compared in any order, arguments as JSON (numbers by value: ``2``
        and ``2.0``); a missing, extra or misnamed call is wrong. A text answer is
        compared stripped and case-insensitively, and is wrong when the text calls a tool.
        """
        wanted = _expected_calls(expected)
        if wanted is not None:
            found = parse_tool_calls(text)
            return bool(found) and calls_match(found, wanted)
        if TOOL_CALL_OPEN in text:
            return False
        reply = split_think(text)[1].strip()
        return bool(reply) and answers_match(reply, expected)

    def rate_example(self, example: Mapping[str, Any]) -> float:
        """1.0 for a row with tools and its call(s), 0.5 for one answered without a tool, else 0."""
        if not isinstance(example, Mapping) or _prompt(example, strict=False) is None:
            return 0.0
        try:
            conversation = self.prepare_messages(example)
        except InvalidExampleError:
            return 0.0
        return 1.0 if conversation.messages[-1].get("tool_calls") else 0.5

    def default_dataset(self) -> str:
        """The bundled sample dataset, used when a run names no dataset.

        ``sample_tool_calls.jsonl``: ~600 generated rows (``scripts/make_sample.py``)
        over four tools (get_weather, calculate, convert_units, web_search), each
        row offering two of them: single calls, parallel calls, and about 10% of
        rows answered without a tool.
        """
        return str(SAMPLE_FILE)


def _prompt(example: Mapping[str, Any], strict: bool = True) -> str | None:
    """The user turn: ``prompt``, ``question`` or ``instruction``, an instruction's ``input`` appended."""
    for name in PROMPT_FIELDS:
        value = example.get(name)
        if isinstance(value, str) and value.strip():
            extra = example.get(INPUT_FIELD)
            if name == "instruction" and isinstance(extra, str) and extra.strip():
                return f"{value}\n\n{extra}"
            return value
        if value is not None and not isinstance(value, str) and strict:
            raise InvalidExampleError(
                f"field '{name}' must be text, got {type(value).__name__}: {short_repr(value)}"
            )
    return None


def _answer(example: Mapping[str, Any]) -> str | None:
    for name in TARGET_FIELDS:
        value = example.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidExampleError(
                f"field '{name}' must be text (a reply without a tool), got {type(value).__name__}: "
                f"{short_repr(value)}; give a call as '{CALL_FIELD}' or '{CALLS_FIELD}'"
            )
        if TOOL_CALL_OPEN in value:
            raise InvalidExampleError(
                f"field '{name}' holds a {TOOL_CALL_OPEN} block; give the call as '{CALL_FIELD}' "
                "({'name': ..., 'arguments': {...}}) and leave the answer for replies without a tool"
            )
        if value.strip():
            return value
    return None


def _calls(example: Mapping[str, Any]) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The row's calls in canonical form and the field they came from; ``(None, None)`` without one."""
    for field in (CALLS_FIELD, CALL_FIELD):
        value = example.get(field)
        if value is None:
            continue
        return read_calls(value, f"field '{field}'"), field
    return None, None


def _expected_calls(expected: str) -> list[dict[str, Any]] | None:
    """The calls ``expected`` lists (:func:`canonical_calls` text), or ``None`` for a text answer."""
    if not expected.lstrip().startswith("["):
        return None
    try:
        value = json.loads(expected)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(item, Mapping) and isinstance(item.get("name"), str) for item in value):
        return None
    return [{"name": item["name"], "arguments": item.get("arguments", {})} for item in value]


def _present(example: Mapping[str, Any]) -> str:
    return ", ".join(sorted(str(name) for name in example)) or "none"
