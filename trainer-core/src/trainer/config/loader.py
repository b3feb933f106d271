"""One config from three layers: defaults, then a file, then the command line.

::

    loader = ConfigLoader("config.yaml")
    config = loader.load()
    config = loader.merge_with_cli_args({"batch_size": 2, "set": ["hyperparams.seed=7"]})
    loader.origins()["hyperparams.batch_size"]  # "command line"

Files are ``.yaml``/``.yml`` (read with ``yaml.safe_load``, so a config file
never runs code) or ``.json``. Every problem in a layer is reported at once in a
:class:`~trainer.config.validation.ConfigError`.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from trainer.config.mixture import DATASET_SYNTAX, parse_dataset_flag
from trainer.config.schema import TrainerConfig
from trainer.config.validation import (
    MAX_VALUES,
    ConfigError,
    FieldTypeError,
    build,
    describe,
    exceeds,
    is_section_list,
    known_paths,
    leaf_types,
    parse_text,
    show,
    unknown_key_problem,
)

CLI_FLAGS = {
    "dataset": "data.dataset_path",
    "model": "model.model_path",
    "profile": "profile.name",
    "batch_size": "hyperparams.batch_size",
    "lr": "hyperparams.learning_rate",
    "epochs": "hyperparams.num_epochs",
    "max_steps": "hyperparams.max_steps",
    "max_length": "data.max_length",
    "output_dir": "output.output_dir",
    "report_to": "output.report_to",
}
"""The command line's shortcut flags (argparse destinations) and the fields they set.

``dataset`` also takes several values, ``PATH[:PROFILE][@WEIGHT]`` each: they set ``data.mixture``
instead (see :func:`~trainer.config.mixture.parse_dataset_flag`)."""

DEFAULT = "default"
COMMAND_LINE = "command line"
FILE_SUFFIXES = (".yaml", ".yml", ".json")


class ConfigLoader:
    """Builds a :class:`TrainerConfig` from defaults, a config file and command-line values.

    Later layers win: defaults < file < command line. The loader remembers
    which layer gave each value (:meth:`origins`).

    :param path: a ``.yaml``, ``.yml`` or ``.json`` file; None uses defaults only.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.config: TrainerConfig | None = None
        """The config from the last :meth:`load` or :meth:`merge_with_cli_args`."""
        self._file_data: dict[str, Any] = {}
        self._overrides: dict[str, Any] = {}

    def load(self) -> TrainerConfig:
        """Read the file (if any) over the defaults; forgets earlier command-line values.

        :raises ConfigError: the file is missing, unreadable, not valid YAML/JSON
            or holds unknown keys, wrong types or bad values (all listed).
        """
        self._file_data = _read_file(self.path) if self.path is not None else {}
        self._overrides = {}
        self.config = TrainerConfig.from_dict(self._file_data, source=self._file_label())
        return self.config

    def merge_with_cli_args(self, args: argparse.Namespace | Mapping[str, Any]) -> TrainerConfig:
        """Apply command-line values over the file and return the merged config.

        ``args`` is an argparse namespace or a dict (click's parameters, say).
        These keys are read, in this order; all others are ignored, because a
        namespace also holds options that are not config values:

        - the shortcut flags in :data:`CLI_FLAGS` (``batch_size``, ``lr``, ...); ``dataset`` is a
          path, or a list of ``PATH[:PROFILE][@WEIGHT]`` for a mixture (it replaces the file's
          ``data.dataset_path`` and ``data.mixture`` both);
        - dotted keys naming a field: ``{"hyperparams.seed": 7}``;
        - ``set``: a list of ``"section.field=value"`` strings (``--set``).

        None values are skipped (unset argparse options). Strings are read into
        the field's type: ``"4"`` for an int, ``"yes"`` for a bool, ``"null"``
        for an optional field, ``"a,b"`` or ``"[a, b]"`` for a list, YAML or
        JSON text for a mapping. Calls add up: a later call wins over an earlier one.

        :raises ConfigError: listing every unknown key and bad value.
        """
        if self.config is None:
            self.load()
        problems: list[str] = []
        overrides = {**self._overrides, **_command_line_values(args, problems)}
        merged = copy.deepcopy(self._file_data)
        for path, value in overrides.items():
            _set_path(merged, path, value)
        config = build(TrainerConfig, merged, problems)
        if problems:
            raise ConfigError(COMMAND_LINE, problems)
        self._overrides = overrides
        self.config = config
        return config

    def origins(self) -> dict[str, str]:
        """Where each field's value came from, by dotted path.

        Each origin is ``"default"``, ``"file <path>"`` or ``"command line"``.
        """
        origins: dict[str, str] = {}
        for path in leaf_types(TrainerConfig):
            if path in self._overrides:
                origins[path] = COMMAND_LINE
            elif _has_path(self._file_data, path):
                origins[path] = f"file {self.path}"
            else:
                origins[path] = DEFAULT
        return origins

    def _file_label(self) -> str:
        return str(self.path) if self.path is not None else "defaults"


