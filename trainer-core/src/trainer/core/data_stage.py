"""The data half of a run: sources read and split, then tokenized into training sets and a report.

A run reads one source (``data.dataset_path`` through ``profile.name``) or several
(``data.mixture``), each through its own profile. The engine calls
:func:`resolve_sources` and :func:`load_rows` before the training arguments exist
(they need to know whether there is a validation set) and :func:`tokenize` after
(on several processes the main one tokenizes first, the others read datasets' cache).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.config import TrainerConfig
from trainer.core.paths import source as resolve_source
from trainer.errors import TrainerError


@dataclass
class Source:
    """One dataset of the run and the profile that reads it."""

    name: str
    label: str
    """How messages name it: ``source 'tools' (data.mixture[1])``; empty for a run of one source."""
    profile_name: str
    profile: Any
    system_prompt: str
    stops: list[str]
    """The profile's stop sequences (or ``profile.stop_sequences``)."""
    path: str | None
    validation_path: str | None = None
    validation_split: float = 0.0
    limit: int | None = None
    weight: float | None = None
    repeat: int | None = None


@dataclass
class RunRows:
    """The raw rows of a run, per source, split three ways."""

    train: list[Any]
    """Rows to train on."""
    validation: list[Any]
    """Rows for ``eval_loss`` (None for a source without)."""
    previews: list[Any]
    """Rows the previews are generated from, never trained on (None for a source without)."""

    @property
    def has_validation(self) -> bool:
        return any(part is not None for part in self.validation)


@dataclass
class RunData:
    """Tokenized sets ready for ``Trainer`` and the report on them."""

    train_set: Any
    eval_set: Any
    report: Any


def resolve_sources(config: TrainerConfig, base_dir: Path) -> list[Source]:
    """The run's sources with their profiles built: ``data.mixture``, or the one the simple form names.

    :raises TrainerError: a source's profile is unknown or rejects its options (naming the source).
    """
    from trainer.config.mixture import source_name, source_profile
    from trainer.data.conversation import effective_stop_sequences
    from trainer.profiles import get_profile

    data, chosen = config.data, config.profile
    if not data.mixture:
        profile = get_profile(chosen.name, chosen.options)
        path = None if data.dataset_path is None else resolve_source(base_dir, data.dataset_path)
        return [
            Source(
                name=_simple_name(data.dataset_path),
                label="",
                profile_name=chosen.name,
                profile=profile,
                system_prompt=chosen.system_prompt,
                stops=effective_stop_sequences(profile, chosen.stop_sequences),
                path=path,
                validation_path=None
                if data.validation_path is None
                else resolve_source(base_dir, data.validation_path),
                validation_split=data.validation_split,
                limit=config.debug.example_limit,
            )
        ]
    sources = []
    for index, entry in enumerate(data.mixture):
        name = source_name(entry, index)
        label = f"source '{name}' (data.mixture[{index}])"
        profile_name, options = source_profile(entry, chosen.name, chosen.options)
        with _naming(label):
            profile = get_profile(profile_name, options)
        limits = [value for value in (entry.limit, config.debug.example_limit) if value is not None]
        sources.append(
            Source(
                name=name,
                label=label,
                profile_name=profile_name,
                profile=profile,
                system_prompt=chosen.system_prompt if entry.system_prompt is None else entry.system_prompt,
                stops=effective_stop_sequences(profile, chosen.stop_sequences),
                path=None if entry.path is None else resolve_source(base_dir, entry.path),
                validation_path=None
                if entry.validation_path is None
                else resolve_source(base_dir, entry.validation_path),
                validation_split=entry.validation_split,
                limit=min(limits) if limits else None,
                weight=entry.weight,
                repeat=entry.repeat,
            )
        )
    return sources


def union_stops(sources: list[Source]) -> list[str]:
    """Every source's stop sequences, each once, in order: what generation stops at after training."""
    stops: list[str] = []
    for source in sources:
        stops += [stop for stop in source.stops if stop not in stops]
    return stops


