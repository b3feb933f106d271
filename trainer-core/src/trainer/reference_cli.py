"""The command line reference: every command of ``trainer``, plugin commands included.

:func:`cli_reference` builds the markdown of the ``<!-- reference: cli -->``
block: each command's usage, help, arguments, options and subcommands, walked
the way ``trainer --help`` lists them (:func:`walk_commands`), so commands a
plugin adds through ``register_commands`` are in it. :func:`missing_commands` is
the documentation tests' check that a page has a heading for every command.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass

import click

from trainer.reference_markdown import _cell, _code, _escape, _slug, fence


@dataclass(frozen=True)
class CommandDoc:
    """One command of the command line, as the reference shows it."""

    path: str
    """The full command: ``trainer config show``."""
    command: click.Command
    context: click.Context
    from_plugin: bool
    """True for a command a plugin added through ``register_commands``."""


def walk_commands(group: click.Group | None = None, name: str = "trainer") -> Iterator[CommandDoc]:
    """``group`` (default: the ``trainer`` root group) and every command under it, depth first.

    Commands are listed the way ``trainer --help`` lists them, through the group's
    ``list_commands`` and ``get_command``, so commands plugins add are included.
    """
    if group is None:
        from trainer.cli import cli

        group = cli
    yield from _walk(group, _context(group, name, None), from_plugin=False)


def _walk(command: click.Command, context: click.Context, from_plugin: bool) -> Iterator[CommandDoc]:
    yield CommandDoc(context.command_path, command, context, from_plugin)
    if not isinstance(command, click.Group):
        return
    built_in = set(command.commands)
    for name in command.list_commands(context):
        sub = command.get_command(context, name)
        if sub is None or sub.hidden:
            continue
        yield from _walk(sub, _context(sub, name, context), from_plugin or name not in built_in)


def _context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    """The context click would make for ``command``, without parsing arguments."""
    return command.context_class(command, info_name=name, parent=parent, **command.context_settings)


def cli_reference(group: click.Group | None = None) -> str:
    """Markdown: every command with its usage, help, arguments and options."""
    lines: list[str] = []
    for doc in walk_commands(group):
        command, context = doc.command, doc.context
        level = "#" * min(1 + max(doc.path.count(" "), 1), 4)  # trainer, trainer run: ##; deeper: ###
        lines += [f"{level} {doc.path}", ""]
        if doc.from_plugin:
            lines += ["*Added by an installed plugin.*", ""]
        if command.deprecated:
            lines += ["*Deprecated.*", ""]
        usage = " ".join([doc.path, *command.collect_usage_pieces(context)])
        lines += [fence(usage, "text"), "", _help_markdown(command.help or command.short_help or ""), ""]
        arguments = [p for p in command.get_params(context) if isinstance(p, click.Argument)]
        if arguments:
            lines += ["| argument | |", "| --- | --- |"]
            for argument in arguments:
                many = " (one or more)" if argument.nargs == -1 else ""
                lines.append(
                    f"| {_code(argument.human_readable_name)} | "
                    f"{'required' if argument.required else 'optional'}{many} |"
                )
            lines.append("")
        options = [
            record
            for param in command.get_params(context)
            if isinstance(param, click.Option)
            and not set(param.opts) & set(context.help_option_names)
            and (record := param.get_help_record(context)) is not None
        ]
        if options:
            lines += ["| option | meaning |", "| --- | --- |"]
            lines += [f"| {_code(names)} | {_cell(_escape(text))} |" for names, text in options]
            lines.append("")
        if isinstance(command, click.Group):
            lines += ["| command | what it does |", "| --- | --- |"]
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                if sub is not None and not sub.hidden:
                    path = f"{doc.path} {name}"
                    summary = _escape(sub.get_short_help_str(limit=200))
                    lines.append(f"| [`{path}`](#{_slug(path)}) | {_cell(summary)} |")
            lines.append("")
    return "\n".join(lines)


def missing_commands(markdown: str, group: click.Group | None = None) -> list[str]:
    """Commands under ``group`` (default: ``trainer``) that have no heading in ``markdown``."""
    headings = {
        match.group(1).strip() for match in re.finditer(r"^#{1,6}\s+(.+)$", markdown, flags=re.MULTILINE)
    }
    return [doc.path for doc in walk_commands(group) if doc.path not in headings]


def _help_markdown(text: str) -> str:
    """A click help text as markdown: ``\\f`` ends it, ``\\b`` paragraphs keep their lines."""
    text = inspect.cleandoc(text.split("\f", 1)[0])
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text):
        if paragraph.startswith("\b"):
            paragraphs.append(fence(paragraph.removeprefix("\b").strip("\n"), "text"))
        else:
            paragraphs.append(_escape(" ".join(paragraph.split())))
    return "\n\n".join(paragraphs)
