"""The training engine: ``from trainer.core import TrainerEngine``."""

from trainer.core.engine import RunResult, TrainerEngine

__all__ = ["RunResult", "TrainerEngine"]
