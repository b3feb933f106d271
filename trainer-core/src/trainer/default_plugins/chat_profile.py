"""Built-in plugin: the pass-through ``chat`` profile."""

from __future__ import annotations

from collections.abc import Callable

from trainer.hookspecs import hookimpl
from trainer.profiles.chat import ChatProfile


@hookimpl
def register_profiles(register: Callable[..., None]) -> None:
    """Register the ``chat`` profile."""
    register(ChatProfile)
