"""trainer plugin: the ``regime3`` data profile.

Installing the package registers the profile through the ``trainer.plugins``
entry point; nothing needs importing or configuring.
"""

from __future__ import annotations

from trainer_profile_regime3.profile import (
    ANSWER_PREFIX,
    REASONING_INSTRUCTION,
    STEP_INSTRUCTION,
    STOP_SEQUENCES,
    Regime3Profile,
)

__all__ = ["ANSWER_PREFIX", "REASONING_INSTRUCTION", "STEP_INSTRUCTION", "STOP_SEQUENCES", "Regime3Profile"]
