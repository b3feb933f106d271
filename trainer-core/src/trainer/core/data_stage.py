"""The data half of a run: rows read and split, then tokenized into training sets and a report.

The engine calls :func:`load_rows` before the training arguments exist (they need to
know whether there is a validation set) and :func:`tokenize` after (on several
processes the main one tokenizes first, the others read datasets' cache).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.config import TrainerConfig
from trainer.core.paths import source


@dataclass
class RunRows:
    """The raw rows of a run, split three ways."""

    train: Any
    """Rows to train on."""
    validation: Any
    """Rows for ``eval_loss``: the validation file or split, or None."""
    previews: Any
    """Rows the previews are generated from, never trained on; None when previews are off."""


@dataclass
class RunData:
    """Tokenized sets ready for ``Trainer`` and the report on them."""

    train_set: Any
    eval_set: Any
    report: Any


def load_rows(
    config: TrainerConfig, base_dir: Path, profile: Any, seed: int, on_message: Callable[[str], None]
) -> RunRows:
    """Read the dataset (or the profile's or the built-in sample), check it, hold back preview rows."""
    from trainer.data.pipeline import load_raw_datasets
    from trainer.profiles.compose import check_on_rows

    data = config.data
    dataset_path = None if data.dataset_path is None else source(base_dir, data.dataset_path)
    if dataset_path is None and (own_sample := profile.default_dataset()):
        dataset_path = own_sample
        on_message(f"No dataset given: using the sample that profile '{profile.name}' ships")
    elif dataset_path is None:
        on_message("No dataset given: using the built-in sample dataset (arithmetic word problems)")
    train_rows, eval_rows = load_raw_datasets(
        dataset_path,
        validation_path=None if data.validation_path is None else source(base_dir, data.validation_path),
        validation_split=data.validation_split,
        seed=seed,
        example_limit=config.debug.example_limit,
    )
    check_on_rows(profile, _first_rows(train_rows))
    inference = config.inference
    preview_rows, train_rows = _preview_rows(
        train_rows, eval_rows, inference.eval_steps, inference.num_samples
    )
    if preview_rows is None and inference.eval_steps > 0:
        on_message("Too few rows to hold some back for previews: previews are off for this run")
    elif preview_rows is not None and eval_rows is None:
        on_message(f"Holding back the last {len(preview_rows)} rows for previews (never trained on)")
    return RunRows(train=train_rows, validation=eval_rows, previews=preview_rows)


def tokenize(
    rows: RunRows,
    config: TrainerConfig,
    *,
    tokenizer: Any,
    profile: Any,
    stops: list[str],
    hyper: Any,
) -> RunData:
    """Render and tokenize the rows; pack them or group them by length; fill the data report."""
    from trainer.data.pipeline import pack_dataset, prepare_dataset

    data = config.data
    max_length = min(data.max_length, config.model.max_context_length)
    prepare = dict(
        tokenizer=tokenizer,
        profile=profile,
        system_prompt=config.profile.system_prompt,
        stop_sequences=stops,
        max_length=max_length,
        overlength=data.overlength,
        skip_invalid=data.skip_invalid,
        num_proc=data.num_proc,
        trained_turns=data.trained_turns,
        allow_consecutive_assistant=data.allow_consecutive_assistant,
    )
    train_set, report = prepare_dataset(rows.train, **prepare)
    if rows.previews is not None and rows.validation is None:
        report.held_back = len(rows.previews)
        report.rows_read += len(rows.previews)
    eval_set = None
    if rows.validation is not None:
        eval_set, report.validation = prepare_dataset(rows.validation, **prepare)
    if data.packing:
        train_set = pack_dataset(train_set, max_length, report=report)
    else:
        train_set = _batch_by_length(train_set, report, hyper, data.group_by_length)
        if eval_set is not None:
            eval_set = pack_dataset(eval_set, max_length)
    return RunData(train_set=train_set, eval_set=eval_set, report=report)


def final_eval_items(config: TrainerConfig, base_dir: Path, profile: Any, stops: list[str]) -> Any:
    """The rows of ``inference.eval_dataset``, read and checked before training; None without one."""
    inference = config.inference
    if inference.eval_dataset is None:
        return None
    from trainer.evaluation.final import prepare_final_eval

    return prepare_final_eval(
        source(base_dir, inference.eval_dataset),
        inference.eval_limit,
        profile,
        config.profile.system_prompt,
        stops,
    )


def _batch_by_length(train_set: Any, report: Any, hyper: Any, grouped: bool) -> Any:
    """``train_set`` ready for batches grouped by length (when ``grouped``); the report's padding share."""
    from trainer.data.batching import padding_waste, with_lengths
    from trainer.data.packing import example_lengths

    lengths = example_lengths(train_set)
    group = hyper.batch_size * hyper.gradient_accumulation_steps if grouped else None
    report.padding_waste = round(padding_waste(lengths, hyper.batch_size, hyper.seed, group_size=group), 4)
    report.grouped_by_length = grouped
    return with_lengths(train_set, lengths) if grouped else train_set


def _first_rows(rows: Any) -> list[tuple[int, dict[str, Any]]]:
    """The first rows of a loaded dataset, numbered, for ``check_on_rows``; fields left empty are dropped."""
    from trainer.data.loading import ROW_COLUMN
    from trainer.profiles.compose import CHECKED_ROWS

    first = rows.select(range(min(CHECKED_ROWS, len(rows)))).to_list()
    return [(row.pop(ROW_COLUMN), {k: v for k, v in row.items() if v is not None}) for row in first]


def _preview_rows(train_rows: Any, eval_rows: Any, eval_steps: int, count: int) -> tuple[Any, Any]:
    """Rows for previews (never trained on) and the training rows left.

    Validation rows when there are some; otherwise the last ``count`` training
    rows are held back, if that leaves at least as many to train on.
    """
    if eval_steps <= 0:
        return None, train_rows
    if eval_rows is not None and len(eval_rows):
        return eval_rows, train_rows
    total = len(train_rows)
    if total < 2 * count:
        return None, train_rows
    return train_rows.select(range(total - count, total)), train_rows.select(range(total - count))
