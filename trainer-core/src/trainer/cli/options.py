"""The configuration options shared by the commands that build a run config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

OVERRIDE_FLAGS: list[tuple[str, Any, str]] = [
    ("--dataset", str, "Dataset file or directory (data.dataset_path)."),
    ("--model", str, "Model directory or hub id (model.model_path)."),
    ("--profile", str, "Data profile name (profile.name)."),
    ("--batch-size", int, "Per-device batch size (hyperparams.batch_size)."),
    ("--lr", float, "Learning rate (hyperparams.learning_rate)."),
    ("--epochs", float, "Training epochs (hyperparams.num_epochs)."),
    ("--max-steps", int, "Stop after this many optimiser steps (hyperparams.max_steps)."),
    ("--max-length", int, "Maximum tokens per example (data.max_length)."),
    ("--output-dir", str, "Where the run writes its files (output.output_dir)."),
]


def config_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--config``, the override flags and ``--set`` to a command."""
    decorators = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False),
            help="YAML or JSON config file; command-line options override it.",
        ),
        *(click.option(flag, type=kind, default=None, help=text) for flag, kind, text in OVERRIDE_FLAGS),
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


def load_config(options: dict[str, Any]) -> Any:
    """Build the run config from ``--config`` and the override options.

    Removes the config options from ``options`` and returns ``(config, loader)``.
    """
    from trainer.config.loader import ConfigLoader

    config_file = options.pop("config_file", None)
    overrides = {
        flag.lstrip("-").replace("-", "_"): options.pop(flag.lstrip("-").replace("-", "_"), None)
        for flag, _, _ in OVERRIDE_FLAGS
    }
    overrides["set"] = list(options.pop("set_values", ()) or ())
    loader = ConfigLoader(config_file)
    loader.load()
    config = loader.merge_with_cli_args(overrides)
    return config, loader
