"""Whether a conversation holds together: turn order, tool calls and their results.

Each message is put in canonical form first (:mod:`trainer.conversation.model`);
then the rules below hold, or :class:`~trainer.errors.InvalidExampleError` names
the message that breaks one and the fix:

- a ``system`` turn only as the first message;
- an assistant turn has content or tool calls (an empty reply would train nothing);
- a call names a function in the conversation's ``tools``, when tools are given;
- the tool messages right after an assistant turn with tool calls answer those
  calls, one message per call (matched by ``tool_call_id`` or ``name`` when
  given); a call is unanswered only on the last message, the one the model
  learns to make;
- a ``tool`` message answers a call: it follows an assistant turn with calls,
  or another tool message of the same group;
- two assistant turns in a row only with ``allow_consecutive_assistant``
  (``data.allow_consecutive_assistant``), since such data is usually a
  mistake of conversion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trainer.conversation.model import (
    Conversation,
    Message,
    call_names,
    normalize_message,
    normalize_tools,
    tool_names,
)
from trainer.errors import InvalidExampleError, short_repr


def normalize_conversation(
    messages: Any, tools: Any = None, *, allow_consecutive_assistant: bool = True
) -> Conversation:
    """``messages`` and ``tools`` in canonical form, checked against the rules above.

    :param allow_consecutive_assistant: accept two assistant turns in a row. The
        default accepts them, for checking a profile's output; the training data
        pipeline passes the run's ``data.allow_consecutive_assistant``.
    :raises InvalidExampleError: the first rule broken, naming the message.
    """
    if not isinstance(messages, list) or not messages:
        raise InvalidExampleError("messages must be a non-empty list of {'role', 'content'} dicts")
    normalized = [normalize_message(message, index) for index, message in enumerate(messages)]
    schemas = normalize_tools(tools)
    check_turns(normalized, schemas, allow_consecutive_assistant=allow_consecutive_assistant)
    return Conversation(normalized, schemas)


def check_turns(
    messages: Sequence[Message],
    tools: list[dict[str, Any]] | None = None,
    *,
    allow_consecutive_assistant: bool = True,
) -> None:
    """Check canonical ``messages`` against the module's rules.

    :raises InvalidExampleError: the first rule broken, naming the message and the fix.
    """
    known = tool_names(tools)
    pending: list[dict[str, Any]] = []  # calls of the last assistant turn not yet answered
    caller = -1
    for index, message in enumerate(messages):
        role = message["role"]
        where = f"message {index} ({role})"
        if role != "tool" and pending:
            raise InvalidExampleError(_unanswered(messages[caller], caller, pending, index, role))
        if role == "system" and index != 0:
            raise InvalidExampleError(
                f"message {index} is a system turn; only the first message may be. Merge it into the "
                "first message or make it a user turn"
            )
        if role == "assistant":
            calls = message.get("tool_calls", [])
            if not message["content"].strip() and not calls:
                raise InvalidExampleError(
                    f"{where} has neither content nor tool_calls, so it would train nothing; give the "
                    "reply's text, or its calls as tool_calls"
                )
            if (
                not allow_consecutive_assistant
                and index > 0
                and messages[index - 1]["role"] == "assistant"
            ):
                raise InvalidExampleError(
                    f"{where} follows another assistant turn; merge the two, or set "
                    "data.allow_consecutive_assistant=true to train both as they are"
                )
            for name in call_names(message):
                if tools is not None and name not in known:
                    raise InvalidExampleError(
                        f"{where} calls {name!r}, which is not in the conversation's tools "
                        f"({', '.join(known)}); add its schema to 'tools' or fix the name"
                    )
            pending, caller = list(calls), index
        elif role == "tool":
            pending = _answer(pending, message, index, messages, caller)
    # A call left unanswered at the end is the turn the model learns to make.


def _answer(
    pending: list[dict[str, Any]],
    message: Message,
    index: int,
    messages: Sequence[Message],
    caller: int,
) -> list[dict[str, Any]]:
    """The calls still pending once the tool ``message`` has answered one of them."""
    if not pending:
        previous = messages[index - 1]["role"] if index else "nothing"
        article = "an" if previous == "assistant" else "a"
        reason = (
            "every call of the assistant turn before it is already answered"
            if previous == "tool"
            else f"it follows {f'{article} {previous} turn' if index else 'nothing'}, not an assistant turn "
            "with tool_calls"
        )
        raise InvalidExampleError(
            f"message {index} (tool) answers no tool call: {reason}. Give the assistant turn before it "
            "the tool_calls it answers, or remove it"
        )
    call_id, name = message.get("tool_call_id"), message.get("name")
    ids = [call.get("id") for call in pending]
    if call_id is not None and any(ids):
        if call_id not in ids:
            raise InvalidExampleError(
                f"message {index} (tool) answers tool_call_id {short_repr(call_id)}, but message {caller} "
                f"made no pending call with that id ({', '.join(map(str, filter(None, ids)))}); fix the id"
            )
        return [call for call in pending if call.get("id") != call_id]
    if name is not None:
        names = [call["function"]["name"] for call in pending]
        if name not in names:
            raise InvalidExampleError(
                f"message {index} (tool) is the result of {name!r}, but message {caller} made no pending "
                f"call to it (pending: {', '.join(names)}); fix the name or the call"
            )
        position = names.index(name)
        return pending[:position] + pending[position + 1 :]
    return pending[1:]


def _unanswered(
    caller: Message, caller_index: int, pending: list[dict[str, Any]], index: int, role: str
) -> str:
    names = ", ".join(call["function"]["name"] for call in pending)
    made = len(caller.get("tool_calls", []))
    answered = made - len(pending)
    got = f"{answered} tool message answers" if answered == 1 else f"{answered} tool messages answer"
    return (
        f"message {caller_index} (assistant) calls {names} but the tool result is missing: "
        f"{got} its {made} call(s) before message {index} ({role}). Add a tool message with each "
        "call's result after the call"
    )
