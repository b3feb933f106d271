"""What a finished run leaves besides its model: the run record, the report, the output's size."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from trainer.config import TrainerConfig


def write_run_report(output_dir: Path, on_message: Callable[[str], None]) -> None:
    """Write report.png and report.html; a failure is a warning, never a failed run."""
    try:
        from trainer.reporting import write_report

        png, html = write_report(output_dir)
    except Exception as exc:  # the model is saved; a report problem must not fail the run
        on_message(f"warning: the run report was not written: {exc}")
        return
    on_message(f"Report: {html} (plot: {png})")


def run_info(
    config: TrainerConfig, hyper: Any, demo: bool, report: Any, metrics: dict[str, Any]
) -> dict[str, Any]:
    """``trainer_run.json``: the resolved config, the versions, the data report and the metrics."""
    from trainer.plugins import get_plugins

    resolved = replace(config, hyperparams=hyper)
    versions: dict[str, Any] = {
        "trainer-core": version_of("trainer-core"),
        "transformers": version_of("transformers"),
        "torch": version_of("torch"),
        "datasets": version_of("datasets"),
        "plugins": {},
    }
    for info in get_plugins().infos:
        if info.status == "loaded" and info.distribution:
            versions["plugins"][info.distribution] = info.version
    return {
        "config": resolved.to_dict(),
        "versions": versions,
        "demo_model": demo,
        "data": report.to_dict() if hasattr(report, "to_dict") else None,
        "metrics": metrics,
    }


def output_size(directory: Path) -> int:
    """Bytes of the files under ``directory``."""
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def version_of(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None
