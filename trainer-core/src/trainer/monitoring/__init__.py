"""Reporting a run's progress: status sinks and the JSON status file.

A status sink receives every progress event of a run. Sinks come from plugins
through the ``register_status_sinks`` hook; the core's status-file writer is one
of them.
"""

from trainer.monitoring.sinks import EVENTS, RunContext, StatusSink
from trainer.monitoring.status import STATUSES, TrainingStatusWriter

__all__ = ["EVENTS", "STATUSES", "RunContext", "StatusSink", "TrainingStatusWriter"]
