"""Reading rows from a dataset file for a quick look, without loading it all.

``.jsonl``, ``.json`` and ``.csv`` files are read with the standard library,
row by row, so a preview of three rows from a large file is instant and a bad
line is reported with its number. Other sources (``.parquet``, a directory
saved by ``datasets``, a hub dataset name) go through ``datasets``, imported
only then.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from trainer.errors import TrainerError

TEXT_FORMATS = (".jsonl", ".json", ".csv")
DATASETS_FORMATS = (".parquet", ".arrow")


class DatasetError(TrainerError):
    """A dataset cannot be found or read."""


def iter_rows(source: str, limit: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row_number, row)`` pairs from ``source``, numbered from 1.

    :param source: a file path, a directory saved by ``datasets``, or a hub name.
    :param limit: stop after this many rows.
    :raises DatasetError: the source is missing, of an unknown kind or malformed;
        the message names the file and line.
    """
    rows = _rows(source)
    yield from rows if limit is None else islice(rows, limit)


def _rows(source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in TEXT_FORMATS or suffix in DATASETS_FORMATS:
        if not path.is_file():
            raise DatasetError(f"dataset file '{source}' not found. Pass an existing file with --dataset")
    if suffix == ".jsonl":
        return _jsonl_rows(path)
    if suffix == ".json":
        return _json_rows(path)
    if suffix == ".csv":
        return _csv_rows(path)
    if path.exists() and not path.is_dir() and suffix not in DATASETS_FORMATS:
        raise DatasetError(
            f"dataset '{source}' has an unsupported extension '{suffix}'. Use .jsonl, .json, .csv, "
            ".parquet, a directory saved by datasets, or a hub dataset name"
        )
    return _datasets_rows(source)


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        number = 0
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(
                    f"{path} line {line_number}: invalid JSON ({exc.msg}). Fix or remove the line"
                ) from None
            if not isinstance(row, dict):
                raise DatasetError(
                    f"{path} line {line_number}: expected a JSON object, got {type(row).__name__}"
                )
            number += 1
            yield number, row


def _json_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} line {exc.lineno}: invalid JSON ({exc.msg})") from None
    if isinstance(data, dict):
        # {"data": [...]} and similar single-key wrappers
        lists = [value for value in data.values() if isinstance(value, list)]
        if len(lists) != 1:
            raise DatasetError(f"{path}: expected a JSON list of objects, or an object holding one list")
        data = lists[0]
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
    for number, row in enumerate(data, start=1):
        if not isinstance(row, dict):
            raise DatasetError(f"{path} row {number}: expected a JSON object, got {type(row).__name__}")
        yield number, row


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=1):
            yield number, dict(row)


def _datasets_rows(source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    import datasets

    path = Path(source)
    try:
        if path.is_dir():
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                loaded = loaded["train"] if "train" in loaded else next(iter(loaded.values()))
            iterable: Any = loaded
        elif path.suffix.lower() in DATASETS_FORMATS:
            kind = path.suffix.lower().lstrip(".")
            iterable = datasets.load_dataset(kind, data_files=str(path), split="train", streaming=True)
        else:
            iterable = datasets.load_dataset(source, split="train", streaming=True)
    except FileNotFoundError:
        raise DatasetError(
            f"dataset '{source}' not found: no such file or directory, and no hub dataset of that name. "
            "Pass an existing file with --dataset"
        ) from None
    except Exception as exc:  # datasets raises many kinds; all mean the same to the user
        raise DatasetError(f"dataset '{source}' could not be read: {exc}") from None
    for number, row in enumerate(iterable, start=1):
        yield number, dict(row)
