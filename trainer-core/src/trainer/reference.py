"""The parts of trainer's documentation that are generated from the code.

Each marker in the documentation pages opens a block that holds the markdown
built here; the committed pages carry it (``python -m trainer.reference_blocks
docs/pages`` rewrites them, a test checks they are current) and the site
rebuilds it at every build, so the reference cannot drift from the code:

- ``<!-- reference: config -->``: every config field, from the attribute
  docstrings in :mod:`trainer.config.schema` (:func:`config_reference`);
- ``<!-- reference: cli -->``: every command of the ``trainer`` command line,
  plugin commands included (:func:`trainer.reference_cli.cli_reference`);
- ``<!-- reference: hooks -->``: every hook specification in
  :mod:`trainer.hookspecs` (:func:`hook_reference`);
- ``<!-- reference: status-initial -->``: the status file of a run that has
  not started (:func:`trainer.reference_status.initial_status_reference`);
- ``<!-- reference: example-rows -->``: the example rows as a JSONL file,
  ``rows.jsonl`` (:data:`EXAMPLE_ROWS`);
- ``<!-- render: NAME -->``: the example rows rendered by the installed profile
  ``NAME`` (:func:`profile_reference`);
- ``<!-- scaffold: NAME [PATH] -->``: the package ``trainer new-profile NAME``
  writes, or one of its files (:func:`scaffold_reference`);
- ``<!-- run: ARGS -->``: ``trainer ARGS`` run in a folder that holds
  ``rows.jsonl``, and its output (:func:`command_reference`).

The checks the documentation tests run live here too (:func:`undocumented_fields`,
:func:`undocumented_hooks`, :func:`missing_commands`, :func:`status_keys`,
:func:`documented_status_keys`). The command line and status file references are
built one layer below, in :mod:`trainer.reference_cli` and
:mod:`trainer.reference_status`, with the markdown helpers of
:mod:`trainer.reference_markdown`; their public names are importable from here
too. Nothing here imports torch, transformers or datasets.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
import math
import os
import re
import shlex
import tempfile
import textwrap
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy
import yaml

from trainer.reference_cli import CommandDoc as CommandDoc
from trainer.reference_cli import cli_reference as cli_reference
from trainer.reference_cli import missing_commands as missing_commands
from trainer.reference_cli import walk_commands as walk_commands
from trainer.reference_markdown import _cell, _code, _doc, _escape, _quoted, _slug
from trainer.reference_markdown import fence as fence
from trainer.reference_markdown import rst_to_markdown as rst_to_markdown
from trainer.reference_status import documented_status_keys as documented_status_keys
from trainer.reference_status import emitted_keys as emitted_keys
from trainer.reference_status import initial_status_reference as initial_status_reference
from trainer.reference_status import status_keys as status_keys

MARKER = re.compile(r"<!--\s*(reference|render|scaffold|run):\s*(.*?)\s*-->")
"""A generated part of a page: ``<!-- kind: arguments -->``."""

BASE_SYSTEM_PROMPT = "You are a helpful assistant."

COMPOSES = "the base (builds the messages), or a transform of another base's messages"
BASE_ONLY = "the base: builds the messages and owns the answer, wherever it is written"
"""The base system prompt the profile pages render with (``profile.system_prompt``'s default)."""

EXAMPLE_ROWS: list[tuple[str, dict[str, Any]]] = [
    (
        "A GSM8K row",
        {
            "question": "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning "
            "and bakes muffins for her friends every day with four. She sells the remainder at the "
            "farmers' market daily for $2 per fresh duck egg. How much in dollars does she make every "
            "day at the farmers' market?",
            "answer": "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
            "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer’s market.\n#### 18",
        },
    ),
    (
        "A prompt/response row",
        {"prompt": "What is the capital of France?", "response": "Paris"},
    ),
    (
        "A messages row with its own system turn",
        {
            "messages": [
                {"role": "system", "content": "You are a terse assistant."},
                {"role": "user", "content": "Name two primary colours."},
                {"role": "assistant", "content": "Red and blue.\n\nYellow is a third."},
            ]
        },
    ),
]
"""The rows every profile page renders: (title, row)."""

EXAMPLE_ROWS_FILE = "rows.jsonl"
"""The name the example rows have in the folder where ``run:`` markers run ``trainer``."""


def example_rows_jsonl() -> str:
    """:data:`EXAMPLE_ROWS` as the lines of a JSONL dataset."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for _, row in EXAMPLE_ROWS)


def expand(markdown: str) -> str:
    """``markdown`` with every marker's block filled with the markdown it stands for.

    A block is the marker, its content and ``<!-- end kind: arguments -->``; a
    bare marker gets its content and end line. Expanding twice changes nothing
    (:func:`trainer.reference_blocks.rewrite`).

    :raises ValueError: a marker names an unknown kind or reference.
    """
    from trainer.reference_blocks import rewrite

    return rewrite(markdown, _generate)


def _generate(kind: str, text: str) -> str:
    references: dict[str, Callable[[], str]] = {
        "config": config_reference,
        "cli": cli_reference,
        "hooks": hook_reference,
        "status-initial": initial_status_reference,
        "example-rows": lambda: fence(example_rows_jsonl().rstrip("\n"), "json") + "\n",
        "demo-settings": demo_settings_reference,
    }
    arguments = text.split()
    if kind == "reference" and len(arguments) == 1 and arguments[0] in references:
        return references[arguments[0]]()
    if kind == "render" and len(arguments) == 1:
        return profile_reference(arguments[0])
    if kind == "scaffold" and len(arguments) in (1, 2):
        return scaffold_reference(*arguments)
    if kind == "run" and arguments:
        return command_reference(shlex.split(text))
    raise ValueError(
        f"unknown marker <!-- {kind}: {text} -->; use reference: {' / '.join(references)}, "
        "render: PROFILE, scaffold: NAME [PATH] or run: ARGS"
    )


def demo_settings_reference() -> str:
    """Markdown table: what the demo model trains with for each field left at its default."""
    from trainer.models.demo_model import DEMO_HYPERPARAMS, DEMO_TOKEN_BUDGET

    defaults = {field.path: field.default for field in config_fields()}
    lines = ["| field | default | with the demo model |", "| --- | --- | --- |"]
    for name, value in DEMO_HYPERPARAMS.items():
        default = inline_yaml(defaults[f"hyperparams.{name}"])
        shown = _code(inline_yaml(value))
        if name == "max_steps":
            shown += f", or fewer: {DEMO_TOKEN_BUDGET:,} tokens at most"
        lines.append(f"| `hyperparams.{name}` | {_code(default)} | {shown} |")
    return "\n".join(lines) + "\n"


# -- configuration ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigField:
    """One field of the run configuration, as the reference shows it."""

    path: str
    """Dotted path, as ``--set`` and config files name it: ``model.lora.r``."""
    type: str
    """The annotation as written in the source: ``int | None``."""
    default: Any
    """The default value; a section instance for a field that is a section."""
    doc: str
    """The attribute docstring under the field; empty when there is none."""
    flag: str | None
    """The command line's shortcut flag that sets it (``--batch-size``), if any."""

    @property
    def is_section(self) -> bool:
        """True when the field holds a nested section (``model.lora``)."""
        return dataclasses.is_dataclass(self.default)


def field_docs(cls: type) -> dict[str, tuple[str, str]]:
    """Each annotated field of the class ``cls``: its annotation text and the docstring under it.

    The docstring is the string literal right after the field, as in
    ``batch_size: int = 8`` then ``\"\"\"Examples per device.\"\"\"``; ``""`` when
    there is none.
    """
    node = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
    assert isinstance(node, ast.ClassDef)
    docs: dict[str, tuple[str, str]] = {}
    for statement, following in zip(node.body, [*node.body[1:], None], strict=True):
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        doc = ""
        if (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            doc = inspect.cleandoc(following.value.value)
        docs[statement.target.id] = (ast.unparse(statement.annotation), doc)
    return docs


def config_fields(cls: type | None = None, prefix: str = "") -> list[ConfigField]:
    """Every field under the config dataclass ``cls`` (default :class:`TrainerConfig`), in order.

    A field that is itself a section comes first, then the fields inside it.
    """
    from trainer.config.loader import CLI_FLAGS
    from trainer.config.schema import TrainerConfig

    cls = TrainerConfig if cls is None else cls
    flags = {path: "--" + name.replace("_", "-") for name, path in CLI_FLAGS.items()}
    docs = field_docs(cls)
    fields: list[ConfigField] = []
    for field in dataclasses.fields(cls):
        path = f"{prefix}{field.name}"
        annotation, doc = docs.get(field.name, (str(field.type), ""))
        default = _default(field)
        fields.append(ConfigField(path, annotation, default, doc, flags.get(path)))
        if dataclasses.is_dataclass(default):
            fields.extend(config_fields(type(default), prefix=f"{path}."))
    return fields


def undocumented_fields(cls: type) -> list[str]:
    """Dotted paths of the fields under ``cls`` that have no docstring, or an empty one."""
    return [field.path for field in config_fields(cls) if not field.doc.strip()]


def config_reference() -> str:
    """Markdown: a table of the sections, then one per section: every field's type, default, flag, meaning."""
    constants = schema_constants()
    fields = config_fields()
    lines = ["## Sections", "", "| section | what it holds |", "| --- | --- |"]
    for section in fields:
        if "." not in section.path:
            meaning = _cell(_link_constants(rst_to_markdown(section.doc), constants))
            lines.append(f"| [`{section.path}`](#{_slug(section.path)}) | {meaning} |")
    lines.append("")
    for section in (f for f in fields if f.is_section):
        level = "#" * (2 + section.path.count("."))
        intro = _link_constants(rst_to_markdown(_doc(type(section.default))), constants)
        lines += [f"{level} {section.path}", "", intro, ""]
        lines += ["| field | type | default | flag | meaning |", "| --- | --- | --- | --- | --- |"]
        depth = section.path.count(".") + 1
        for field in fields:
            if not field.path.startswith(f"{section.path}.") or field.path.count(".") != depth:
                continue  # outside this section, or inside a nested one that gets its own table
            if field.is_section:
                default = f"the [`{field.path}`](#{_slug(field.path)}) section"
            else:
                default = _code(inline_yaml(field.default))
            cells = [
                _code(field.path),
                _code(field.type),
                default,
                _code(field.flag) if field.flag else "",
                _cell(_link_constants(rst_to_markdown(field.doc), constants)),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Accepted values", "", "The names the descriptions above refer to:", ""]
    lines += ["| name | values |", "| --- | --- |"]
    for name, values in constants.items():
        lines.append(f"| {_code(name)} | {', '.join(_code(value) for value in values)} |")
    return "\n".join(lines) + "\n"


def schema_constants() -> dict[str, tuple[str, ...]]:
    """The tuples of accepted strings :mod:`trainer.config.schema` declares, by name."""
    from trainer.config import schema

    return {
        name: value
        for name, value in vars(schema).items()
        if name.isupper()
        and isinstance(value, tuple)
        and value
        and all(isinstance(item, str) for item in value)
    }


def inline_yaml(value: Any) -> str:
    """``value`` as it would be written in a YAML config file, on one line."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, allow_unicode=True)
    text = text.removesuffix("\n...\n").strip()
    return json.dumps(value, ensure_ascii=False) if "\n" in text else text


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _link_constants(text: str, constants: Iterable[str]) -> str:
    for name in constants:
        text = text.replace(f"`{name}`", f"[`{name}`](#accepted-values)")
    return text


# -- hooks -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HookDoc:
    """One hook specification."""

    name: str
    signature: str
    """``def register_profiles(register: Callable[..., None]) -> None``."""
    doc: str
    """The docstring, cleaned; empty when there is none."""
    options: Mapping[str, Any]
    """pluggy's hookspec options (``firstresult``, ``historic``, ...)."""


def hookspecs(module: types.ModuleType | None = None) -> list[HookDoc]:
    """Every function of ``module`` (default :mod:`trainer.hookspecs`) marked as a hookspec, in order."""
    from trainer import hookspecs as default_module

    module = default_module if module is None else module
    manager = pluggy.PluginManager(getattr(module, "PROJECT_NAME", "trainer"))
    found = []
    for name, function in vars(module).items():
        if not inspect.isfunction(function):
            continue
        options = manager.parse_hookspec_opts(module, name)
        if options is None:
            continue
        found.append((function.__code__.co_firstlineno, _hook_doc(name, function, options)))
    return [hook for _, hook in sorted(found, key=lambda item: item[0])]


def undocumented_hooks(module: types.ModuleType | None = None) -> list[str]:
    """Names of the hookspecs in ``module`` (default :mod:`trainer.hookspecs`) without a docstring."""
    return [hook.name for hook in hookspecs(module) if not hook.doc.strip()]


def hook_reference() -> str:
    """Markdown: the plugin API version, then every hook with its signature and documentation."""
    from trainer import PLUGIN_API_VERSION

    lines = [
        f"The hook contract's version, `trainer.PLUGIN_API_VERSION`, is **`{PLUGIN_API_VERSION}`**.",
        "",
    ]
    for hook in hookspecs():
        lines += [f"## {hook.name}", "", fence(hook.signature, "python"), ""]
        flags = [name for name in ("firstresult", "historic") if hook.options.get(name)]
        if flags:
            lines += [f"pluggy options: {', '.join(_code(flag) for flag in flags)}.", ""]
        lines += [rst_to_markdown(hook.doc), ""]
    lines += _implementations()
    return "\n".join(lines)


def _hook_doc(name: str, function: Callable[..., Any], options: Mapping[str, Any]) -> HookDoc:
    node = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0]
    assert isinstance(node, ast.FunctionDef)
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    signature = f"def {name}({ast.unparse(node.args)}){returns}"
    return HookDoc(name, signature, inspect.cleandoc(function.__doc__ or ""), dict(options or {}))


def _implementations() -> list[str]:
    from trainer.plugins import get_plugins

    infos = [info for info in get_plugins().infos if info.hooks]
    if not infos:
        return []
    lines = [
        "## Implementations",
        "",
        "The plugins that were installed where this page was built, and the hooks each implements:",
        "",
        "| plugin | module | distribution | hooks |",
        "| --- | --- | --- | --- |",
    ]
    for info in infos:
        lines.append(
            f"| {_code(info.name)} | {_code(info.module)} | {_code(info.distribution or '?')} "
            f"| {', '.join(_code(hook) for hook in info.hooks)} |"
        )
    return [*lines, ""]


# -- profiles --------------------------------------------------------------------------------------


def profile_reference(name: str, rows: list[tuple[str, dict[str, Any]]] | None = None) -> str:
    """Markdown: the installed profile ``name``, and :data:`EXAMPLE_ROWS` rendered by it.

    Each row goes through the profile as a run sends it
    (:func:`trainer.data.conversation.build_messages` with the profile's stop
    sequences), so the page shows what the installed code does.
    """
    from trainer.conversation.display import message_lines
    from trainer.conversation.tool_calls import reply_text
    from trainer.data.conversation import build_messages
    from trainer.profiles import InvalidExampleError, get_profile, installed_profiles

    entry = installed_profiles()[name] if name in installed_profiles() else None
    profile = get_profile(name)
    stops = profile.get_stop_sequences()
    system_prompt = profile.format_system_prompt(BASE_SYSTEM_PROMPT)
    origin = f"{entry.plugin.distribution} {entry.plugin.version}" if entry else "?"
    lines = [
        "| | |",
        "| --- | --- |",
        f"| name | {_code(profile.name or name)} |",
        f"| description | {_cell(_escape(entry.description if entry else profile.description))} |",
        f"| distribution | {_code(origin)} |",
        f"| stop sequences | {_quoted(stops) or 'none: the end-of-turn token ends generation'} |",
        f"| penalized strings | {_quoted(profile.penalized_strings) or 'none'} |",
        f"| made for | {_cell(_escape(profile.suits)) or 'not stated'} |",
        f"| in a composition | {COMPOSES if profile.can_follow() else BASE_ONLY} |",
        "",
        f"The system prompt, built on the default base prompt {_code(BASE_SYSTEM_PROMPT)} "
        "(`profile.system_prompt`):",
        "",
        fence(system_prompt, "text"),
        "",
    ]
    for title, row in EXAMPLE_ROWS if rows is None else rows:
        lines += [f"### {title}", "", fence(_row_json(row), "json"), ""]
        try:
            messages = build_messages(profile, row, BASE_SYSTEM_PROMPT, stops)
        except InvalidExampleError as exc:
            lines += [f"The profile refuses this row with `InvalidExampleError`: {_escape(str(exc))}", ""]
            continue
        same = messages[0]["role"] == "system" and messages[0]["content"] == system_prompt
        shown = message_lines(messages, "(the system prompt above)" if same else None)
        lines += ["Rendered:", "", fence("\n".join(shown), "text"), ""]
        rating = f"`trainer suggest-profile` rating: {profile.rate_example(row):g} (from 0 to 1)."
        expected = profile.expected_answer(row)
        if expected is None:
            lines += [f"The row has no expected answer, so previews do not score it. {rating}", ""]
            continue
        target = reply_text(messages[-1])
        found = profile.parse_answer(target)
        verdict = "correct" if profile.check_answer(target, expected) else "not correct"
        if "\n" in expected or (found is not None and "\n" in found):
            # A multi-line answer (the chat profile's whole target) cannot be an inline code span.
            lines += ["Expected answer:", "", fence(expected, "text"), ""]
            lines += (
                ["`parse_answer` reads nothing from the rendered target."]
                if found is None
                else ["`parse_answer` reads from the rendered target:", "", fence(found, "text")]
            )
            lines += ["", f"`check_answer` judges it {verdict}. {rating}", ""]
            continue
        lines += [
            f"Expected answer: {_code(expected)}. `parse_answer` reads "
            f"{_code(found) if found is not None else 'nothing'} from the rendered target, "
            f"which `check_answer` judges {verdict}. {rating}",
            "",
        ]
    return "\n".join(lines)


def _row_json(row: Mapping[str, Any]) -> str:
    """A row as indented JSON, with each message of a ``messages`` list on one line."""
    lines = []
    for index, (key, value) in enumerate(row.items()):
        comma = "," if index < len(row) - 1 else ""
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            items = [f"    {json.dumps(item, ensure_ascii=False)}" for item in value]
            body = ",\n".join(items)
            lines.append(f"  {json.dumps(key)}: [\n{body}\n  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{comma}")
    return "{\n" + "\n".join(lines) + "\n}"


# -- running a command ------------------------------------------------------------------------------


def command_reference(arguments: list[str]) -> str:
    """Markdown: ``trainer ARGUMENTS`` and what it prints, run in a folder holding ``rows.jsonl``.

    The command runs in this process, so it must be one that needs no torch
    (``profiles``, ``preview``, ``config show``, ...).

    :raises ValueError: the command exits with an error.
    """
    from click.testing import CliRunner

    from trainer.cli import cli

    runner = CliRunner()
    previous = Path.cwd()
    with tempfile.TemporaryDirectory() as directory:
        os.chdir(directory)  # so the command and its output name files relative to one folder
        try:
            Path(EXAMPLE_ROWS_FILE).write_text(example_rows_jsonl(), encoding="utf-8")
            result = runner.invoke(cli, arguments, prog_name="trainer")
        finally:
            os.chdir(previous)
    command = " ".join(["trainer", *map(shlex.quote, arguments)])
    if result.exit_code != 0:
        raise ValueError(f"{command} exited with {result.exit_code}: {result.output}") from result.exception
    return fence(f"$ {command}\n{result.output.rstrip()}", "console") + "\n"


# -- the package `trainer new-profile` writes ------------------------------------------------------


@functools.lru_cache(maxsize=8)
def scaffold_files(name: str) -> dict[str, str]:
    """The files ``trainer new-profile NAME`` writes, by path relative to the package."""
    from trainer import __version__
    from trainer.scaffold import new_profile

    with tempfile.TemporaryDirectory() as directory:
        root = new_profile(name, directory, core_version=".".join(__version__.split(".")[:2]))
        return {
            path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(root.rglob("*"))
            if path.is_file()
        }


def scaffold_reference(name: str, path: str | None = None) -> str:
    """Markdown: the tree of the package ``trainer new-profile NAME`` writes, or its file ``path``.

    :raises ValueError: the package has no file ``path``.
    """
    files = scaffold_files(name)
    if path is None:
        return fence(_tree(f"trainer-profile-{name.replace('_', '-')}", sorted(files)), "text") + "\n"
    if path not in files:
        raise ValueError(f"trainer new-profile writes no {path!r}; it writes {', '.join(files)}")
    language = {".toml": "toml", ".py": "python", ".md": "markdown"}.get(Path(path).suffix, "text")
    return fence(files[path].rstrip("\n"), language) + "\n"


def _tree(root: str, paths: list[str]) -> str:
    """A ``tree``-style drawing of ``paths`` under ``root``."""
    nested: dict[str, Any] = {}
    for path in paths:
        node = nested
        for part in path.split("/"):
            node = node.setdefault(part, {})

    def draw(node: dict[str, Any], indent: str) -> list[str]:
        lines = []
        # Files before folders at each level, as the layout reads top to bottom.
        names = sorted(node, key=lambda part: (bool(node[part]), part))
        for index, part in enumerate(names):
            last = index == len(names) - 1
            lines.append(f"{indent}{'└── ' if last else '├── '}{part}{'/' if node[part] else ''}")
            lines += draw(node[part], indent + ("    " if last else "│   "))
        return lines

    return "\n".join([f"{root}/", *draw(nested, "")])
