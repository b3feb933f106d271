"""The installed data profiles.

Profiles come from plugins through the ``register_profiles`` hook, the core's
``chat`` profile included. :func:`get_profile` returns one by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainer.errors import PluginError, TrainerError
from trainer.plugins import BLOCKED, ENV_BLOCK, FAILED, NOT_ALLOWED, PluginInfo, get_plugins
from trainer.profiles.base import DataProfile, InvalidExampleError

__all__ = [
    "DataProfile",
    "InvalidExampleError",
    "ProfileEntry",
    "get_profile",
    "installed_profiles",
    "list_profiles",
]

PROFILE_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")

PROJECT_PACKAGES = {"emoji_think": "trainer-profile-emoji", "tool_use": "trainer-profile-tools"}
"""The project's own profiles whose distribution is not ``trainer-profile-`` plus the name."""


@dataclass(frozen=True)
class ProfileEntry:
    """One installed profile and the plugin that registered it."""

    name: str
    profile_class: type[DataProfile]
    plugin: PluginInfo

    @property
    def description(self) -> str:
        """The profile's one-line description."""
        doc = (self.profile_class.__doc__ or "").strip().splitlines()
        return self.profile_class.description or (doc[0] if doc else "")


def installed_profiles() -> dict[str, ProfileEntry]:
    """Every installed profile by name.

    :raises PluginError: two plugins register the same profile name.
    """
    plugins = get_plugins()
    return plugins.cached("profiles", _build_registry)


def list_profiles() -> list[ProfileEntry]:
    """Installed profiles, sorted by name."""
    return sorted(installed_profiles().values(), key=lambda entry: entry.name)


def get_profile(name: str, options: Mapping[str, Any] | None = None) -> DataProfile:
    """The installed profile called ``name``, built with ``options``.

    ``name`` may join several installed profiles with ``+`` (``emoji_think+regime3``):
    the result applies them in turn, as :mod:`trainer.profiles.compose` describes,
    and ``options`` is then keyed by profile name.

    A single profile takes ``options`` flat (``{exclamations: 2}``) or keyed by
    its name like a composition (``{shout: {exclamations: 2}}``): a mapping whose
    only key is the profile's name and whose value is a mapping is read as the
    keyed form. So an option named like the profile itself, with a mapping value,
    must be written keyed (``{shout: {shout: {...}}}``).

    :raises TrainerError: no installed profile has that name (the message lists
        the installed ones and the package to install), the options are
        rejected, or a composition is incoherent.
    """
    from trainer.profiles.compose import compose, split_name, split_options

    parts = split_name(name)
    if len(parts) == 1:
        if options is not None and len(options) == 1 and isinstance(options.get(name), Mapping):
            options = options[name]  # the keyed form, as a composition takes it
        return _build_one(name, options)
    per_part = split_options(name, parts, options)
    return compose(
        [_build_one(part, part_options) for part, part_options in zip(parts, per_part, strict=True)]
    )


def _build_one(name: str, options: Mapping[str, Any] | None) -> DataProfile:
    profiles = installed_profiles()
    entry = profiles.get(name)
    if entry is None:
        raise TrainerError(_unknown_profile_message(name, sorted(profiles)))
    try:
        return entry.profile_class(**dict(options or {}))
    except TypeError as exc:
        raise TrainerError(
            f"profile '{name}' rejected profile.options {dict(options or {})!r}: {exc}. "
            f"See the profile's documentation for its options."
        ) from None


def _build_registry() -> dict[str, ProfileEntry]:
    plugins = get_plugins()
    registry: dict[str, ProfileEntry] = {}
    for registration in plugins.collect("register_profiles"):
        cls = registration.obj
        if not (isinstance(cls, type) and issubclass(cls, DataProfile)):
            plugins.reject(
                registration,
                f"register_profiles registered {cls!r}; register a DataProfile subclass",
            )
            continue
        name = registration.options.get("name") or cls.name
        if not isinstance(name, str) or not PROFILE_NAME.match(name):
            plugins.reject(
                registration,
                f"profile class {cls.__name__} has name {name!r}; use lowercase letters, digits, "
                "'_' or '-', starting with a letter",
            )
            continue
        if cls.__abstractmethods__:
            plugins.reject(
                registration,
                f"profile '{name}' ({cls.__name__}) does not implement "
                f"{', '.join(sorted(cls.__abstractmethods__))}",
            )
            continue
        if name in registry:
            first = registry[name].plugin
            second = registration.plugin
            # Suggest disabling the third-party one when the other is built in.
            unwanted = second if not second.builtin else first
            handle = unwanted.distribution or unwanted.name
            raise PluginError(
                f"profile '{name}' is registered by two plugins: {first.label} and "
                f"{second.label}. Disable one with {ENV_BLOCK}={handle} "
                f"(or trainer --block-plugin {handle}), or uninstall it"
            )
        registry[name] = ProfileEntry(name, cls, registration.plugin)
    return registry


def _unknown_profile_message(name: str, installed: list[str]) -> str:
    plugins = get_plugins()
    package = PROJECT_PACKAGES.get(name, f"trainer-profile-{name.replace('_', '-')}")
    listed = ", ".join(installed) or "none"
    source = plugins.find(name) or plugins.find(package)
    if source is not None and source.status == FAILED:
        return (
            f"profile '{name}' is unavailable: plugin {source.label} failed to load "
            f"({source.error}). Reinstall or fix {source.distribution or source.name}"
        )
    if source is not None and source.status == BLOCKED:
        return (
            f"profile '{name}' is unavailable: plugin {source.label} is blocked. Remove it from "
            f"{ENV_BLOCK} or --block-plugin"
        )
    if source is not None and source.status == NOT_ALLOWED:
        return (
            f"profile '{name}' is unavailable: plugin {source.label} is not in TRAINER_PLUGINS. "
            "Add it there or unset TRAINER_PLUGINS"
        )
    close = _close_profile(name, installed)
    if close is not None:
        message = f"profile '{name}' is not installed; did you mean '{close}'? (installed: {listed})"
    else:
        message = (
            f"profile '{name}' is not installed (installed: {listed}). Install it with: pip install {package}"
        )
    failed = plugins.failed()
    if failed:
        names = ", ".join(info.distribution or info.name for info in failed)
        message += f" ({len(failed)} plugin(s) failed to load: {names}; see trainer plugins)"
    return message


def _close_profile(name: str, installed: list[str]) -> str | None:
    """The installed profile ``name`` most likely misspells (``-`` for ``_`` too), or ``None``."""
    import difflib

    wanted = name.replace("-", "_").lower()
    by_key = {profile.replace("-", "_").lower(): profile for profile in installed}
    if wanted in by_key:
        return by_key[wanted]
    guesses = difflib.get_close_matches(wanted, list(by_key), n=1, cutoff=0.75)
    return by_key[guesses[0]] if guesses else None
