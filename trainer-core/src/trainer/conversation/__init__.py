"""The conversation model: messages with tools, tool calls, tool results and reasoning.

This layer sits below the profiles and the data pipeline: profiles may return a
:class:`Conversation`, the data pipeline renders it with the chat template,
previews and ``trainer generate`` offer its tools. See
:mod:`trainer.conversation.model` for the canonical form,
:mod:`trainer.conversation.validate` for the rules a conversation must keep,
:mod:`trainer.conversation.layouts` for the dataset layouts read without a
custom profile, and :mod:`trainer.conversation.tool_calls` for reading calls
back from generated text.
"""

from __future__ import annotations

from trainer.conversation.layouts import read_conversation, sharegpt_messages
from trainer.conversation.model import (
    ROLES,
    Conversation,
    Message,
    normalize_message,
    normalize_tool_call,
    normalize_tools,
)
from trainer.conversation.tool_calls import calls_match, parse_tool_calls
from trainer.conversation.validate import check_turns, normalize_conversation
from trainer.errors import InvalidExampleError

__all__ = [
    "ROLES",
    "Conversation",
    "InvalidExampleError",
    "Message",
    "calls_match",
    "check_turns",
    "normalize_conversation",
    "normalize_message",
    "normalize_tool_call",
    "normalize_tools",
    "parse_tool_calls",
    "read_conversation",
    "sharegpt_messages",
]
