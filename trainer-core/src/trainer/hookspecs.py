"""The plugin contract: every hook a trainer plugin may implement.

A plugin is a module (or object) whose functions carry ``@trainer.hookimpl`` and
whose names match the specs below. It is found through the ``trainer.plugins``
entry-point group::

    [project.entry-points."trainer.plugins"]
    regime3 = "trainer_profile_regime3.plugin"

Every hook receives a ``register`` callback and calls it once per thing it
contributes. An implementation may accept fewer arguments than its spec: new
arguments can be added to a spec without breaking existing plugins.

``PLUGIN_API_VERSION`` covers these hooks and the classes plugins register
(:class:`trainer.profiles.base.DataProfile`). It changes its major number only
when a hook loses an argument or something changes meaning; adding hooks,
arguments or optional methods raises the minor number (1.1 added the optional
``DataProfile`` methods for composition and ``trainer suggest-profile``; 1.2
structured conversations: ``prepare_messages`` may return tool calls, tool turns
and reasoning, or a :class:`trainer.conversation.Conversation` with tools, and
the optional ``format_row_system_prompt`` and ``default_dataset``; 1.3 lets a
profile that transforms be written before a composition's base, as in
``think+tool_use``, and adds ``trainer.profiles.fields.read_reasoning``). The trainer-core version range a
plugin package declares is unchanged by a minor raise, so packages built for an
earlier 1.x keep loading.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "trainer"
PLUGIN_API_VERSION = "1.3"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_profiles(register: Callable[..., None]) -> None:
    """Contribute data profiles.

    Called once, the first time anything asks for the installed profiles
    (``trainer profiles``, ``trainer preview``, a training run).

    :param register: call ``register(ProfileClass)`` for each profile, where
        ``ProfileClass`` is a subclass of :class:`trainer.profiles.base.DataProfile`
        with a unique ``name``. ``register(ProfileClass, name="other")`` registers
        it under another name. The class is instantiated for each use with the
        run's ``profile.options`` as keyword arguments.
    :return: nothing; return values are ignored.
    """


@hookspec
def register_callbacks(register: Callable[..., None]) -> None:
    """Contribute training callbacks, attached to every training run.

    Called once per run, while the transformers ``Trainer`` is being built.

    :param register: call ``register(factory)`` for each callback. ``factory`` is
        a ``transformers.TrainerCallback`` subclass or any callable that takes no
        argument and returns a ``TrainerCallback`` instance. Import transformers
        inside the factory, not at module level, so ``trainer --help`` stays fast.
    :return: nothing; return values are ignored.
    """


@hookspec
def register_status_sinks(register: Callable[..., None]) -> None:
    """Contribute status sinks: receivers of a run's progress events.

    Called once per run, before training starts.

    :param register: call ``register(factory)`` for each sink. ``factory`` is
        called as ``factory(run)`` with a :class:`trainer.monitoring.RunContext`
        (output directory, status file path, run config) and returns an object
        with ``emit(event: str, state: dict) -> None`` and ``close() -> None``
        (see :class:`trainer.monitoring.StatusSink`). It may return ``None`` to
        stay out of a run.
    :return: nothing; return values are ignored.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``trainer`` command line.

    Called when the command line starts.

    :param cli: the root ``click.Group``; decorate functions with
        ``@cli.command()`` or call ``cli.add_command(...)``. A plugin command must
        not shadow a built-in one.
    :return: nothing; return values are ignored.
    """
