"""The training data pipeline, in the order the engine calls it.

1. :func:`load_raw_datasets` — the training rows and validation rows (a file,
   a saved directory, a hub name or the built-in sample; a seeded split or a
   separate file).
2. :func:`prepare_dataset` — for each split: rows through the profile and the
   chat template to ``input_ids`` and ``labels``, over-length and invalid rows
   handled, counted in a :class:`DataReport`. Cached by ``datasets``: a second
   run on the same data, tokenizer and profile reads the result from disk.
3. :func:`pack_dataset` — with ``packing``, examples packed into rows of up to
   ``max_length`` tokens.
4. :func:`build_collator` — the matching collator for transformers' ``Trainer``.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

from trainer.data.chat_template import (
    IGNORE_INDEX,
    TRAINED_TURNS,
    ensure_chat_template,
    tokenize_conversation,
)
from trainer.data.collators import PackedCollator, PaddedCollator, build_collator
from trainer.data.conversation import build_conversation
from trainer.data.loading import ROW_COLUMN, load_raw_datasets, source_label
from trainer.data.packing import pack_dataset
from trainer.data.report import MAX_PROBLEMS, DataReport
from trainer.errors import TrainerError
from trainer.profiles.base import DataProfile, InvalidExampleError, as_conversation

__all__ = [
    "DataReport",
    "PackedCollator",
    "PaddedCollator",
    "build_collator",
    "load_raw_datasets",
    "pack_dataset",
    "prepare_dataset",
]

OVERLENGTH_POLICIES = ("drop", "truncate", "error")

# What happened to each row while tokenizing (the "status" column).
KEPT, TRUNCATED, TOO_LONG, NO_TRAINABLE, INVALID = range(5)

TOO_LONG_REASON = "over max_length"
NO_TRAINABLE_REASON = "no trainable token left"


def prepare_dataset(
    rows: Any,
    *,
    tokenizer: Any,
    profile: DataProfile,
    system_prompt: str,
    stop_sequences: list[str],
    max_length: int,
    overlength: str = "drop",
    skip_invalid: bool = False,
    num_proc: int | None = None,
    template_kwargs: dict[str, Any] | None = None,
    trained_turns: str = "all",
    allow_consecutive_assistant: bool = False,
) -> tuple[Any, DataReport]:
    """Tokenize ``rows`` for training: ``(dataset of input_ids and labels, report)``.

    Each row goes through :func:`~trainer.data.conversation.build_messages`
    and :func:`~trainer.data.chat_template.tokenize_conversation` (labels on
    the assistant's tokens, end-of-turn included). A tokenizer without a chat
    template is given ChatML (on the tokenizer itself, so it is saved with the model).

    :param rows: a ``datasets.Dataset`` from :func:`load_raw_datasets`.
    :param max_length: the most tokens an example may have.
    :param overlength: ``drop`` (count and leave out), ``truncate`` (cut the end) or
        ``error`` for an example over ``max_length``.
    :param skip_invalid: skip and count rows the profile cannot read, instead of raising.
    :param num_proc: worker processes for tokenizing; ``None`` for one.
    :param template_kwargs: extra chat-template variables (e.g. ``enable_thinking``);
        generation must use the same ones.
    :param trained_turns: train ``all`` assistant turns (tool-call turns included), or only the ``last``.
    :param allow_consecutive_assistant: accept two assistant turns in a row instead of
        refusing the row.
    :raises InvalidExampleError: a row the profile cannot read (without ``skip_invalid``),
        naming the source, the row and the accepted fields.
    :raises TrainerError: an over-length row with ``overlength="error"``; no example left.
    """
    if overlength not in OVERLENGTH_POLICIES:
        raise TrainerError(f"overlength must be one of {', '.join(OVERLENGTH_POLICIES)}, got {overlength!r}")
    if max_length < 1:
        raise TrainerError(f"max_length must be at least 1, got {max_length}")
    if trained_turns not in TRAINED_TURNS:
        raise TrainerError(f"trained_turns must be one of {', '.join(TRAINED_TURNS)}, got {trained_turns!r}")
    from datasets import Features, List, Value

    ensure_chat_template(tokenizer)
    source = source_label(rows)
    features = Features(
        {
            "input_ids": List(Value("int32")),
            "labels": List(Value("int32")),
            "row": Value("int64"),
            "status": Value("int8"),
            "length": Value("int32"),
            "trainable": Value("int32"),
            "reason": Value("string"),
            "own_system": Value("bool"),
        }
    )
    options = {
        "tokenizer": tokenizer,
        "profile": profile,
        "system_prompt": system_prompt,
        "stop_sequences": list(stop_sequences),
        "max_length": max_length,
        "truncate": overlength == "truncate",
        "template_kwargs": dict(template_kwargs or {}),
        "trained_turns": trained_turns,
        "allow_consecutive_assistant": allow_consecutive_assistant,
    }
    tokenized = rows.map(
        _tokenize_rows,
        batched=True,
        batch_size=256,
        with_indices=True,
        num_proc=num_proc if num_proc and num_proc > 1 else None,
        remove_columns=rows.column_names,
        features=features,
        fn_kwargs=options,
        new_fingerprint=_fingerprint(rows, options),
        desc="Tokenizing",
    )
    report, keep = _review(tokenized, source, max_length, overlength, skip_invalid)
    if len(keep) < len(tokenized):  # with every row kept, no index mapping is needed
        tokenized = tokenized.select(keep)
    return tokenized.select_columns(["input_ids", "labels"]), report


def _tokenize_rows(
    batch: dict[str, list[Any]],
    indices: list[int],
    *,
    tokenizer: Any,
    profile: DataProfile,
    system_prompt: str,
    stop_sequences: list[str],
    max_length: int,
    truncate: bool,
    template_kwargs: dict[str, Any],
    trained_turns: str,
    allow_consecutive_assistant: bool,
) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {
        "input_ids": [],
        "labels": [],
        "row": [],
        "status": [],
        "length": [],
        "trainable": [],
        "reason": [],
        "own_system": [],
    }
    names = [name for name in batch if name != ROW_COLUMN]
    for position, index in enumerate(indices):
        # datasets fills a field missing from a row with None: leave it out, as the file does.
        row = {name: batch[name][position] for name in names if batch[name][position] is not None}
        number = batch[ROW_COLUMN][position] if ROW_COLUMN in batch else index + 1
        input_ids: list[int] = []
        labels: list[int] = []
        length, status, reason, own_system = 0, KEPT, "", False
        try:
            prepared = as_conversation(profile.prepare_messages(row))
            own_system = prepared.messages[0]["role"] == "system"
            conversation = build_conversation(
                profile,
                row,
                system_prompt,
                stop_sequences,
                allow_consecutive_assistant=allow_consecutive_assistant,
                prepared=prepared,
            )
            input_ids, labels = tokenize_conversation(
                conversation.messages,
                tokenizer,
                template_kwargs,
                tools=conversation.tools,
                trained_turns=trained_turns,
            )
        except InvalidExampleError as exc:
            status, reason = INVALID, " ".join(str(exc).split())
        else:
            length = len(input_ids)
            if length > max_length and truncate:
                input_ids, labels, status = input_ids[:max_length], labels[:max_length], TRUNCATED
            elif length > max_length:
                input_ids, labels, status = [], [], TOO_LONG  # not stored: never used
        trainable = sum(label != IGNORE_INDEX for label in labels)
        if status in (KEPT, TRUNCATED) and trainable == 0:
            status = NO_TRAINABLE
        out["input_ids"].append(input_ids)
        out["labels"].append(labels)
        out["row"].append(number)
        out["status"].append(status)
        out["length"].append(length)
        out["trainable"].append(trainable)
        out["reason"].append(reason)
        out["own_system"].append(own_system)
    return out


def _review(
    tokenized: Any, source: str, max_length: int, overlength: str, skip_invalid: bool
) -> tuple[DataReport, Any]:
    """Count what happened to each row, raise what must stop the run, list the rows to keep.

    Only the five small per-row columns are read, as numpy arrays; the rows to keep
    stay a numpy array too (a Python list of a million ints would take 36 MB).
    """
    import numpy as np

    columns = tokenized.select_columns(["row", "status", "length", "trainable", "own_system"]).with_format(
        "numpy"
    )[:]
    status, length, trainable = columns["status"], columns["length"], columns["trainable"]
    invalid = np.flatnonzero(status == INVALID)
    too_long = np.flatnonzero(status == TOO_LONG)
    if len(invalid) and not skip_invalid:
        first = int(invalid[0])
        others = f" ({len(invalid)} of {len(status)} rows are invalid)" if len(invalid) > 1 else ""
        raise InvalidExampleError(
            f"{source} row {int(columns['row'][first])}: {tokenized[first]['reason']}. Fix the row, or set "
            f"data.skip_invalid=true to skip such rows{others}"
        )
    if len(too_long) and overlength == "error":
        first = int(too_long[0])
        others = f" ({len(too_long)} rows are)" if len(too_long) > 1 else ""
        raise TrainerError(
            f"{source} row {int(columns['row'][first])} is {int(length[first])} tokens, over "
            f"data.max_length={max_length}{others}. Raise data.max_length, or set data.overlength "
            "to drop or truncate"
        )
    kept = np.flatnonzero((status == KEPT) | (status == TRUNCATED))
    no_trainable = np.flatnonzero(status == NO_TRAINABLE)
    report = DataReport(
        source=source,
        max_length=max_length,
        rows_read=len(status),
        invalid_skipped=len(invalid),
        truncated=int((status == TRUNCATED).sum()),
        examples=len(kept),
        tokens=int(np.minimum(length[kept], max_length).sum()),
        trainable_tokens=int(trainable[kept].sum()),
        own_system_prompt=int(columns["own_system"].sum()),
    )
    if len(too_long):
        report.dropped[f"{TOO_LONG_REASON}={max_length}"] = len(too_long)
    if len(no_trainable):
        report.dropped[NO_TRAINABLE_REASON] = len(no_trainable)
    report.problems = _problems(tokenized, columns, max_length)
    if not len(kept):
        raise TrainerError(_nothing_left(report))
    return report, kept


def _problems(tokenized: Any, columns: dict[str, Any], max_length: int) -> list[str]:
    import numpy as np

    notable = np.flatnonzero(columns["status"] != KEPT)[:MAX_PROBLEMS]
    lines = []
    for index in notable.tolist():
        row, status, length = (
            int(columns["row"][index]),
            int(columns["status"][index]),
            int(columns["length"][index]),
        )
        if status == INVALID:
            lines.append(f"row {row}: skipped: {tokenized[index]['reason']}")
        elif status == TOO_LONG:
            lines.append(f"row {row}: dropped: {length} tokens, {TOO_LONG_REASON}={max_length}")
        elif status == TRUNCATED:
            lines.append(f"row {row}: truncated from {length} to {max_length} tokens")
        else:
            lines.append(f"row {row}: dropped: {NO_TRAINABLE_REASON} (of {min(length, max_length)} tokens)")
    return lines


def _nothing_left(report: DataReport) -> str:
    fixes = []
    if report.invalid_skipped:
        fixes.append("fix the invalid rows")
    if any(reason.startswith(TOO_LONG_REASON) for reason in report.dropped):
        fixes.append("raise data.max_length or set data.overlength=truncate")
    if NO_TRAINABLE_REASON in report.dropped:
        fixes.append("raise data.max_length so the assistant turns fit")
    first = f" First: {report.problems[0]}." if report.problems else ""
    return (
        f"{report.source}: no examples left to train on: {report.rows_read} rows read, "
        f"{report.invalid_skipped} invalid skipped, {report.rows_dropped} dropped. "
        f"{'; '.join(fixes).capitalize() or 'Check the data'}.{first}"
    )


def _fingerprint(rows: Any, options: dict[str, Any]) -> str:
    """What the tokenized rows depend on: data, tokenizer, profile, settings and this code."""
    from datasets.fingerprint import Hasher

    profile = options["profile"]
    settings = {key: value for key, value in options.items() if key not in ("tokenizer", "profile")}
    return Hasher.hash(
        [
            rows._fingerprint,
            settings,
            _tokenizer_signature(options["tokenizer"]),
            type(profile).__module__,
            type(profile).__qualname__,
            _attributes(profile),
            *(_module_source(module) for module in _code_modules(profile)),
        ]
    )


def _tokenizer_signature(tokenizer: Any) -> list[Any]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    vocabulary = backend.to_str() if backend is not None else sorted(tokenizer.get_vocab().items())
    return [type(tokenizer).__name__, vocabulary, tokenizer.chat_template, str(tokenizer.special_tokens_map)]


def _attributes(profile: DataProfile) -> str:
    # Options live on the instance; repr keeps unpicklable values from breaking the hash.
    return repr(sorted((key, repr(value)) for key, value in vars(profile).items()))


def _code_modules(profile: DataProfile) -> list[str]:
    return [
        __name__,
        "trainer.data.chat_template",
        "trainer.data.chatml",
        "trainer.data.conversation",
        "trainer.conversation.model",
        "trainer.conversation.validate",
        "trainer.conversation.layouts",
        "trainer.conversation.tool_calls",
        "trainer.profiles.base",
        "trainer.profiles.fields",
        type(profile).__module__,
    ]


def _module_source(name: str) -> str:
    # A change to the code that tokenizes, or to the profile's module, must not reuse old results.
    module = sys.modules.get(name)
    try:
        path = inspect.getsourcefile(module) if module is not None else None
        return Path(path).read_text(encoding="utf-8") if path else name
    except (OSError, TypeError):
        return name
