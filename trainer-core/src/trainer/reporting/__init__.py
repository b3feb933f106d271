"""Reading a run's output files back: the status view and the HTML/PNG report.

::

    from trainer.reporting import read_status, format_status, write_report
    print(format_status(read_status("outputs/run/status.json")))
    png, page = write_report("outputs/run")

Importing this package is light: no torch, and matplotlib only inside
:func:`plot_run` / :func:`write_report`.
"""

from __future__ import annotations

from trainer.reporting.report import REPORT_HTML, REPORT_PNG, plot_run, render_html, write_report
from trainer.reporting.run_files import (
    FINAL_STATUSES,
    METRICS_FILE,
    PREVIEWS_FILE,
    STATUS_FILE,
    RunFiles,
    follow_status,
    read_jsonl,
    read_run_files,
    read_status,
    read_status_text,
    resolve_status_path,
)
from trainer.reporting.status_view import format_status

__all__ = [
    "FINAL_STATUSES",
    "METRICS_FILE",
    "PREVIEWS_FILE",
    "REPORT_HTML",
    "REPORT_PNG",
    "STATUS_FILE",
    "RunFiles",
    "follow_status",
    "format_status",
    "plot_run",
    "read_jsonl",
    "read_run_files",
    "read_status",
    "read_status_text",
    "render_html",
    "resolve_status_path",
    "write_report",
]
