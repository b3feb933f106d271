"""Turning plain data into config dataclasses, collecting every problem on the way.

Nothing here knows the trainer's sections: it reads the type hints of whatever
dataclasses it is given. :mod:`trainer.config.schema` declares the sections and
their value checks; this module checks keys and types, and reads command-line
text into the declared types.

A section opts in to two hooks, both optional:

- ``__post_init__`` may rewrite accepted spellings to the canonical value (it
  runs before the types are checked, so it must leave values it does not
  recognise alone);
- ``_problems()`` returns value problems (ranges, choices) as ``"field: ..."``
  lines; it runs once every field holds a value of its declared type.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import reprlib
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from trainer.errors import TrainerError

T = TypeVar("T")

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NULL = ("null", "none", "~")


class ConfigError(TrainerError):
    """A config that cannot be used: a bad file, unknown keys, wrong types or values.

    Every problem found in one pass is reported together.

    :ivar source: where the config came from (a file path, ``command line``, ...).
    :ivar problems: one line per problem, each starting with the dotted path it
        concerns (``hyperparams.batch_size: expected an integer, got 'eight' (str)``).
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        # A key or value may hold line breaks; each problem stays on its own line.
        self.problems = [_one_line(problem) for problem in problems]
        super().__init__(self._message())

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, list[str]]]:
        # Exceptions pickle their message only; workers (datasets' num_proc) need both fields.
        return type(self), (self.source, self.problems)

    def _message(self) -> str:
        if len(self.problems) == 1:
            return f"{self.source}: {self.problems[0]}"
        lines = [f"{self.source}: {len(self.problems)} problems"]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


class FieldTypeError(ValueError):
    """A value that does not fit a field's type; callers turn it into a problem line."""


def build(cls: type[T], data: Mapping[str, Any], problems: list[str]) -> T:
    """A ``cls`` instance from ``data``, with every problem appended to ``problems``.

    Keys missing from ``data`` keep their defaults. Nested dataclass fields
    accept a mapping, an instance or None (all defaults). A field with a wrong
    type keeps its default (and the problem is recorded), so value checks still
    run on the rest.
    Never raises for bad data; the caller raises :class:`ConfigError` when
    ``problems`` is not empty.
    """
    return _build(cls, data, problems, prefix="", known=known_paths(cls))


def _build(
    cls: type[T], data: Mapping[str, Any], problems: list[str], prefix: str, known: Sequence[str]
) -> T:
    hints = field_types(cls)
    for key in data:
        if key not in hints:
            problems.append(unknown_key_problem(f"{prefix}{key}", known))

    values: dict[str, Any] = {}
    for name, hint in hints.items():
        if name not in data:
            continue
        path, raw = f"{prefix}{name}", data[name]
        if is_section(hint):
            if raw is None:  # a YAML section whose keys are all commented out
                raw = {}
            elif isinstance(raw, hint):
                raw = field_values(raw)
            if isinstance(raw, Mapping):
                values[name] = _build(hint, raw, problems, f"{path}.", known)
            else:
                problems.append(f"{path}: expected a mapping of {name} settings, got {show(raw)}")
        elif is_section_list(hint):
            values[name] = _build_list(get_args(hint)[0], raw, problems, path)
        else:
            values[name] = raw

    instance = cls(**values)
    defaults = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for name, raw in values.items():
        if is_section(hints[name]) or is_section_list(hints[name]):
            continue
        try:
            setattr(instance, name, coerce(getattr(instance, name), hints[name]))
        except FieldTypeError:
            problems.append(f"{prefix}{name}: expected {describe(hints[name])}, got {show(raw)}")
            setattr(instance, name, _default(defaults[name]))
    check = getattr(instance, "_problems", None)
    if check is not None:
        problems.extend(f"{prefix}{problem}" for problem in check())
    return instance


def _build_list(item: type[T], raw: Any, problems: list[str], path: str) -> list[T]:
    """A list of ``item`` sections from a list of mappings (or instances); problems as ``path[i].key``."""
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        problems.append(f"{path}: expected a list of mappings, got {show(raw)}")
        return []
    built = []
    item_known = known_paths(item)
    # A YAML alias repeats one mapping without repeating its text: each object is checked once, so
    # a few lines of `[*a, *a, ...]` cost no more than one item (its problems are named at its first
    # index), and its later places get copies of what it built.
    seen: dict[int, T] = {}
    for index, entry in enumerate(raw):
        prefix = f"{path}[{index}]"
        if id(entry) in seen:
            built.append(_copy_section(seen[id(entry)]))
            continue
        values = field_values(entry) if isinstance(entry, item) else entry
        if not isinstance(values, Mapping):
            problems.append(f"{prefix}: expected a mapping, got {show(values)}")
            continue
        known = [f"{prefix}.{sub}" for sub in item_known]
        seen[id(entry)] = _build(item, values, problems, f"{prefix}.", known)
        built.append(seen[id(entry)])
    return built


