"""trainer plugin: the ``think`` data profile (native chain of thought).

Installing the package registers the profile through the ``trainer.plugins``
entry point; nothing needs importing or configuring.
"""

from __future__ import annotations

from trainer_profile_think.profile import THINK_CLOSE, THINK_OPEN, ThinkProfile

__all__ = ["THINK_CLOSE", "THINK_OPEN", "ThinkProfile"]
