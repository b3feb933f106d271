"""Previews: generations on held-out prompts during training, judged by the profile.

Every ``inference.eval_steps`` steps (and before the first and after the last)
the model answers the same few prompts it never trains on. The profile decides
whether each answer follows its format (``parse_answer``) and whether it is
right (``check_answer``), so a run reports format rate and accuracy over time,
not only a loss.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trainer.conversation.model import Conversation
from trainer.data.conversation import build_conversation
from trainer.profiles.base import DataProfile, InvalidExampleError, Message


@dataclass(frozen=True)
class PreviewPrompt:
    """One held-out example: the conversation up to the reply, its tools, and the answer expected."""

    messages: list[Message]
    expected: str | None
    tools: list[dict[str, Any]] | None = None


def preview_prompts(
    rows: Iterable[Mapping[str, Any]],
    profile: DataProfile,
    system_prompt: str,
    stop_sequences: list[str],
    count: int,
) -> list[PreviewPrompt]:
    """The first ``count`` rows the profile can render, as prompts without their reply."""
    prompts: list[PreviewPrompt] = []
    for row in rows:
        if len(prompts) == count:
            break
        try:
            conversation = build_conversation(
                profile, row, system_prompt, stop_sequences, allow_consecutive_assistant=True
            )
        except InvalidExampleError:
            continue  # the training data's report counts invalid rows; a preview just skips them
        prompts.append(
            PreviewPrompt(
                messages=conversation.messages[:-1],
                expected=profile.expected_answer(row),
                tools=conversation.tools,
            )
        )
    return prompts


class PreviewRunner:
    """Generates for the preview prompts and scores the answers with the profile."""

    def __init__(
        self,
        prompts: list[PreviewPrompt],
        profile: DataProfile,
        tokenizer: Any,
        stop_sequences: list[str],
        max_new_tokens: int,
        temperature: float,
    ) -> None:
        self.prompts = prompts
        self.profile = profile
        self.tokenizer = tokenizer
        self.stop_sequences = stop_sequences
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature

    def run(self, model: Any, step: int) -> dict[str, Any]:
        """One preview round at ``step``: every sample, the format rate and the accuracy."""
        from trainer.generation import generate_batch

        started = time.perf_counter()
        was_training = model.training
        model.eval()
        try:
            texts = generate_batch(
                model,
                self.tokenizer,
                [Conversation(prompt.messages, prompt.tools) for prompt in self.prompts],
                stop_sequences=self.stop_sequences,
                penalized_strings=self.profile.penalized_strings,
                max_new_tokens=self.max_new_tokens,
                temperature=self.temperature,
            )
        finally:
            model.train(was_training)
        samples = [self._judge(prompt, text) for prompt, text in zip(self.prompts, texts, strict=True)]
        scored = [sample["correct"] for sample in samples if sample["correct"] is not None]
        return {
            "step": step,
            "format_rate": sum(sample["format_ok"] for sample in samples) / len(samples),
            "accuracy": sum(scored) / len(scored) if scored else None,
            "seconds": round(time.perf_counter() - started, 3),
            "samples": samples,
        }

    def _judge(self, prompt: PreviewPrompt, text: str) -> dict[str, Any]:
        user_turns = [m["content"] for m in prompt.messages if m["role"] == "user"]
        sample = {
            "prompt": user_turns[-1] if user_turns else "",
            "expected": prompt.expected,
            "generated": text,
            "format_ok": self.profile.parse_answer(text) is not None,
            "correct": None if prompt.expected is None else self.profile.check_answer(text, prompt.expected),
        }
        if prompt.tools:
            from trainer.conversation.tool_calls import parse_tool_calls

            calls = parse_tool_calls(text)
            sample["tool_calls"] = None if calls is None else [call["function"] for call in calls]
        return sample


class MixedPreviewRunner:
    """Previews of a data mixture: each source's prompts, judged by that source's profile.

    A round's ``format_rate`` and ``accuracy`` cover every sample; ``sources``
    gives them per source, so a run shows which format the model is learning.
    """

    def __init__(self, runners: dict[str, PreviewRunner]) -> None:
        self.runners = runners

    def run(self, model: Any, step: int) -> dict[str, Any]:
        """One preview round of every source at ``step``."""
        started = time.perf_counter()
        samples: list[dict[str, Any]] = []
        sources: dict[str, dict[str, Any]] = {}
        for name, runner in self.runners.items():
            result = runner.run(model, step)
            samples += [{"source": name, **sample} for sample in result["samples"]]
            sources[name] = {
                "profile": runner.profile.name,
                "format_rate": result["format_rate"],
                "accuracy": result["accuracy"],
            }
        scored = [sample["correct"] for sample in samples if sample["correct"] is not None]
        return {
            "step": step,
            "format_rate": sum(sample["format_ok"] for sample in samples) / len(samples),
            "accuracy": sum(scored) / len(scored) if scored else None,
            "seconds": round(time.perf_counter() - started, 3),
            "sources": sources,
            "samples": samples,
        }


def preview_runner(
    sources: list[Any],
    rows: list[Any],
    tokenizer: Any,
    stop_sequences: list[str],
    inference: Any,
) -> PreviewRunner | MixedPreviewRunner | None:
    """The previews of a run: one runner for one source, a mixed one for several; None without prompts.

    :param sources: each with ``name``, ``profile`` and ``system_prompt``.
    :param rows: each source's preview rows (None for a source without).
    :param inference: the run's ``inference`` config section.
    """
    runners: dict[str, PreviewRunner] = {}
    for source, source_rows in zip(sources, rows, strict=True):
        if source_rows is None:
            continue
        prompts = preview_prompts(
            source_rows, source.profile, source.system_prompt, stop_sequences, inference.num_samples
        )
        if prompts:
            runners[source.name] = PreviewRunner(
                prompts,
                source.profile,
                tokenizer,
                stop_sequences,
                inference.max_new_tokens,
                inference.temperature,
            )
    if not runners:
        return None
    if len(sources) == 1:
        return next(iter(runners.values()))
    return MixedPreviewRunner(runners)
