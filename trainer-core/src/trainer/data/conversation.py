"""One row through a profile: the complete conversation a model trains on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainer.profiles.base import (
    DataProfile,
    Message,
    check_stop_sequences,
    validate_messages,
)


def build_messages(
    profile: DataProfile,
    example: Mapping[str, Any],
    base_system_prompt: str,
    stop_sequences: list[str],
) -> list[Message]:
    """The profile's messages for ``example``, with the system turn filled in.

    The system turn is ``profile.format_system_prompt(base)``, where ``base`` is
    the row's own system message when it has one, else ``base_system_prompt``.
    An empty result leaves the conversation without a system turn.

    :raises InvalidExampleError: the profile cannot render the row, its output
        is malformed, or a stop sequence occurs inside an assistant turn.
    """
    messages = validate_messages(profile.prepare_messages(example))
    base = base_system_prompt
    if messages[0]["role"] == "system":
        base = messages[0]["content"]
        messages = messages[1:]
    system = profile.format_system_prompt(base)
    conversation = ([{"role": "system", "content": system}] if system else []) + [
        dict(message) for message in messages
    ]
    check_stop_sequences(conversation, stop_sequences)
    return conversation


def effective_stop_sequences(profile: DataProfile, override: list[str] | None) -> list[str]:
    """The run's stop sequences: the config's override, else the profile's own."""
    return list(override) if override is not None else list(profile.get_stop_sequences())
