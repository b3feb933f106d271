"""The configuration options shared by the commands that build a run config."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from trainer.config.loader import CLI_FLAGS
from trainer.config.mixture import DATASET_SYNTAX
from trainer.errors import TrainerError

F = TypeVar("F", bound=Callable[..., Any])

# The shortcut flags: name -> (type, help); each sets the field loader.CLI_FLAGS names.
OVERRIDE_FLAGS: dict[str, tuple[Any, str]] = {
    "dataset": (
        str,
        "Dataset file or directory; repeat to mix several (--dataset a.jsonl:regime3@0.7 --dataset "
        "b.jsonl@0.3). A source without :PROFILE uses --profile.",
    ),
    "model": (str, "Model directory or hub id."),
    "profile": (str, "Data profile name; join several with '+' to apply in turn (emoji_think+regime3)."),
    "batch_size": (int, "Per-device batch size."),
    "lr": (float, "Learning rate."),
    "epochs": (float, "Training epochs."),
    "max_steps": (int, "Stop after this many optimiser steps."),
    "max_length": (int, "Maximum tokens per example."),
    "output_dir": (str, "Where the run writes its files."),
    "report_to": (str, "Metric loggers, comma-separated: tensorboard, wandb, mlflow, ..."),
}


ALL_FLAGS = tuple(OVERRIDE_FLAGS)
"""Every shortcut flag: for the commands that act on the whole run config (``run``, ``config show``)."""

DATA_FLAGS = ("dataset", "model", "profile")
"""The shortcut flags that change the rendered data: the rows, the profile, and the model whose chat
template and tokenizer render them (``preview``)."""

_PATH_FLAGS = {"dataset": "file", "model": "dir", "output_dir": "dir"}
"""The shortcut flags that name files or directories, and what the shell completes for them."""

_REPEATABLE = {"dataset": DATASET_SYNTAX}
"""The shortcut flags that may be given several times, and the metavar that shows what each takes."""


def config_options(flags: Iterable[str] = ALL_FLAGS) -> Callable[[F], F]:
    """Add ``--config``, the shortcut flags in ``flags`` and ``--set`` to a command.

    A command takes only the shortcut flags that change what it does; ``--config`` and
    ``--set`` still reach every field.

    :raises ValueError: a name in ``flags`` is not a key of :data:`OVERRIDE_FLAGS`.
    """
    chosen = list(flags)
    unknown = [name for name in chosen if name not in OVERRIDE_FLAGS]
    if unknown:
        raise ValueError(f"unknown shortcut flag(s) {unknown}; choose from {sorted(OVERRIDE_FLAGS)}")
    decorators = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False),
            help="YAML or JSON config file; command-line options override it.",
        ),
        *(_override_option(name) for name in OVERRIDE_FLAGS if name in chosen),
        click.option(
            "--set",
            "set_values",
            multiple=True,
            metavar="SECTION.FIELD=VALUE",
            help="Override any config field, e.g. --set hyperparams.seed=7; repeatable.",
        ),
    ]

    def decorate(command: F) -> F:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return decorate


def _override_option(name: str) -> Callable[[F], F]:
    kind, text = OVERRIDE_FLAGS[name]
    completion: Any = None
    if name == "profile":
        completion = complete_profile_names
    elif name in _PATH_FLAGS:
        completion = complete_paths(_PATH_FLAGS[name])
    return click.option(
        "--" + name.replace("_", "-"),
        type=kind,
        default=None,
        multiple=name in _REPEATABLE,
        metavar=_REPEATABLE.get(name),
        help=f"{text} ({_field(name)})",
        shell_complete=completion,
    )


def prompting_options(func: F) -> F:
    """Add ``--profile``, ``--system-prompt``, ``--max-new-tokens`` and ``--temperature``.

    How a command that answers with a saved model (``generate``, ``eval``) prompts it and
    samples from it; each left out is what the run saved (``trainer_run.json``).
    """
    options = (
        click.option(
            "--profile",
            default=None,
            shell_complete=complete_profile_names,
            help="Data profile that renders the prompts and reads the answers; default: the run's "
            "(the first source's in a mixture; another source by its name or profile).",
        ),
        click.option("--system-prompt", default=None, help="Base system prompt; default: the run's."),
        click.option(
            "--max-new-tokens",
            type=click.IntRange(min=1),
            default=None,
            help="Default: the run's inference.max_new_tokens.",
        ),
        click.option(
            "--temperature",
            type=click.FloatRange(min=0),
            default=None,
            help="0 is greedy. Default: the run's inference.temperature.",
        ),
    )
    for option in reversed(options):
        func = option(func)
    return func


def complete_profile_names(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion for a profile name: the installed profiles, read from the plugins.

    In a composition (``emoji_think+re``) the part after the last ``+`` is completed, with
    the profiles that may join it: not one already named, and, once the composition has a
    base (a profile that builds the messages), only those that transform messages. Loading
    the plugins imports no torch; a plugin that fails to load is left out.
    """
    from click.shell_completion import CompletionItem

    from trainer.plugins import block_plugins
    from trainer.profiles import installed_profiles
    from trainer.profiles.compose import SEPARATOR

    head, plus, last = incomplete.rpartition(SEPARATOR)
    block_plugins(ctx.find_root().params.get("block_plugin") or ())
    try:
        entries = installed_profiles()
    except TrainerError:  # two plugins claim one name: complete nothing rather than break the shell
        return []
    named = head.split(SEPARATOR) if plus else []
    has_base = any(name in entries and not entries[name].profile_class.can_follow() for name in named)
    return [
        CompletionItem(head + plus + name, help=entry.description)
        for name, entry in sorted(entries.items())
        if name.startswith(last)
        and name not in named
        and not (has_base and not entry.profile_class.can_follow())
    ]


