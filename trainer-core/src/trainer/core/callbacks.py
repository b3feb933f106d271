"""Training callbacks of the engine's own."""

from __future__ import annotations

import signal
from typing import Any

from transformers import TrainerCallback

from trainer.core.interrupt import StopRequest


class StopOnRequestCallback(TrainerCallback):
    """Ends training after the step in which a stop was requested, saving a checkpoint first.

    With several processes, every process learns of the request at the same step
    (an all-reduce of the flag), so none waits forever for the others.
    """

    def __init__(self, request: StopRequest) -> None:
        self.request = request

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self._requested_anywhere(args.device):
            control.should_save = True
            control.should_training_stop = True
        return control

    def _requested_anywhere(self, device: Any) -> bool:
        import torch
        import torch.distributed as dist

        requested = self.request.signum is not None
        if dist.is_available() and dist.is_initialized():
            # On the training device: NCCL reduces only CUDA tensors.
            flag = torch.tensor([1 if requested else 0], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            if flag.item() and self.request.signum is None:
                self.request.signum = signal.SIGTERM  # another process was told to stop
            return bool(flag.item())
        return requested


class NoFinalCheckpointCallback(TrainerCallback):
    """Skips the checkpoint transformers saves after the last step: a completed run needs none.

    Checkpoints due by ``output.save_steps`` are still saved during training.
    """

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        due = args.save_steps and state.global_step % args.save_steps == 0
        if state.max_steps and state.global_step >= state.max_steps and not due:
            control.should_save = False
        return control
