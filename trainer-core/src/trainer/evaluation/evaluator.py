"""Evaluating a model on a whole dataset: batched generation, judged row by row by the profile.

The rows are taken in windows of consecutive rows. Within a window they are
sorted by prompt length and cut into batches, so a batch pads little; the
window's records are then written in row order (:mod:`trainer.evaluation.results`).
Each record holds the prompt, the expected answer, the generation, the parsed
answer, whether it follows the format and is right, its token count and why it
stopped. :func:`summarize` turns the records into the numbers a run reports.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainer.evaluation.decode import Decoded, DecodeSettings, decode_batch
from trainer.evaluation.items import EvalItem
from trainer.evaluation.results import append_records, read_results
from trainer.evaluation.stats import majority, pass_at_k, wilson_interval
from trainer.profiles.base import DataProfile

WINDOW_BATCHES = 8
"""Batches per window: rows are sorted by length within a window of this many batches."""


@dataclass(frozen=True)
class EvalSettings:
    """How an evaluation generates: the batch size, the decoding and the samples per row."""

    batch_size: int = 16
    samples: int = 1
    decode: DecodeSettings = DecodeSettings()

    @property
    def window(self) -> int:
        """Rows per window."""
        return self.batch_size * WINDOW_BATCHES

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON data, to check that ``--resume`` continues the same evaluation."""
        decode = {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in asdict(self.decode).items()
        }
        return {"batch_size": self.batch_size, "samples": self.samples, **decode}


Progress = Callable[[int, int, float], None]
"""Called after each window with the rows done, the rows in all, and the seconds so far."""


class Evaluator:
    """Generates for evaluation items with one model and judges the replies with the profile."""

    def __init__(self, model: Any, tokenizer: Any, profile: DataProfile, settings: EvalSettings) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.profile = profile
        self.settings = settings

    def run(
        self,
        items: Sequence[EvalItem],
        output: Path,
        *,
        resume: bool = False,
        progress: Progress | None = None,
    ) -> tuple[list[dict[str, Any]], float]:
        """Evaluate ``items``, appending a record per row to ``output``.

        :param resume: keep the whole windows already in ``output`` and go on after them.
        :return: every record, in row order, and the seconds this call spent generating.
        """
        window = self.settings.window
        records = read_results(output, window, len(items)) if resume else []
        if not resume:
            output.write_text("", encoding="utf-8")
        started = time.perf_counter()
        for start in range(len(records), len(items), window):
            chunk = items[start : start + window]
            new = self.evaluate(chunk)
            append_records(output, new)
            records.extend(new)
            if progress is not None:
                progress(len(records), len(items), time.perf_counter() - started)
        return records, time.perf_counter() - started

    def evaluate(self, items: Sequence[EvalItem]) -> list[dict[str, Any]]:
        """The records of ``items``, in their order."""
        from trainer.data.chat_template import render_prompt

        samples = self.settings.samples
        jobs: list[tuple[int, int, str]] = []  # (item index, sample index, prompt)
        for index, item in enumerate(items):
            if item.error is not None:
                continue
            tools = None if item.tools is None else list(item.tools)
            prompt = render_prompt(list(item.messages), self.tokenizer, None, tools=tools)
            jobs.extend((index, sample, prompt) for sample in range(samples))
        lengths = {prompt: self._length(prompt) for *_, prompt in jobs}
        jobs.sort(key=lambda job: -lengths[job[2]])  # stable: equal lengths keep row order
        decoded: dict[tuple[int, int], Decoded] = {}
        size = self.settings.batch_size
        for batch_start in range(0, len(jobs), size):
            batch = jobs[batch_start : batch_start + size]
            seed = self.settings.decode.seed
            seeds = [seed + items[index].row * 1009 + sample for index, sample, _ in batch]
            prompts = [prompt for *_, prompt in batch]
            outputs = decode_batch(self.model, self.tokenizer, prompts, self.settings.decode, seeds)
            for (index, sample, _), result in zip(batch, outputs, strict=True):
                decoded[index, sample] = result
        return [
            self._record(item, [decoded[index, sample] for sample in range(samples)])
            if item.error is None
            else {"row": item.row, "error": item.error}
            for index, item in enumerate(items)
        ]

    def _length(self, prompt: str) -> int:
        return len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def _record(self, item: EvalItem, outputs: list[Decoded]) -> dict[str, Any]:
        judged = [self._judge(item, output) for output in outputs]
        record: dict[str, Any] = {"row": item.row, "prompt": item.prompt, "expected": item.expected}
        if len(judged) == 1:
            return {**record, **judged[0]}
        answers = [sample["parsed"] for sample in judged]
        voted = majority(answers)
        chosen = next((sample for sample in judged if sample["parsed"] == voted), judged[0])
        right = [sample["correct"] for sample in judged]
        return {
            **record,
            "parsed": voted,
            "format_ok": voted is not None,
            "correct": None if item.expected is None else bool(voted is not None and chosen["correct"]),
            "right_samples": None if item.expected is None else sum(bool(value) for value in right),
            "tokens": sum(sample["tokens"] for sample in judged),
            "samples": judged,
        }

    def _judge(self, item: EvalItem, output: Decoded) -> dict[str, Any]:
        text = output.text
        parsed = self.profile.parse_answer(text)
        sample: dict[str, Any] = {
            "generation": text,
            "parsed": parsed,
            "format_ok": parsed is not None,
            "correct": None if item.expected is None else self.profile.check_answer(text, item.expected),
            "tokens": output.tokens,
            "stop": output.stop,
        }
        if item.tools:
            from trainer.conversation.tool_calls import parse_tool_calls

            calls = parse_tool_calls(text)
            sample["tool_calls"] = None if calls is None else [call["function"] for call in calls]
        return sample


def summarize(records: Sequence[dict[str, Any]], seconds: float, samples: int = 1) -> dict[str, Any]:
    """The numbers of an evaluation: format rate, accuracy with its 95% interval, tokens, speed.

    :param seconds: the time spent generating (across resumed sessions).
    """
    evaluated = [record for record in records if "error" not in record]
    scored = [record for record in evaluated if record.get("correct") is not None]
    right = sum(bool(record["correct"]) for record in scored)
    formatted = sum(bool(record["format_ok"]) for record in evaluated)
    tokens = sum(int(record["tokens"]) for record in evaluated)
    generations = [sample for record in evaluated for sample in record.get("samples", [record])]
    low, high = wilson_interval(right, len(scored))
    summary: dict[str, Any] = {
        "rows": len(records),
        "evaluated": len(evaluated),
        "unrendered": [
            {"row": record["row"], "error": record["error"]} for record in records if "error" in record
        ],
        "format_rate": formatted / len(evaluated) if evaluated else None,
        "format_ok": formatted,
        "scored": len(scored),
        "correct": right,
        "accuracy": right / len(scored) if scored else None,
        "accuracy_interval": [low, high] if scored else None,
        "mean_generated_tokens": tokens / len(generations) if generations else None,
        "generated_tokens": tokens,
        "generated_tokens_per_second": tokens / seconds if seconds > 0 else None,
        "seconds": seconds,
        "stops": dict(Counter(str(sample["stop"]) for sample in generations)),
    }
    if samples > 1:
        counts = [int(record["right_samples"]) for record in scored]
        summary["samples"] = samples
        summary["accuracy_by"] = "majority vote"
        summary["pass@1"] = sum(pass_at_k(samples, c, 1) for c in counts) / len(counts) if counts else None
        summary[f"pass@{samples}"] = (
            sum(pass_at_k(samples, c, samples) for c in counts) / len(counts) if counts else None
        )
    return summary
