"""Where the original single-package design kept the ``emoji_think`` profile.

The profile now ships in its own distribution, ``trainer-profile-emoji``; this
module keeps the old import path working when that package is installed.
"""

from __future__ import annotations

try:
    from trainer_profile_emoji import THINKING_MARKER, EmojiThinkProfile
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "the emoji_think profile lives in its own package now. Install it with: "
        "pip install trainer-profile-emoji"
    ) from exc

__all__ = ["THINKING_MARKER", "EmojiThinkProfile"]
