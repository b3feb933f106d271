"""The ``trainer.plugins`` entry point: registers the ``tool_use`` profile.

Keep this module light: no torch, transformers or datasets at import time.
"""

from __future__ import annotations

from collections.abc import Callable

from trainer.hookspecs import hookimpl

from trainer_profile_tools.profile import ToolUseProfile


@hookimpl
def register_profiles(register: Callable[..., None]) -> None:
    """Register the ``tool_use`` profile."""
    register(ToolUseProfile)