def _copy_section(section: T) -> T:
    """A copy of ``section`` that shares no list or dict with it; quicker than ``copy.deepcopy``."""
    clone = copy.copy(section)
    for name, value in field_values(section).items():
        if isinstance(value, (list, dict)):
            setattr(clone, name, copy.deepcopy(value))
    return clone


def coerce(value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` names, accepting only lossless conversions.

    An int is a fine float, and so is a numeric string (PyYAML reads ``1e-4``
    as a string); a bool is never an int or a float.

    :raises FieldTypeError: the value does not fit.
    """
    hint, optional = _unwrap_optional(hint)
    if value is None:
        if optional or hint is Any:
            return None
        raise FieldTypeError
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool) and _writable(value):
            return value
    elif hint is float:
        try:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str):
                return float(value.strip())
        except (ValueError, OverflowError):  # not a number, or an int too large for a float
            pass
    elif hint is str:
        if isinstance(value, str):
            return value
    elif get_origin(hint) is list:
        if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
            return list(value)
    elif get_origin(hint) is dict:
        if isinstance(value, Mapping) and all(isinstance(key, str) for key in value) and _plain(value):
            return dict(value)
    else:
        raise TypeError(f"config fields of type {hint!r} are not supported")
    raise FieldTypeError


def parse_text(text: str, hint: Any) -> Any:
    """Command-line text read into the type ``hint`` names.

    ``null``/``none`` is None for optional fields; bools accept
    true/false/yes/no/on/off/1/0; lists accept ``a,b`` or a YAML list ``[a, b]``;
    mappings and untyped values are read as YAML (which includes JSON).

    :raises FieldTypeError: the text does not read as that type.
    """
    hint, optional = _unwrap_optional(hint)
    stripped = text.strip()
    if optional and stripped.lower() in _NULL:
        return None
    if hint is str:
        return text
    if hint is bool:
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        raise FieldTypeError
    if hint is int:
        try:
            return int(stripped)
        except ValueError:
            raise FieldTypeError from None
    if hint is float:
        return coerce(stripped, float)
    if get_origin(hint) is list and not is_section_list(hint) and not stripped.startswith("["):
        return [item.strip() for item in stripped.split(",") if item.strip()]
    try:
        value = yaml.safe_load(stripped)
    except (yaml.YAMLError, ValueError, RecursionError):  # bad syntax, a bad date, nested too deep
        raise FieldTypeError from None
    if exceeds(value, MAX_VALUES):
        raise FieldTypeError
    return value


MAX_VALUES = 100_000
"""The most values (mappings, lists and scalars) a config may hold, YAML aliases counted each time
they are used, so a few lines of aliases cannot expand into billions of values."""


def exceeds(data: Any, limit: int) -> bool:
    """True when ``data`` holds more than ``limit`` values, counting shared ones each time.

    A structure that contains itself (a YAML alias inside its own anchor) exceeds any limit.
    """
    pending, count = [data], 0
    while pending:
        value = pending.pop()
        count += 1
        if count > limit:
            return True
        if isinstance(value, Mapping):
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
    return False


def describe(hint: Any) -> str:
    """The type ``hint`` names, in words: ``an integer``, ``a list of strings or null``."""
    base, optional = _unwrap_optional(hint)
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if base in words:
        text = words[base]
    elif is_section_list(base):
        text = "a list of mappings"
    elif get_origin(base) is list:
        text = "a list of strings"
    elif get_origin(base) is dict:
        text = "a mapping of names to values"
    else:
        text = "any value"
    return f"{text} or null" if optional else text


def show(value: Any) -> str:
    """A value as problem lines quote it: ``'eight' (str)``, shortened when long.

    Only the start of a long or deeply nested value is looked at, so quoting a
    value that YAML aliases expand to billions of items, or one that contains
    itself, is instant.
    """
    try:
        text = repr(value[:61]) if isinstance(value, str) else _SHORT_REPR.repr(value)
    except ValueError:  # an int of more digits than Python converts to text
        text = f"<{type(value).__name__} too long to show>"
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


_SHORT_REPR = reprlib.Repr()
# Enough to fill the 60 characters show() keeps; set one by one, as Python 3.10 wants.
_SHORT_REPR.maxlevel = 3
for _name in ("maxtuple", "maxlist", "maxarray", "maxdict", "maxset", "maxfrozenset", "maxdeque"):
    setattr(_SHORT_REPR, _name, 12)
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 80
_SHORT_REPR.maxlong = 200


def unknown_key_problem(path: str, known_paths: Iterable[str]) -> str:
    """``path: unknown key; did you mean 'x.y'?`` (``unknown section`` at the top level).

    The guess is, in order: the same field name in another section (a key put
    in the wrong place), the closest name in the same section, the closest
    dotted path anywhere (a misspelled section).
    """
    parent, _, name = path.rpartition(".")
    known = [p for p in known_paths if p != path and not path.startswith(f"{p}.")]
    siblings = {p.rpartition(".")[2]: p for p in known if p.rpartition(".")[0] == parent}
    guesses = (
        [p for p in known if p.rpartition(".")[2] == name]
        or [siblings[close] for close in _closest(name, tuple(siblings))]
        or difflib.get_close_matches(path, known, n=1)
    )
    kind = "unknown key" if parent else "unknown section"
    if guesses:
        return f"{path}: {kind}; did you mean '{guesses[0]}'?"
    return f"{path}: {kind} (known: {', '.join(siblings)})" if siblings else f"{path}: {kind}"


@functools.lru_cache(maxsize=1024)
def _closest(name: str, names: tuple[str, ...]) -> list[str]:
    # Cached: every item of a list of sections misspells its keys against the same names.
    return difflib.get_close_matches(name, names, n=1)


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or ``""`` when none is close."""
    guesses = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{guesses[0]}'?" if guesses else ""


def field_types(cls: type) -> dict[str, Any]:
    """Each field of the dataclass ``cls`` and its resolved type hint, in order."""
    return dict(_field_types(cls))


def leaf_types(cls: type) -> dict[str, Any]:
    """Every non-dataclass field under ``cls``, by dotted path (``model.lora.r``).

    A list of sections (``data.mixture``) is one field: its items have no dotted paths.
    """
    return dict(_leaf_types(cls))


def known_paths(cls: type) -> tuple[str, ...]:
    """Every dotted path under ``cls``: sections, subsections and fields."""
    return _known_paths(cls)


# Resolving type hints evaluates every annotation's text; a list of sections builds the same
# class once per item, so each class is resolved once.
@functools.cache
def _field_types(cls: type) -> tuple[tuple[str, Any], ...]:
    hints = get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


@functools.cache
def _known_paths(cls: type) -> tuple[str, ...]:
    paths: list[str] = []
    for name, hint in _field_types(cls):
        paths.append(name)
        if is_section(hint):
            paths += [f"{name}.{path}" for path in _known_paths(hint)]
    return tuple(paths)


@functools.cache
def _leaf_types(cls: type) -> tuple[tuple[str, Any], ...]:
    leaves: list[tuple[str, Any]] = []
    for name, hint in _field_types(cls):
        if is_section(hint):
            leaves += [(f"{name}.{path}", sub) for path, sub in _leaf_types(hint)]
        else:
            leaves.append((name, hint))
    return tuple(leaves)


def field_values(instance: Any) -> dict[str, Any]:
    """The fields of a dataclass instance, one level deep (nested ones stay instances)."""
    return {f.name: getattr(instance, f.name) for f in dataclasses.fields(instance)}


def is_section(hint: Any) -> bool:
    """True when a field's type is itself a dataclass (a section or subsection)."""
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def is_section_list(hint: Any) -> bool:
    """True when a field's type is a list of dataclasses (``data.mixture``: a list of sources)."""
    args = get_args(hint)
    return get_origin(hint) is list and len(args) == 1 and is_section(args[0])


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    if get_origin(hint) in (Union, types.UnionType):
        args = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(args) != 1:
            raise TypeError(f"config fields of type {hint!r} are not supported")
        return args[0], True
    return hint, False


def _plain(data: Any) -> bool:
    """True when ``data`` holds only JSON's kinds of value (so ``to_dict()`` stays JSON-safe).

    YAML also reads dates, sets and ``!!binary`` bytes, which JSON cannot write.
    """
    pending, count = [data], 0
    while pending:
        value = pending.pop()
        count += 1
        if count > MAX_VALUES:  # also ends the walk through a structure that contains itself
            return False
        if isinstance(value, Mapping):
            if not all(isinstance(key, str) for key in value):
                return False
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
        elif not isinstance(value, (str, int, float, bool, type(None))) or not _writable(value):
            return False
    return True


def _writable(value: Any) -> bool:
    """False for an int of more digits than Python writes as text (4,300): JSON could not hold it."""
    if not isinstance(value, int) or value.bit_length() < 10_000:  # 10,000 bits: 3,011 digits
        return True
    try:
        str(value)
    except ValueError:
        return False
    return True


# Every character str.splitlines() breaks at, and how a problem line writes it instead.
_LINE_BREAKS = {ord(char): repr(char)[1:-1] for char in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def _one_line(text: str) -> str:
    return text.translate(_LINE_BREAKS)


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default
