"""``trainer suggest-profile``: which installed profile fits a dataset."""

from __future__ import annotations

import json
import shlex

import click

from trainer.cli.options import complete_paths
from trainer.cli.plugins_cmd import text_table
from trainer.errors import TrainerError


@click.command("suggest-profile", short_help="Rank the installed profiles for a dataset.")
@click.argument("dataset", shell_complete=complete_paths("file"))
@click.option(
    "-n",
    "--rows",
    "num_rows",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="How many rows, from the start, to try.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def suggest_profile(dataset: str, num_rows: int, as_json: bool) -> None:
    """Rank the installed profiles for DATASET and explain the ranking.

    Every installed profile renders the first rows. Profiles rank by the share of
    rows they render, then by how well they rate those rows (the data each
    profile says it is made for), then ahead of equals that do not say what
    they suit; profiles still equal share a rank (shown as 1=). DATASET is a
    .jsonl, .json, .csv or .parquet file, or a directory saved by datasets.
    """
    from trainer.data.sources import DatasetError, iter_rows
    from trainer.profiles.suggest import suggest_profiles

    try:
        rows = list(iter_rows(dataset, limit=num_rows))
    except DatasetError as exc:  # its fix names --dataset; this command takes an argument
        message = str(exc)
        if not message.endswith(" with --dataset"):
            raise
        raise DatasetError(
            message.removesuffix(" with --dataset") + ": trainer suggest-profile DATASET"
        ) from None
    if not rows:
        raise TrainerError(f"dataset '{dataset}' has no rows. Pass a dataset with at least one row")
    suggestions = suggest_profiles(rows)
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in suggestions], indent=2, ensure_ascii=False))
    else:
        sample = "the first row" if len(rows) == 1 else f"the first {len(rows)} rows"
        click.echo(f"sample: {sample} of {dataset}\n")
        table = [
            [
                f"{s.rank}=" if s.tied_with else str(s.rank),
                s.name,
                f"{s.rendered}/{s.rows}",
                "-" if s.rating is None else f"{s.rating:.2f}",
                s.reason(),
            ]
            for s in suggestions
        ]
        click.echo(text_table(table, ["RANK", "PROFILE", "RENDERS", "FIT", "WHY"]))
        click.echo("")
    best = suggestions[0] if suggestions else None
    if best is None or best.rendered == 0:
        raise TrainerError(
            f"no installed profile renders a row of '{dataset}' (see WHY above). Give the rows the "
            "fields a profile reads, or install a profile for this layout"
        )
    if as_json:
        return
    tied = [best.name, *best.tied_with]
    if len(tied) > 1:
        click.echo(
            f"{', '.join(tied[:-1])} and {tied[-1]} fit equally well; they differ in the target format "
            "they teach (see trainer profiles). Compare them with:"
        )
    else:
        click.echo(f"Best fit: {best.name}. See how it renders the rows with:")
    for name in tied:
        click.echo(f"  trainer preview --profile {name} --dataset {shlex.quote(dataset)}")
