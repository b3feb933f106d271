"""The transformers callback that turns ``Trainer`` events into status events."""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from trainer.monitoring.hub import StatusHub


def peak_memory_mb() -> float:
    """Peak GPU memory allocated, or peak resident memory of this process on CPU, in MiB."""
    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


ETA_AFTER_STEPS = 2
"""Steps past the first logged one before the status gives an ETA."""


class StatusCallback(TrainerCallback, ExportableState):
    """Reports training progress to a :class:`StatusHub` (main process only).

    What a resumed run must not forget (the first loss, the time spent before) is
    saved with each checkpoint, in ``trainer_state.json``'s ``stateful_callbacks``,
    and read back when training resumes from it: the status then counts the whole
    run, while tokens/s and the ETA count the steps of this process.
    """

    def __init__(self, hub: StatusHub, sequence_length: float = 0.0, head_share: float = 1.0) -> None:
        """:param sequence_length: the mean tokens of a training sequence, and
        :param head_share: the share of tokens with a label, both for the model FLOPs of a token."""
        self.hub = hub
        self.started = 0.0
        self.first_loss: float | None = None
        self.sequence_length = sequence_length
        self.head_share = head_share
        self.flops_per_token = 0.0
        self.peak_flops: float | None = None
        self.mark: tuple[int, float] | None = None
        """The first step logged in this process and when: the ETA counts from there."""
        self.tokens_before = 0
        self.seconds_before = 0.0
        """Training time of the processes before this one (a resumed run)."""
        self.resumed_from: int | None = None

    def state(self) -> dict[str, Any]:
        """Saved with each checkpoint: what the run so far measured."""
        return {
            "args": {},
            "attributes": {
                "first_loss": self.first_loss,
                "seconds_before": round(
                    self.seconds_before + (self._elapsed(time.perf_counter()) if self.started else 0.0), 3
                ),
            },
        }

    def _elapsed(self, now: float) -> float:
        """Seconds of training in this process."""
        return max(now - self.started, 1e-9)

    def _restore(self, state: Any) -> None:
        """Resuming from a checkpoint: read back the first loss and the time spent before it."""
        self.resumed_from = state.global_step
        stored = getattr(state, "stateful_callbacks", None)
        if not isinstance(stored, dict):
            stored = state.stateful_callbacks = {}
        # A checkpoint saved before this callback kept a state has no entry; the next save needs one.
        saved = stored.setdefault(type(self).__name__, {"args": {}, "attributes": {}})
        if isinstance(saved, list):  # transformers keeps a list when there were several
            saved = saved[-1] if saved else {}
        attributes = saved.get("attributes", {})
        self.seconds_before = float(attributes.get("seconds_before") or 0.0)
        self.first_loss = attributes.get("first_loss")
        if self.first_loss is None:  # a checkpoint from before this was saved: its log has it
            logged = [entry["loss"] for entry in getattr(state, "log_history", []) if "loss" in entry]
            self.first_loss = logged[0] if logged else None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self._measure(args, kwargs.get("model"))
        self.started = time.perf_counter()
        # A resumed run starts with the tokens of the steps before: its speed is this process's.
        self.tokens_before = getattr(state, "num_input_tokens_seen", 0) or 0
        if state.global_step > 0:
            self._restore(state)
        if state.is_world_process_zero:
            peak = round(self.peak_flops / 1e12, 3) if self.peak_flops else None
            self.hub.emit(
                "start",
                status="training",
                total_steps=state.max_steps,
                step=state.global_step,
                peak_tflops=peak,
                first_loss=self.first_loss,
                resumed_from_step=self.resumed_from,
            )

    def _measure(self, args: Any, model: Any) -> None:
        """The model's FLOPs per token and the device's peak, for MFU."""
        if model is None:
            return
        import torch

        from trainer.models.flops import peak_flops, training_flops_per_token

        dtype = torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else torch.float32
        self.flops_per_token = training_flops_per_token(model, self.sequence_length, self.head_share)
        peak = peak_flops(args.device, dtype)
        # The tokens counted are every process's; so is the peak.
        self.peak_flops = None if peak is None else peak * max(1, args.world_size)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        now = time.perf_counter()
        elapsed = self._elapsed(now)
        tokens = getattr(state, "num_input_tokens_seen", 0) or 0
        step, total = state.global_step, state.max_steps
        fields: dict[str, Any] = {
            "step": step,
            "epoch": round(state.epoch or 0.0, 4),
            "tokens_seen": tokens,
            "tokens_per_second": round((tokens - self.tokens_before) / elapsed, 1) if tokens else None,
            "mfu": self._mfu((tokens - self.tokens_before) / elapsed),
            "elapsed_seconds": round(self.seconds_before + elapsed, 1),
            "eta_seconds": self._eta(step, total, now),
            "peak_memory_mb": peak_memory_mb(),
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

    def _eta(self, step: int, total: int | None, now: float) -> float | None:
        """Seconds left, at the pace of the steps since the first one logged in this process.

        The first step (warm-up, a resumed run's restore) is left out; until two more
        have run there is no estimate.
        """
        if self.mark is None:
            self.mark = (step, now)
        done = step - self.mark[0]
        if not total or done < ETA_AFTER_STEPS:
            return None
        return round((now - self.mark[1]) / done * (total - step), 1)

    def _mfu(self, tokens_per_second: float) -> float | None:
        from trainer.models.flops import mfu

        share = mfu(tokens_per_second, self.flops_per_token, self.peak_flops)
        return None if share is None else round(share, 4)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            checkpoint = f"{args.output_dir}/checkpoint-{state.global_step}"
            self.hub.emit("checkpoint", last_checkpoint=checkpoint, step=state.global_step)


class PreviewCallback(TrainerCallback):
    """Runs a preview round before training, every ``every`` steps, and after the last step."""

    def __init__(self, runner: Any, hub: StatusHub, every: int) -> None:
        self.runner = runner
        self.hub = hub
        self.every = every
        self.history: list[dict[str, Any]] = []
        self.seconds = 0.0
        self.last_step: int | None = None
        self.trainer: Any = None
        """Set once the ``Trainer`` exists, so rounds reach its metric loggers too."""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._round(state, kwargs.get("model"))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.every == 0:
            self._round(state, kwargs.get("model"))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step != self.last_step:
            self._round(state, kwargs.get("model"))

    def _round(self, state: Any, model: Any) -> None:
        if not state.is_world_process_zero or model is None:
            return
        result = self.runner.run(model, state.global_step)
        self.last_step = state.global_step
        self.seconds += result["seconds"]
        summary = {key: result[key] for key in ("step", "format_rate", "accuracy")}
        if "sources" in result:  # a data mixture: each source's rates
            summary["sources"] = {
                name: {"format_rate": rates["format_rate"], "accuracy": rates["accuracy"]}
                for name, rates in result["sources"].items()
            }
        self.history.append(summary)
        self.hub.emit(
            "preview",
            previews=result,
            preview_history=list(self.history),
            preview_seconds=round(self.seconds, 2),
        )
        self._to_metric_loggers(result)

    def _to_metric_loggers(self, result: dict[str, Any]) -> None:
        if self.trainer is None or not self.trainer.args.report_to:
            return
        metrics = {"preview/format_rate": result["format_rate"]}
        if result["accuracy"] is not None:
            metrics["preview/accuracy"] = result["accuracy"]
        for name, rates in result.get("sources", {}).items():
            metrics[f"preview/{name}/format_rate"] = rates["format_rate"]
            if rates["accuracy"] is not None:
                metrics[f"preview/{name}/accuracy"] = rates["accuracy"]
        self.trainer.log(metrics)
        text = "\n\n".join(
            f"**prompt:** {s['prompt']}\n\n**expected:** {s['expected']}\n\n"
            f"**generated:** {s['generated']}\n\nformat_ok={s['format_ok']} correct={s['correct']}"
            for s in result["samples"]
        )
        for callback in self.trainer.callback_handler.callbacks:
            writer = getattr(callback, "tb_writer", None)
            if writer is not None:
                writer.add_text("previews", text, result["step"])


def guarded(callback: Any, name: str, hub: StatusHub) -> TrainerCallback:
    """``callback`` wrapped so that an exception in any of its events disables it.

    The error is recorded under ``sink_errors`` in the status, with one warning;
    training goes on. A monitoring bug must never cost a training run.
    """
    return _Guarded(callback, name, hub)


class _Guarded(TrainerCallback):
    def __init__(self, inner: Any, name: str, hub: StatusHub) -> None:
        self.inner = inner
        self.name = name
        self.hub = hub
        self.disabled = False

    def _call(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if self.disabled:
            return None
        try:
            return getattr(self.inner, event)(*args, **kwargs)
        except Exception as exc:  # the plugin's bug, not the run's
            self.disabled = True
            self.hub.record_error(f"callback {self.name}", f"{type(exc).__name__} in {event}: {exc}")
            return None


def _forward(event: str) -> Any:
    def method(self: _Guarded, *args: Any, **kwargs: Any) -> Any:
        return self._call(event, *args, **kwargs)

    method.__name__ = event
    return method


for _event in [name for name in vars(TrainerCallback) if name.startswith("on_")]:
    setattr(_Guarded, _event, _forward(_event))