def _read_file(path: Path) -> dict[str, Any]:
    """The raw mapping a config file holds, unchecked; every failure is a one-line ConfigError."""

    def fail(message: str) -> ConfigError:
        return ConfigError(str(path), [message])

    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise fail(f"unsupported file type {path.suffix or '(none)'!r}; use a .yaml, .yml or .json file")
    if not path.exists():
        raise fail(f"file not found (looked for {path.resolve()}); check the path")
    if path.is_dir():
        raise fail("is a directory; pass the config file inside it")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise fail("is not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise fail(f"cannot be read ({exc.strerror}); check its permissions") from None

    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise fail(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}; fix the syntax there"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise fail(f"invalid YAML{where}: {reason}; fix the syntax there") from None
    except RecursionError:
        raise fail("is nested too deeply to read; a config needs a few levels of sections") from None
    except ValueError as exc:  # a value YAML or JSON cannot convert: a 31st of February, a 5,000-digit int
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise fail(f"holds a value that cannot be read ({reason}); fix the value") from None

    if exceeds(data, MAX_VALUES):
        raise fail(
            f"holds more than {MAX_VALUES:,} values once its YAML aliases are expanded (or an alias "
            "contains itself); write the values out instead of aliasing them"
        )
    if data is None:  # an empty YAML file: all defaults
        return {}
    if not isinstance(data, dict):
        raise fail(
            f"the top level must be a mapping of sections (hyperparams:, model:, ...), got {show(data)}"
        )
    return data


def _command_line_values(args: argparse.Namespace | Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """The config values in ``args`` by dotted path, read into their types."""
    items = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    leaves = leaf_types(TrainerConfig)
    values: dict[str, Any] = {}

    def put(path: str, value: Any) -> None:
        if path not in leaves:
            problems.append(_not_a_field(path))
            return
        if isinstance(value, str):
            try:
                value = parse_text(value, leaves[path])
            except FieldTypeError:
                problems.append(f"{path}: expected {describe(leaves[path])}, got {show(value)}")
                return
        values[path] = value

    for key, value in items.items():
        if value is None or key == "set" or not isinstance(key, str):
            continue
        if key == "dataset":
            for path, data in _dataset_values(value, problems).items():
                put(path, data)
        elif key in CLI_FLAGS:
            put(CLI_FLAGS[key], value)
        elif "." in key:
            put(key, value)

    entries = items.get("set") or []
    if isinstance(entries, str):
        entries = [entries]
    elif not isinstance(entries, (list, tuple)):
        problems.append(f"--set: expected a list of section.field=value strings, got {show(entries)}")
        entries = []
    for entry in entries:
        path, equals, text = entry.partition("=") if isinstance(entry, str) else ("", "", "")
        if not equals or not path.strip():
            shown = repr(entry) if isinstance(entry, str) else show(entry)
            problems.append(f"--set {shown}: expected section.field=value, e.g. hyperparams.seed=7")
        else:
            put(path.strip(), text)
    return values


def _dataset_values(value: Any, problems: list[str]) -> dict[str, Any]:
    """The fields ``--dataset`` sets: ``data.dataset_path``, or ``data.mixture``; each clears the other.

    ``value`` is one string or a list of them (``--dataset`` repeated), each ``PATH[:PROFILE][@WEIGHT]``.
    One path alone is the simple form; a profile, a weight or a second path make a mixture.
    """
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, (list, tuple)):  # a Python value: the field's type check names it
        return {"data.dataset_path": value}
    if not all(isinstance(text, str) for text in texts):
        problems.append(f"--dataset: expected {DATASET_SYNTAX} strings, got {show(value)}")
        return {}
    sources = []
    for text in texts:
        try:
            sources.append(parse_dataset_flag(text))
        except ValueError as exc:
            problems.append(str(exc))
    if len(sources) != len(texts) or not texts:
        return {}
    if len(sources) == 1 and set(sources[0]) == {"path"}:
        return {"data.dataset_path": texts[0], "data.mixture": []}
    return {"data.dataset_path": None, "data.mixture": sources}


def _not_a_field(path: str) -> str:
    leaves = leaf_types(TrainerConfig)
    fields = [leaf for leaf in leaves if leaf.startswith(f"{path}.")]
    if fields:
        return f"{path}: is a section, not a field; set its fields one by one, e.g. {fields[0]}=..."
    listed = next(
        (leaf for leaf in leaves if path.startswith(f"{leaf}.") and is_section_list(leaves[leaf])), None
    )
    if listed is not None:
        return (
            f"{path}: {listed} is a list, set as a whole: "
            f"{listed}=[{{path: a.jsonl, weight: 0.5}}, {{path: b.jsonl, weight: 0.5}}]"
        )
    return unknown_key_problem(path, known_paths(TrainerConfig))


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *sections, name = path.split(".")
    for section in sections:
        inner = data.get(section)
        if not isinstance(inner, dict):  # absent, or an empty (null) section
            inner = data[section] = {}
        data = inner
    data[name] = value


def _has_path(data: Mapping[str, Any], path: str) -> bool:
    *sections, name = path.split(".")
    for section in sections:
        inner = data.get(section)
        if not isinstance(inner, Mapping):
            return False
        data = inner
    return name in data
