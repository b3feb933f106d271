"""``trainer report``: a run's curves, previews and settings as a PNG and an HTML page."""

from __future__ import annotations

import click


@click.command(short_help="Write a run's report (plot and HTML).")
@click.argument("output_dir", type=click.Path(file_okay=False))
def report(output_dir: str) -> None:
    """Write a run's report.png and report.html, and print their paths.

    OUTPUT_DIR is the run's output directory; both files are written into it.
    The plot shows training and evaluation loss and the previews' format rate
    and accuracy against the step; the page embeds it with the run's config,
    final metrics, data report and preview samples.
    """
    from trainer.reporting import write_report

    png, page = write_report(output_dir)
    click.echo(str(png))
    click.echo(str(page))
