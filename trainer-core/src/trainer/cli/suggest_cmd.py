"""``trainer suggest-profile``: which installed profile fits a dataset, or each of several."""

from __future__ import annotations

import json
import shlex
from typing import Any

import click

from trainer.cli.options import complete_paths
from trainer.cli.plugins_cmd import text_table
from trainer.errors import TrainerError


@click.command("suggest-profile", short_help="Rank the installed profiles for a dataset.")
@click.argument(
    "datasets", metavar="DATASET...", nargs=-1, required=True, shell_complete=complete_paths("file")
)
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
def suggest_profile(datasets: tuple[str, ...], num_rows: int, as_json: bool) -> None:
    """Rank the installed profiles for DATASET and explain the ranking.

    Every installed profile renders the first rows. Profiles rank by the share of
    rows they render, then by how well they rate those rows (the data each
    profile says it is made for), then ahead of equals that do not say what
    they suit; profiles still equal share a rank (shown as 1=). DATASET is a
    .jsonl, .json, .csv or .parquet file, or a directory saved by datasets.

    Given several datasets, ranks the profiles for each, then proposes a data
    mixture: a config file's data.mixture lines and the same as --dataset
    options, each dataset read by its best profile, with equal weights.
    """
    repeated = sorted({name for name in datasets if datasets.count(name) > 1})
    if repeated:
        raise TrainerError(f"dataset '{repeated[0]}' is given twice. Name each dataset once")
    ranked = {dataset: _rank(dataset, num_rows) for dataset in datasets}
    if as_json:
        _echo_json(ranked)
    else:
        for dataset, (sample, suggestions) in ranked.items():
            _echo_table(dataset, sample, suggestions)
    for dataset, (_, suggestions) in ranked.items():
        if not suggestions or suggestions[0].rendered == 0:
            raise TrainerError(
                f"no installed profile renders a row of '{dataset}' (see WHY above). Give the rows the "
                "fields a profile reads, or install a profile for this layout"
            )
    if as_json:
        return
    if len(datasets) == 1:
        _echo_best(datasets[0], ranked[datasets[0]][1])
    else:
        _echo_mixture(ranked)


def _rank(dataset: str, num_rows: int) -> tuple[int, list[Any]]:
    """How many rows were sampled, and the installed profiles ranked on them."""
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
    return len(rows), suggest_profiles(rows)


def _echo_json(ranked: dict[str, tuple[int, list[Any]]]) -> None:
    """One dataset: its ranking. Several: each one's ranking and the proposed mixture."""
    from trainer.profiles.suggest import propose_mixture

    rankings = {dataset: [s.to_dict() for s in suggestions] for dataset, (_, suggestions) in ranked.items()}
    if len(ranked) == 1:
        shown: Any = next(iter(rankings.values()))
    else:
        try:
            mixture = [source.to_dict() for source in propose_mixture({d: s for d, (_, s) in ranked.items()})]
        except ValueError:  # a dataset no profile renders: the error follows the JSON
            mixture = None
        shown = {"datasets": rankings, "mixture": mixture}
    click.echo(json.dumps(shown, indent=2, ensure_ascii=False))


def _echo_table(dataset: str, sample: int, suggestions: list[Any]) -> None:
    rows = "the first row" if sample == 1 else f"the first {sample} rows"
    click.echo(f"sample: {rows} of {dataset}\n")
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


def _echo_best(dataset: str, suggestions: list[Any]) -> None:
    best = suggestions[0]
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


def _echo_mixture(ranked: dict[str, tuple[int, list[Any]]]) -> None:
    """The proposed mixture as config lines and as --dataset options, and how to preview it."""
    from trainer.config.mixture import dataset_flag
    from trainer.profiles.suggest import mixture_yaml, propose_mixture

    proposal = propose_mixture({dataset: suggestions for dataset, (_, suggestions) in ranked.items()})
    for source in proposal:
        tied = f" (as good: {', '.join(source.equally_good)})" if source.equally_good else ""
        click.echo(f"Best fit for {source.path}: {source.profile}{tied}")
    click.echo(
        f"\nA mixture of the {len(proposal)} datasets, each read by its best fit, drawn with equal "
        "weights (a source's share of the examples is its weight over their sum); for a config file:\n"
    )
    click.echo(mixture_yaml(proposal))
    if any(source.name is not None for source in proposal):
        click.echo(
            "Two datasets share a file name, so the sources need the names above: the command line "
            "cannot give them, use the config file."
        )
        return
    flags = " ".join(
        f"--dataset {shlex.quote(dataset_flag(source.path, source.profile, source.weight))}"
        for source in proposal
    )
    click.echo(f"Or on the command line:\n  trainer run {flags}")
    click.echo(f"See how each source renders with:\n  trainer preview {flags}")
