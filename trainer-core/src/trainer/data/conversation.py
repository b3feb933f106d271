"""One row through a profile: the complete conversation a model trains on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainer.conversation.model import Conversation, Message
from trainer.conversation.validate import check_turns
from trainer.profiles.base import DataProfile, as_conversation, check_stop_sequences


def build_conversation(
    profile: DataProfile,
    example: Mapping[str, Any],
    base_system_prompt: str,
    stop_sequences: list[str],
    *,
    allow_consecutive_assistant: bool = False,
    prepared: Conversation | None = None,
) -> Conversation:
    """The profile's conversation for ``example``, with the system turn filled in, and its tools.

    The system turn is ``profile.format_row_system_prompt(base, example)``
    (by default ``format_system_prompt(base)``), where ``base`` is the system
    turn ``prepare_messages`` returned (the row's own) when there is one, else
    ``base_system_prompt`` (the run's ``profile.system_prompt``). So a row's own
    system prompt replaces the run's, as in Axolotl, and the profile still adds
    the instruction its targets follow. An empty result leaves the conversation
    without a system turn.

    :param allow_consecutive_assistant: accept two assistant turns in a row
        (``data.allow_consecutive_assistant``).
    :param prepared: ``as_conversation(profile.prepare_messages(example))`` when
        the caller already has it.
    :raises InvalidExampleError: the profile cannot render the row, its output
        breaks a conversation rule, or a stop sequence occurs inside an
        assistant turn.
    """
    conversation = prepared if prepared is not None else as_conversation(profile.prepare_messages(example))
    messages = conversation.messages
    base = base_system_prompt
    if messages[0]["role"] == "system":
        base = messages[0]["content"]
        messages = messages[1:]
    system = profile.format_row_system_prompt(base, example)
    turns = ([{"role": "system", "content": system}] if system else []) + [dict(m) for m in messages]
    if not allow_consecutive_assistant:
        check_turns(turns, conversation.tools, allow_consecutive_assistant=False)
    check_stop_sequences(turns, stop_sequences)
    return Conversation(turns, conversation.tools)


def build_messages(
    profile: DataProfile,
    example: Mapping[str, Any],
    base_system_prompt: str,
    stop_sequences: list[str],
) -> list[Message]:
    """The messages of :func:`build_conversation` (without its tools)."""
    return build_conversation(
        profile, example, base_system_prompt, stop_sequences, allow_consecutive_assistant=True
    ).messages


def effective_stop_sequences(profile: DataProfile, override: list[str] | None) -> list[str]:
    """The run's stop sequences: the config's override, else the profile's own."""
    return list(override) if override is not None else list(profile.get_stop_sequences())