def load_rows(
    config: TrainerConfig, sources: list[Source], seed: int, on_message: Callable[[str], None]
) -> RunRows:
    """Read each source (or the profile's or the built-in sample), check it, hold back preview rows."""
    from trainer.data.pipeline import load_raw_datasets
    from trainer.profiles.compose import check_on_rows

    inference = config.inference
    rows = RunRows(train=[], validation=[], previews=[])
    for source in sources:
        path = source.path
        named = f" for {source.label}" if source.label else ""
        if path is None and (own_sample := source.profile.default_dataset()):
            path = own_sample
            own = f"the sample that profile '{source.profile.name}' ships"
            on_message(f"No dataset given{named}: using {own}")
        elif path is None:
            own = "the built-in sample dataset (arithmetic word problems)"
            on_message(f"No dataset given{named}: using {own}")
        with _naming(source.label):
            train_rows, eval_rows = load_raw_datasets(
                path,
                validation_path=source.validation_path,
                validation_split=source.validation_split,
                seed=seed,
                example_limit=source.limit,
            )
            check_on_rows(source.profile, _first_rows(train_rows))
        preview_rows, train_rows = _preview_rows(
            train_rows, eval_rows, inference.eval_steps, inference.num_samples
        )
        named = f" of {source.name}" if source.label else ""
        if preview_rows is None and inference.eval_steps > 0:
            on_message(f"Too few rows{named} to hold some back for previews: no previews of them")
        elif preview_rows is not None and eval_rows is None:
            held = len(preview_rows)
            on_message(f"Holding back the last {held} rows{named} for previews (never trained on)")
        rows.train.append(train_rows)
        rows.validation.append(eval_rows)
        rows.previews.append(preview_rows)
    return rows


def tokenize(
    rows: RunRows, config: TrainerConfig, *, tokenizer: Any, sources: list[Source], hyper: Any
) -> RunData:
    """Render and tokenize each source; mix them; pack or group by length; fill the data report."""
    from trainer.data.pipeline import pack_dataset, prepare_dataset

    data = config.data
    max_length = min(data.max_length, config.model.max_context_length)
    common = dict(
        tokenizer=tokenizer,
        max_length=max_length,
        overlength=data.overlength,
        skip_invalid=data.skip_invalid,
        num_proc=data.num_proc,
        trained_turns=data.trained_turns,
        allow_consecutive_assistant=data.allow_consecutive_assistant,
    )
    train_sets, eval_sets, reports = [], [], []
    for source, train_rows, eval_rows, preview_rows in zip(
        sources, rows.train, rows.validation, rows.previews, strict=True
    ):
        own = dict(profile=source.profile, system_prompt=source.system_prompt, stop_sequences=source.stops)
        with _naming(source.label):
            train_set, report = prepare_dataset(train_rows, **own, **common)
            if preview_rows is not None and eval_rows is None:
                report.held_back = len(preview_rows)
                report.rows_read += len(preview_rows)
            if eval_rows is not None:
                eval_set, report.validation = prepare_dataset(eval_rows, **own, **common)
                eval_sets.append(eval_set)
        train_sets.append(train_set)
        reports.append(report)
    if len(sources) == 1:
        train_set, report = train_sets[0], reports[0]
    else:
        train_set, report = _mix(train_sets, reports, sources, config, hyper.seed)
    eval_set = None
    if eval_sets:
        from datasets import concatenate_datasets

        eval_set = pack_dataset(concatenate_datasets(eval_sets), max_length)
    if data.packing:
        train_set = pack_dataset(train_set, max_length, report=report)
    else:
        train_set = _batch_by_length(train_set, report, hyper, data.group_by_length)
    return RunData(train_set=train_set, eval_set=eval_set, report=report)


