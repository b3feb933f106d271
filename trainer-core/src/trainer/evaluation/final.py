"""The evaluation after training (``inference.eval_dataset``): ``eval.jsonl``, ``eval.json`` and the status.

The rows are read and rendered before training starts, so a missing file or a
dataset the profile cannot render fails the run at once, not after the last
step. After the final model is saved, :func:`evaluate_after_training` judges it
on every row, as ``trainer eval`` would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.errors import TrainerError
from trainer.evaluation.items import EvalItem, eval_items

RESULTS_FILE = "eval.jsonl"
"""The evaluation's per-row results in a run's output directory."""
SUMMARY_FILE = "eval.json"
"""The evaluation's summary in a run's output directory."""

STATUS_FIELDS = (
    "dataset",
    "rows",
    "evaluated",
    "format_rate",
    "accuracy",
    "accuracy_interval",
    "scored",
    "correct",
)
"""What the status file's ``final_eval`` holds."""


def prepare_final_eval(
    source: str, limit: int | None, profile: Any, system_prompt: str, stop_sequences: list[str]
) -> list[EvalItem]:
    """The rows of ``source`` as evaluation items.

    :raises TrainerError: the dataset cannot be read, or the profile renders none of its rows.
    """
    from trainer.data.sources import DatasetError, iter_rows

    try:
        items = eval_items(iter_rows(source, limit=limit), profile, system_prompt, stop_sequences)
    except DatasetError as exc:
        raise TrainerError(f"inference.eval_dataset: {exc}") from None
    if not items or all(item.error is not None for item in items):
        first = f" (row {items[0].row}: {items[0].error})" if items else ""
        raise TrainerError(
            f"inference.eval_dataset '{source}': profile '{profile.name}' renders none of its "
            f"{len(items)} rows{first}; give a dataset in the profile's layout, or set it to null"
        )
    return items


def evaluate_after_training(
    model: Any,
    tokenizer: Any,
    profile: Any,
    items: list[EvalItem],
    output_dir: Path,
    *,
    source: str,
    batch_size: int,
    stop_sequences: list[str],
    max_new_tokens: int,
    temperature: float,
    seed: int,
) -> dict[str, Any]:
    """Judge the trained ``model`` on ``items``; write ``eval.jsonl`` and ``eval.json``.

    :return: the summary (:func:`trainer.evaluation.evaluator.summarize`) with the dataset named.
    """
    from trainer.evaluation.decode import DecodeSettings
    from trainer.evaluation.evaluator import EvalSettings, Evaluator, summarize
    from trainer.evaluation.results import write_json

    settings = EvalSettings(
        batch_size=batch_size,
        decode=DecodeSettings(
            stop_sequences=tuple(stop_sequences),
            penalized_strings=tuple(profile.penalized_strings),
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            seed=seed,
        ),
    )
    was_training = model.training
    model.eval()
    try:
        records, seconds = Evaluator(model, tokenizer, profile, settings).run(
            items, output_dir / RESULTS_FILE
        )
    finally:
        model.train(was_training)
    summary = {"dataset": source, "output": str(output_dir / RESULTS_FILE), **summarize(records, seconds)}
    write_json(
        output_dir / SUMMARY_FILE, {"settings": {"profile": profile.name, **settings.to_dict()}, **summary}
    )
    return summary


def status_fields(summary: dict[str, Any]) -> dict[str, Any]:
    """The part of the summary the status file keeps as ``final_eval``."""
    return {name: summary.get(name) for name in STATUS_FIELDS}
