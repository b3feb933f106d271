"""``trainer status``: a readable view of a run's status file, once or until the run ends."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from trainer.config import OutputConfig


@click.command(short_help="Show a run's progress, loss, speed and previews.")
@click.argument("path", required=False, type=click.Path(), default=OutputConfig().output_dir)
@click.option("--watch", is_flag=True, help="Refresh until the run completes, fails, is interrupted or dies.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the status file's JSON with its derived liveness (with --watch, a line per change).",
)
def status(path: str, watch: bool, interval: float, as_json: bool) -> int:
    """Show a run's progress, loss, speed and latest previews.

    PATH is the run's output directory or its status file (default: outputs/run).
    A run said to be starting or training shows as died when its process on this
    host is gone, and as stale when its heartbeat stopped.
    With --watch, exits 0 once the run completes or is interrupted, 1 if it fails or dies.
    """
    from trainer.monitoring.status import liveness
    from trainer.reporting import follow_status, read_status, resolve_status_path

    status_file, output_dir = resolve_status_path(path)
    if not watch:
        once = read_status(status_file)
        if as_json:
            click.echo(json.dumps({**once, "liveness": liveness(once).verdict}, indent=2))
        else:
            click.echo(_view(once, status_file, output_dir))
        return 0

    state = None
    for state in follow_status(status_file, interval):
        if state is None:
            click.echo(f"waiting for {status_file} (the run has not written it yet) ...", err=as_json)
        elif as_json:
            click.echo(json.dumps({**state, "liveness": liveness(state).verdict}))
        else:
            click.clear()  # a no-op unless stdout is a terminal: in a log, the views follow each other
            click.echo(_view(state, status_file, output_dir) + "\n")
    if state is None:
        return 0
    return 1 if state.get("status") == "failed" or liveness(state).verdict == "died" else 0


def _view(state: dict[str, Any], status_file: Path, output_dir: Path) -> str:
    from trainer.reporting import METRICS_FILE, format_status, read_jsonl

    return format_status(
        state,
        status_file=status_file,
        metrics=read_jsonl(output_dir / METRICS_FILE),
        unicode=_can_print("▁█⏎…"),
    )


def _can_print(text: str) -> bool:
    """Whether stdout's encoding has these characters (a pipe on Windows may not)."""
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
