"""The ``trainer`` command line: a thin shell over the library.

Each command group lives in its own module. Commands import heavy libraries
only inside their bodies, so ``trainer --help``, ``trainer profiles`` and
``trainer plugins`` start without torch, transformers or datasets.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator

import click

from trainer.errors import TrainerError

_debug = False

QUIET_LIBRARY_LOGS = {"TRANSFORMERS_VERBOSITY": "error", "DATASETS_VERBOSITY": "error"}
"""The variables that keep transformers' and datasets' own warning logs quiet without --debug."""


class TrainerGroup(click.Group):
    """The root group: built-in commands, then those plugins add."""

    _plugin_commands: dict[str, click.Command] | None = None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins_commands(ctx)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugins_commands(ctx).get(cmd_name)

    def _plugins_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        if self._plugin_commands is None:
            from trainer.plugins import block_plugins, get_plugins

            block_plugins(ctx.params.get("block_plugin") or ())
            scratch = click.Group()
            get_plugins().collect("register_commands", cli=scratch)
            self._plugin_commands = {}
            for name, command in scratch.commands.items():
                if name in self.commands:
                    click.echo(
                        f"warning: a plugin's command '{name}' is ignored: it would shadow the "
                        "built-in command",
                        err=True,
                    )
                    continue
                self._plugin_commands[name] = command
        return self._plugin_commands


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from trainer.cli.plugins_cmd import version_lines

    for line in version_lines():
        click.echo(line)
    ctx.exit()


@click.group(cls=TrainerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version of trainer-core and of each plugin, then exit.",
)
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors, and the libraries' warnings.")
@click.option(
    "--block-plugin",
    multiple=True,
    metavar="NAME",
    help="Do not load this plugin (entry-point or distribution name); repeatable. "
    "Same as TRAINER_BLOCK_PLUGINS=NAME,...",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, block_plugin: tuple[str, ...]) -> None:
    """Fine-tune causal language models with pluggable data profiles.

    Profiles, training callbacks and status sinks come from installed plugins:
    `trainer profiles` and `trainer plugins` show what is installed.
    """
    global _debug
    _debug = _debug or debug or _debug_from_environment()
    if not _debug:
        ctx.with_resource(hide_library_warnings())
    if block_plugin:
        from trainer.plugins import block_plugins

        block_plugins(block_plugin)


def debugging() -> bool:
    """Whether this command runs with ``--debug`` (or ``TRAINER_DEBUG=1``)."""
    return _debug


def _debug_from_environment() -> bool:
    return os.environ.get("TRAINER_DEBUG", "").lower() in {"1", "true", "yes"}


@contextlib.contextmanager
def hide_library_warnings() -> Iterator[None]:
    """Keep the libraries' warnings out of the user's output while a command runs.

    Python warnings (transformers' FutureWarnings, torch's UserWarnings, ...) are not
    shown, unless ``python -W`` or ``PYTHONWARNINGS`` asks for them; transformers and
    datasets log errors only, unless ``TRANSFORMERS_VERBOSITY`` / ``DATASETS_VERBOSITY``
    say otherwise. ``--debug`` shows them all. What trainer tells the user, its own
    ``warning: ...`` lines included, is echoed, not warned, so it still shows.
    """
    saved = {name: os.environ.get(name) for name in QUIET_LIBRARY_LOGS}
    with warnings.catch_warnings():
        if not sys.warnoptions:
            warnings.simplefilter("ignore")
        for name, level in QUIET_LIBRARY_LOGS.items():
            os.environ.setdefault(name, level)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _register_builtin_commands() -> None:
    from trainer.cli import (
        completion_cmd,
        config_cmd,
        eval_cmd,
        generate_cmd,
        new_profile_cmd,
        plugins_cmd,
        preview_cmd,
        run_cmd,
        suggest_cmd,
    )
    from trainer.cli.report_cmd import report
    from trainer.cli.status_cmd import status

    cli.add_command(plugins_cmd.profiles)
    cli.add_command(plugins_cmd.plugins)
    cli.add_command(config_cmd.config)
    cli.add_command(preview_cmd.preview)
    cli.add_command(run_cmd.run)
    cli.add_command(new_profile_cmd.new_profile)
    cli.add_command(suggest_cmd.suggest_profile)
    cli.add_command(generate_cmd.generate)
    cli.add_command(eval_cmd.eval_command)
    cli.add_command(status)
    cli.add_command(report)
    cli.add_command(completion_cmd.completion)


_register_builtin_commands()


def main(argv: list[str] | None = None) -> None:
    """Run the command line; user errors print one line and exit with code 2."""
    global _debug
    _debug = _debug_from_environment() or "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=argv, prog_name="trainer", standalone_mode=False)
    except TrainerError as exc:
        if _debug:
            raise
        from trainer.core.interrupt import RunInterrupted

        # A run stopped by a signal did what was asked: no "Error:" prefix, but its own exit code.
        click.echo(f"{'' if isinstance(exc, RunInterrupted) else 'Error: '}{exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # the machine's doing, or a bug: say so briefly, keep the traceback for --debug
        if _debug:
            raise
        from trainer.os_errors import describe

        # A full disk, no permission, a read-only filesystem, a vanished file: named like bad input.
        line = describe(exc)
        if line is not None:
            click.echo(f"Error: {line}", err=True)
            sys.exit(2)
        click.echo(
            f"Error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True
        )
        sys.exit(1)
    if isinstance(result, int) and result:
        sys.exit(result)
