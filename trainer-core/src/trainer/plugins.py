"""Finding, loading and calling plugins.

Every plugin, the core's own included, is an entry point in the
``trainer.plugins`` group. Loading is lazy (the first time something asks) and
forgiving: a plugin that fails to import, has an invalid hook implementation or
raises inside a hook is recorded as failed and left out, so one broken package
never breaks the command line. ``TRAINER_STRICT_PLUGINS=1`` makes any such
failure fatal instead.

Controls, read when plugins are first loaded:

- ``TRAINER_PLUGINS=a,b`` loads only the listed third-party plugins (entry-point
  or distribution names); set but empty, it loads none. The core's built-in
  plugins are always loaded.
- ``TRAINER_BLOCK_PLUGINS=a,b`` (or ``trainer --block-plugin a``) never imports
  the listed plugins, built-in ones included.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from trainer import hookspecs
from trainer.errors import PluginError

ENTRY_POINT_GROUP = "trainer.plugins"
CORE_DISTRIBUTION = "trainer-core"
ENV_ALLOW = "TRAINER_PLUGINS"
ENV_BLOCK = "TRAINER_BLOCK_PLUGINS"
ENV_STRICT = "TRAINER_STRICT_PLUGINS"

LOADED, FAILED, BLOCKED, NOT_ALLOWED = "loaded", "failed", "blocked", "not allowed"


@dataclass
class PluginInfo:
    """What is known about one plugin entry point, loaded or not."""

    name: str
    """The entry-point name."""
    module: str
    """The module the entry point names."""
    distribution: str | None
    """The distribution (pip package) that declares it."""
    version: str | None
    """That distribution's version."""
    status: str = NOT_ALLOWED
    """One of ``loaded``, ``failed``, ``blocked``, ``not allowed``."""
    error: str | None = None
    """Why it failed, for ``failed`` plugins."""
    hooks: list[str] = field(default_factory=list)
    """The hooks it implements, for loaded plugins."""

    @property
    def builtin(self) -> bool:
        """True for the core's own plugins."""
        return _normalize(self.distribution or "") == CORE_DISTRIBUTION

    @property
    def label(self) -> str:
        """``name (distribution version)``, for messages."""
        origin = " ".join(part for part in (self.distribution, self.version) if part)
        return f"{self.name} ({origin})" if origin else self.name

    def matches(self, name: str) -> bool:
        """True when ``name`` is this plugin's entry-point or distribution name."""
        wanted = _normalize(name)
        return wanted in {_normalize(self.name), _normalize(self.distribution or "")}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "status": self.status,
            "hooks": self.hooks,
            "error": self.error,
        }


@dataclass(frozen=True)
class Registration:
    """One thing a plugin passed to a hook's ``register`` callback."""

    plugin: PluginInfo
    obj: Any
    options: Mapping[str, Any]


