"""``trainer profiles``, ``trainer plugins`` and the ``--version`` text."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import click

from trainer.errors import TrainerError


def version_lines() -> list[str]:
    """trainer-core's version and each plugin distribution's, read from metadata only."""
    from trainer import __version__
    from trainer.hookspecs import PLUGIN_API_VERSION
    from trainer.plugins import CORE_DISTRIBUTION, ENTRY_POINT_GROUP

    lines = [f"trainer-core {__version__} (plugin API {PLUGIN_API_VERSION})"]
    by_distribution: dict[tuple[str, str], list[str]] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist
        if dist is None or dist.name == CORE_DISTRIBUTION:
            continue
        by_distribution.setdefault((dist.name, dist.version), []).append(entry_point.name)
    for (name, version), names in sorted(by_distribution.items()):
        lines.append(f"{name} {version} (plugins: {', '.join(sorted(names))})")
    return lines


def text_table(rows: list[list[str]], headers: list[str]) -> str:
    """Rows under headers, columns padded to their widest cell."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _warn_failed() -> None:
    from trainer.plugins import get_plugins

    failed = get_plugins().failed()
    if failed:
        names = ", ".join(info.distribution or info.name for info in failed)
        click.echo(
            f"warning: {len(failed)} plugin(s) failed to load: {names}. See: trainer plugins",
            err=True,
        )


@click.command(short_help="List the installed data profiles.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def profiles(as_json: bool) -> None:
    """List the installed data profiles."""
    from trainer.profiles import list_profiles

    entries = list_profiles()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": entry.name,
                        "description": entry.description,
                        "suits": entry.profile_class.suits,
                        "can_follow": entry.profile_class.can_follow(),
                        "distribution": entry.plugin.distribution,
                        "version": entry.plugin.version,
                        "plugin": entry.plugin.name,
                    }
                    for entry in entries
                ],
                indent=2,
            )
        )
    else:
        rows = [
            [entry.name, entry.description, entry.plugin.distribution or "?", entry.plugin.version or "?"]
            for entry in entries
        ]
        click.echo(text_table(rows, ["NAME", "DESCRIPTION", "DISTRIBUTION", "VERSION"]))
    _warn_failed()


@click.command(short_help="List every plugin, its hooks and its state.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List every plugin: its hooks, distribution, version and status."""
    from trainer.plugins import get_plugins
    from trainer.profiles import installed_profiles

    registry = get_plugins()
    conflict = None
    try:
        installed_profiles()  # runs register_profiles, so a plugin that raises there shows as failed
    except TrainerError as exc:
        conflict = str(exc)
    infos = registry.infos
    if as_json:
        click.echo(json.dumps([info.to_dict() for info in infos], indent=2))
    else:
        rows = [
            [
                info.name,
                info.status,
                info.distribution or "?",
                info.version or "?",
                ", ".join(info.hooks) or "-",
            ]
            for info in infos
        ]
        click.echo(text_table(rows, ["NAME", "STATUS", "DISTRIBUTION", "VERSION", "HOOKS"]))
        for info in infos:
            if info.error:
                click.echo(f"{info.name} ({info.distribution}): {info.error}")
    if conflict:
        click.echo(f"warning: {conflict}", err=True)