def check_stops_across(sources: list[Source], rows: RunRows) -> None:
    """No source's stop sequence may occur inside another source's targets (the assistant turns).

    After training, generation stops at every source's stop sequences; one inside
    another source's answers would cut those answers short.

    :raises TrainerError: naming both sources, the stop sequence and the row.
    """
    if len(sources) < 2:
        return
    from trainer.data.conversation import build_conversation
    from trainer.data.loading import ROW_COLUMN
    from trainer.profiles.base import InvalidExampleError

    for target, train_rows in zip(sources, rows.train, strict=True):
        others = [(stop, other) for other in sources if other is not target for stop in other.stops]
        others = [(stop, other) for stop, other in others if stop not in target.stops]
        if not others:
            continue
        for row in train_rows:
            number = row.get(ROW_COLUMN)
            fields = {key: value for key, value in row.items() if key != ROW_COLUMN and value is not None}
            try:
                turns = build_conversation(
                    target.profile,
                    fields,
                    target.system_prompt,
                    target.stops,
                    allow_consecutive_assistant=True,
                ).messages
            except InvalidExampleError:
                continue  # the data report counts it
            for turn in turns:
                if turn["role"] != "assistant":
                    continue
                for stop, other in others:
                    if stop in str(turn.get("content") or ""):
                        raise TrainerError(
                            f"stop sequence {stop!r} of {other.label} occurs inside a target of "
                            f"{target.label} (row {number}): generation would cut that source's answers "
                            "short. Set profile.stop_sequences to strings no source's answers contain, "
                            "or train the two sources in separate runs"
                        )


def final_eval_items(config: TrainerConfig, base_dir: Path, source: Source, stops: list[str]) -> Any:
    """The rows of ``inference.eval_dataset``, read and checked before training; None without one."""
    inference = config.inference
    if inference.eval_dataset is None:
        return None
    from trainer.evaluation.final import prepare_final_eval

    return prepare_final_eval(
        resolve_source(base_dir, inference.eval_dataset),
        inference.eval_limit,
        source.profile,
        source.system_prompt,
        stops,
    )


def _mix(
    train_sets: list[Any], reports: list[Any], sources: list[Source], config: TrainerConfig, seed: int
) -> tuple[Any, Any]:
    """The mixed training set and a report: the sources' reports summed, each source's share."""
    from trainer.data.mixture import SourceShare, measure, mix, tag
    from trainer.data.report import DataReport

    weighted = sources[0].weight is not None
    total = sum(source.weight or 0.0 for source in sources)
    shares = [
        SourceShare(
            name=source.name,
            profile=source.profile_name,
            weight=round((source.weight or 0.0) / total, 4) if weighted else None,
            repeat=None if weighted else (source.repeat or 1),
        )
        for source in sources
    ]
    mixed = mix(
        [tag(part, index) for index, part in enumerate(train_sets)],
        weights=[source.weight or 0.0 for source in sources] if weighted else None,
        repeats=None if weighted else [source.repeat or 1 for source in sources],
        seed=seed,
        strategy=config.data.mixture_strategy,
    )
    mixed = measure(mixed, shares)
    report = DataReport(
        source=f"a mixture of {len(sources)} sources ({', '.join(source.name for source in sources)})",
        max_length=reports[0].max_length,
        rows_read=sum(part.rows_read for part in reports),
        held_back=sum(part.held_back for part in reports),
        invalid_skipped=sum(part.invalid_skipped for part in reports),
        truncated=sum(part.truncated for part in reports),
        examples=len(mixed),
        tokens=sum(share.tokens for share in shares),
        trainable_tokens=sum(share.trainable_tokens for share in shares),
        own_system_prompt=sum(part.own_system_prompt for part in reports),
    )
    for part in reports:
        for reason, count in part.dropped.items():
            report.dropped[reason] = report.dropped.get(reason, 0) + count
    report.sources = [
        {**share.to_dict(), "report": part.to_dict()} for share, part in zip(shares, reports, strict=True)
    ]
    return mixed, report


@contextmanager
def _naming(label: str) -> Iterator[None]:
    """Errors raised inside name the source they concern (for a mixture)."""
    if not label:
        yield
        return
    try:
        yield
    except TrainerError as exc:
        message = f"{label}: {exc}"
        try:
            renamed = type(exc)(message)
        except TypeError:  # an error class that takes more than a message
            renamed = TrainerError(message)
        raise renamed from None


def _simple_name(path: str | None) -> str:
    from trainer.config.mixture import SourceConfig, source_name

    return source_name(SourceConfig(path=path), 0) if path else "sample"


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