class Plugins:
    """The installed plugins, loaded once, and the results of their hooks."""

    def __init__(
        self,
        blocked: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.blocked = set(_split(env.get(ENV_BLOCK, ""))) | set(blocked)
        self.allowed = None if env.get(ENV_ALLOW) is None else set(_split(env[ENV_ALLOW]))
        self.strict = env.get(ENV_STRICT, "").strip().lower() in {"1", "true", "yes", "on"}
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.infos: list[PluginInfo] = []
        self._by_registered_name: dict[str, PluginInfo] = {}
        self._cache: dict[str, Any] = {}
        self._load_all()

    # -- loading ---------------------------------------------------------------

    def _load_all(self) -> None:
        for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=_builtin_first):
            info = _describe(entry_point)
            self.infos.append(info)
            if any(info.matches(name) for name in self.blocked):
                info.status = BLOCKED
            elif (
                not info.builtin
                and self.allowed is not None
                and not any(info.matches(name) for name in self.allowed)
            ):
                info.status = NOT_ALLOWED
            else:
                self._load_one(entry_point, info)
        if self.strict:
            self.raise_for_failures()

    def _load_one(self, entry_point: EntryPoint, info: PluginInfo) -> None:
        mismatch = _core_mismatch(entry_point)
        if mismatch:
            self._fail(info, mismatch)  # not imported: code written for another core could do anything
            return
        try:
            plugin = entry_point.load()
        except Exception as exc:  # any import-time error is the plugin's, not ours
            self._fail(info, f"import failed: {_describe_exception(exc)}")
            return
        name = info.name if self.manager.get_plugin(info.name) is None else info.label
        try:
            self.manager.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            self._fail(info, f"invalid plugin: {exc}")
            return
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as exc:
            self.manager.unregister(name=name)
            self._fail(info, f"invalid plugin: {exc}")
            return
        info.status = LOADED
        info.hooks = sorted(caller.name for caller in (self.manager.get_hookcallers(plugin) or []))
        self._by_registered_name[name] = info

    def _fail(self, info: PluginInfo, error: str) -> None:
        info.status = FAILED
        info.error = error

    def raise_for_failures(self) -> None:
        """Raise :class:`PluginError` naming every failed plugin, if any."""
        failed = self.failed()
        if failed:
            details = "; ".join(f"{info.label}: {info.error}" for info in failed)
            raise PluginError(f"{len(failed)} plugin(s) failed to load ({ENV_STRICT} is set): {details}")

    # -- queries ----------------------------------------------------------------

    def failed(self) -> list[PluginInfo]:
        """Plugins that failed to import, validate or run a hook."""
        return [info for info in self.infos if info.status == FAILED]

    def find(self, name: str) -> PluginInfo | None:
        """The plugin whose entry-point or distribution name is ``name``."""
        for info in self.infos:
            if info.matches(name):
                return info
        return None

    def collect(self, hook_name: str, **kwargs: Any) -> list[Registration]:
        """Call a ``register_*`` hook on every loaded plugin; return what they registered.

        Each plugin is called on its own: one that raises is marked failed and the
        others still contribute. Results are cached per hook.
        """
        if hook_name in self._cache:
            return list(self._cache[hook_name])
        registrations: list[Registration] = []
        caller = getattr(self.manager.hook, hook_name)
        # get_hookimpls() lists plugins in registration order: built-ins first.
        for impl in caller.get_hookimpls():
            info = self._by_registered_name[impl.plugin_name]
            if info.status != LOADED:
                continue
            found: list[Registration] = []

            def register(
                obj: Any, _found: list[Registration] = found, _info: PluginInfo = info, **options: Any
            ) -> None:
                _found.append(Registration(_info, obj, options))

            arguments = {"register": register, **kwargs}
            try:
                impl.function(*(arguments[name] for name in impl.argnames))
            except Exception as exc:  # a plugin's bug must not take the others down
                self._fail(info, f"hook {hook_name} raised {_describe_exception(exc)}")
                if self.strict:
                    raise PluginError(f"plugin {info.label}: {info.error}") from exc
                continue
            registrations.extend(found)
        self._cache[hook_name] = registrations
        return list(registrations)

    def reject(self, registration: Registration, problem: str) -> None:
        """Mark the plugin behind ``registration`` failed because of ``problem``."""
        self._fail(registration.plugin, problem)
        if self.strict:
            raise PluginError(f"plugin {registration.plugin.label}: {problem}")

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """Compute a value from the plugins once (the profile registry, for one)."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]


_current: Plugins | None = None
_extra_blocked: set[str] = set()


def get_plugins() -> Plugins:
    """The process-wide :class:`Plugins`, loaded on first use."""
    global _current
    if _current is None:
        _current = Plugins(blocked=_extra_blocked)
    return _current


def block_plugins(names: Iterable[str]) -> None:
    """Block plugins by entry-point or distribution name before they are loaded."""
    names = set(names)
    if not names:
        return
    _extra_blocked.update(names)
    reset()


def reset() -> None:
    """Forget loaded plugins, so the next :func:`get_plugins` looks again."""
    global _current
    _current = None


def _describe(entry_point: EntryPoint) -> PluginInfo:
    dist = getattr(entry_point, "dist", None)
    return PluginInfo(
        name=entry_point.name,
        module=entry_point.value,
        distribution=dist.name if dist is not None else None,
        version=dist.version if dist is not None else None,
    )


def _core_mismatch(entry_point: EntryPoint) -> str | None:
    """Why the plugin's distribution cannot work with the installed trainer-core, if it cannot.

    A distribution states the trainer-core versions it was built for in its
    dependencies; pip normally enforces that, but ``--no-deps`` installs and
    hand-copied packages do not.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    from trainer import __version__

    dist = getattr(entry_point, "dist", None)
    if dist is None or _normalize(dist.name) == CORE_DISTRIBUTION:
        return None
    for line in dist.requires or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if _normalize(requirement.name) != CORE_DISTRIBUTION or requirement.marker is not None:
            continue
        if not requirement.specifier.contains(__version__, prereleases=True):
            return (
                f"built for trainer-core{requirement.specifier}, but trainer-core {__version__} is "
                f"installed. Install a {dist.name} release made for trainer-core {__version__}, or "
                f"pip install 'trainer-core{requirement.specifier}'"
            )
    return None


def _builtin_first(entry_point: EntryPoint) -> tuple[bool, str, str]:
    dist = getattr(entry_point, "dist", None)
    dist_name = _normalize(dist.name) if dist is not None else ""
    return (dist_name != CORE_DISTRIBUTION, dist_name, entry_point.name)


def _describe_exception(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
