"""trainer plugin: the ``tool_use`` data profile (function calling).

Installing the package registers the profile through the ``trainer.plugins``
entry point; nothing needs importing or configuring.
"""

from __future__ import annotations

from trainer_profile_tools.profile import SAMPLE_FILE, ToolUseProfile, canonical_calls

__all__ = ["SAMPLE_FILE", "ToolUseProfile", "canonical_calls"]
