"""trainer plugin: the ``emoji_think`` data profile.

Installing the package registers the profile through the ``trainer.plugins``
entry point; nothing needs importing or configuring.
"""

from __future__ import annotations

from trainer_profile_emoji.profile import (
    ANSWER_PREFIX,
    MARKER_INSTRUCTION,
    STOP_SEQUENCES,
    THINKING_INSTRUCTION,
    THINKING_MARKER,
    EmojiThinkProfile,
)

__all__ = [
    "ANSWER_PREFIX",
    "MARKER_INSTRUCTION",
    "STOP_SEQUENCES",
    "THINKING_INSTRUCTION",
    "THINKING_MARKER",
    "EmojiThinkProfile",
]
