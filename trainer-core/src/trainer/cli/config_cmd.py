"""``trainer config``: show and validate configuration."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from trainer.cli.options import ALL_FLAGS, config_options, load_config


@click.group(short_help="Show or check run configuration.")
def config() -> None:
    """Show or check run configuration."""


@config.command(short_help="Print the merged run configuration.")
@config_options(ALL_FLAGS)
@click.option(
    "--origin", is_flag=True, help="Show where each value came from: default, file or command line."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
def show(origin: bool, as_json: bool, **options: Any) -> None:
    """Print the merged configuration: defaults < --config file < command line."""
    from trainer.config import iter_values, render_yaml

    run_config, loader = load_config(options)
    origins = loader.origins() if origin else None
    if as_json and origins is not None:
        shown = {
            path: {"value": _plain(value), "origin": origins[path]} for path, value in iter_values(run_config)
        }
        click.echo(json.dumps(shown, indent=2))
    elif as_json:
        click.echo(json.dumps(run_config.to_dict(), indent=2))
    else:
        click.echo(render_yaml(run_config, origins).rstrip())
        if run_config.model.model_path is None:
            from trainer.models.demo_model import DEMO_TOKEN_BUDGET, demo_hyperparams

            _, changes = demo_hyperparams(run_config.hyperparams)
            if changes:
                settings = ", ".join(f"{name}: {value}" for name, value in changes.items())
                budget = (
                    f" (fewer on long rows: the demo trains on {DEMO_TOKEN_BUDGET:,} tokens at most)"
                    if "max_steps" in changes
                    else ""
                )
                click.echo(
                    "# model.model_path is null, so a run trains the embedded demo model, with "
                    f"hyperparams {settings} in place of these defaults{budget}"
                )


@config.command(short_help="Check a config file; list every problem at once.")
@click.argument("file", type=click.Path(dir_okay=False))
def validate(file: str) -> None:
    """Check a config FILE; print every problem at once."""
    from trainer.config.loader import ConfigLoader

    ConfigLoader(file).load()
    click.echo(f"{file}: valid")


def _plain(value: Any) -> Any:
    """A field's value as JSON writes it: a list of sections (``data.mixture``) as a list of mappings."""
    if isinstance(value, list) and all(dataclasses.is_dataclass(item) for item in value):
        return [dataclasses.asdict(item) for item in value]
    return value
