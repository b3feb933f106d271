"""Built-in plugin: the JSON status file of every run."""

from __future__ import annotations

from collections.abc import Callable

from trainer.hookspecs import hookimpl
from trainer.monitoring.sinks import RunContext
from trainer.monitoring.status import TrainingStatusWriter


def status_file_sink(run: RunContext) -> TrainingStatusWriter:
    """A :class:`TrainingStatusWriter` on the run's status file."""
    return TrainingStatusWriter(run.status_file)


@hookimpl
def register_status_sinks(register: Callable[..., None]) -> None:
    """Register the status-file sink."""
    register(status_file_sink)
