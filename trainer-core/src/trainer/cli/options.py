"""The configuration options shared by the commands that build a run config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from trainer.config.loader import CLI_FLAGS

# The shortcut flags: name -> (type, help); each sets the field loader.CLI_FLAGS names.
OVERRIDE_FLAGS: dict[str, tuple[Any, str]] = {
    "dataset": (str, "Dataset file or directory."),
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


def config_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--config``, the override flags and ``--set`` to a command."""
    decorators = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False),
            help="YAML or JSON config file; command-line options override it.",
        ),
        *(
            click.option(
                "--" + name.replace("_", "-"), type=kind, default=None, help=f"{text} ({_field(name)})"
            )
            for name, (kind, text) in OVERRIDE_FLAGS.items()
        ),
        click.option(
            "--set",
            "set_values",
            multiple=True,
            metavar="SECTION.FIELD=VALUE",
            help="Override any config field, e.g. --set hyperparams.seed=7; repeatable.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _field(flag: str) -> str:
    """The config field a flag sets and, where it has one, its default: ``profile.name; default: chat``."""
    from trainer.config import TrainerConfig

    path = CLI_FLAGS[flag]
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
    overrides["set"] = list(options.pop("set_values", ()) or ())
    loader = ConfigLoader(config_file)
    loader.load()
    config = loader.merge_with_cli_args(overrides)
    return config, loader


def quiet_libraries() -> None:
    """Silence the progress bars of datasets and transformers; ours are enough."""
    import datasets
    from transformers.utils import logging as transformers_logging

    datasets.disable_progress_bars()
    # datasets logs a parse error before raising it; our own message says it better, once.
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
