"""``trainer new-profile``: start a profile package."""

from __future__ import annotations

import click


@click.command(name="new-profile", short_help="Write a new profile package, ready to install.")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where to create trainer-profile-NAME.",
)
def new_profile(name: str, directory: str) -> None:
    """Write a complete profile package, trainer-profile-NAME, that passes its tests as generated."""
    from trainer import __version__
    from trainer.scaffold import new_profile as write_package

    root = write_package(name, directory, core_version=".".join(__version__.split(".")[:2]))
    click.echo(f"Created {root}")
    click.echo(f"Next: pip install -e {root} && trainer profiles && pytest {root}/tests")
