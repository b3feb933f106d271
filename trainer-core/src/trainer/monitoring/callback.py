"""The transformers callback that turns ``Trainer`` events into status events."""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback

from trainer.monitoring.hub import StatusHub


class StatusCallback(TrainerCallback):
    """Reports training progress to a :class:`StatusHub` (main process only)."""

    def __init__(self, hub: StatusHub) -> None:
        self.hub = hub
        self.started = 0.0
        self.first_loss: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started = time.perf_counter()
        if state.is_world_process_zero:
            self.hub.emit("start", status="training", total_steps=state.max_steps, step=state.global_step)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        tokens = getattr(state, "num_input_tokens_seen", 0) or 0
        fields: dict[str, Any] = {
            "step": state.global_step,
            "epoch": round(state.epoch or 0.0, 4),
            "tokens_seen": tokens,
            "tokens_per_second": round(tokens / elapsed, 1) if tokens else None,
            "elapsed_seconds": round(elapsed, 1),
        }
        if "loss" in logs:
            fields["loss"] = logs["loss"]
            if self.first_loss is None:
                self.first_loss = logs["loss"]
                fields["first_loss"] = logs["loss"]
        if "learning_rate" in logs:
            fields["learning_rate"] = logs["learning_rate"]
        if "eval_loss" in logs:
            fields["eval_loss"] = logs["eval_loss"]
            self.hub.emit("evaluate", status="training", **fields)
        elif "loss" in logs:
            self.hub.emit("log", status="training", **fields)
        else:  # the end-of-training summary: keep its numbers, the "end" event reports them
            self.hub.state.update(fields)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            checkpoint = f"{args.output_dir}/checkpoint-{state.global_step}"
            self.hub.emit("checkpoint", last_checkpoint=checkpoint, step=state.global_step)
