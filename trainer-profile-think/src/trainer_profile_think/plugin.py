"""The ``trainer.plugins`` entry point: registers the ``think`` profile.

Keep this module light: no torch, transformers or datasets at import time.
"""

from __future__ import annotations

from collections.abc import Callable

from trainer.hookspecs import hookimpl

from trainer_profile_think.profile import ThinkProfile


@hookimpl
def register_profiles(register: Callable[..., None]) -> None:
    """Register the ``think`` profile."""
    register(ThinkProfile)