def complete_paths(kind: str) -> Callable[[click.Context, click.Parameter, str], list[Any]]:
    """Shell completion that lets the shell complete paths: ``kind`` is ``file`` or ``dir``."""

    def complete(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(incomplete, type=kind)]

    return complete


def _field(flag: str) -> str:
    """The config field a flag sets and, where it has one, its default: ``profile.name; default: chat``."""
    from trainer.config import TrainerConfig

    path = CLI_FLAGS[flag]
    if flag == "dataset":
        return f"{path}, or data.mixture with :PROFILE, @WEIGHT or several"
    value: Any = TrainerConfig()
    for part in path.split("."):
        value = getattr(value, part, None)
    if value is None or isinstance(value, (list, dict)):
        return path
    return f"{path}; default: {value}"


def load_config(options: dict[str, Any]) -> Any:
    """Build the run config from ``--config`` and the override options.

    Removes the config options from ``options`` and returns ``(config, loader)``.
    """
    from trainer.config.loader import ConfigLoader

    config_file = options.pop("config_file", None)
    overrides: dict[str, Any] = {name: options.pop(name, None) for name in OVERRIDE_FLAGS}
    for name in _REPEATABLE:  # click gives a repeatable option as a tuple, empty when not given
        overrides[name] = list(overrides[name] or ()) or None
    overrides["set"] = list(options.pop("set_values", ()) or ())
    loader = ConfigLoader(config_file)
    loader.load()
    config = loader.merge_with_cli_args(overrides)
    return config, loader


def quiet_libraries() -> None:
    """Silence the progress bars of datasets and transformers (ours are enough) and, unless
    ``--debug``, their logs below errors."""
    import datasets
    from transformers.utils import logging as transformers_logging

    from trainer.cli import debugging

    datasets.disable_progress_bars()
    transformers_logging.disable_progress_bar()
    if debugging():
        return
    # datasets logs a parse error before raising it; our own message says it better, once.
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    transformers_logging.set_verbosity_error()


def show_library_logs() -> None:
    """Let datasets and transformers log their warnings, which the command line keeps quiet
    unless ``--debug`` (for ``debug.verbose``)."""
    import datasets
    from transformers.utils import logging as transformers_logging

    datasets.logging.set_verbosity_warning()
    transformers_logging.set_verbosity_warning()
