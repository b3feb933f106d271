"""The ``trainer.plugins`` entry point: registers the ``regime3`` profile.

Keep this module light: no torch, transformers or datasets at import time.
"""

from __future__ import annotations

from collections.abc import Callable

from trainer.hookspecs import hookimpl

from trainer_profile_regime3.profile import Regime3Profile


@hookimpl
def register_profiles(register: Callable[..., None]) -> None:
    """Register the ``regime3`` profile."""
    register(Regime3Profile)
