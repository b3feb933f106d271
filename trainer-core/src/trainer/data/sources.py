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
import re
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from trainer.errors import TrainerError

TEXT_FORMATS = (".jsonl", ".json", ".csv")
DATASETS_FORMATS = (".parquet", ".arrow")

# What errors="surrogateescape" turns an undecodable byte into.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
# A \u escape of a surrogate: half a character unless its other half follows.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class DatasetError(TrainerError):
    """A dataset cannot be found or read."""


def iter_rows(source: str, limit: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row_number, row)`` pairs from ``source``, numbered from 1.

    :param source: a file path, a directory saved by ``datasets``, or a hub name.
    :param limit: stop after this many rows.
    :raises DatasetError: the source is missing, of an unknown kind or malformed;
        the message names the file and line.
    """
    try:
        rows = _rows(source)
        yield from rows if limit is None else islice(rows, limit)
    except OSError as exc:  # the OS refuses the path itself: a name too long, no permission
        raise unreadable(source, exc) from None


def unreadable(source: str, exc: OSError) -> DatasetError:
    """The error for a source the operating system will not open or look up."""
    shown = source if len(source) <= 100 else f"{source[:97]}..."
    return DatasetError(
        f"dataset '{shown}' cannot be read ({exc.strerror or exc}). Pass an existing, readable file "
        "or directory with --dataset"
    )


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
    with _open_text(path) as handle:
        number = 0
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = _parse_json(line, path, line_number, "Fix or remove the line")
            if not isinstance(row, dict):
                raise DatasetError(
                    f"{path} line {line_number}: expected a JSON object, got {type(row).__name__}"
                )
            number += 1
            yield number, row


def _json_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open_text(path) as handle:
        text = handle.read()
    data = _parse_json(text, path, None, "Fix the file")
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
    with _open_text(path, newline="") as handle:
        reader = csv.DictReader(_checked_lines(handle, path))
        number = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line = reader.reader.line_num  # DictReader's own count lags a failed row
                raise DatasetError(f"{path} line {line}: {exc}. Fix the line") from None
            number += 1
            yield number, dict(row)


def _open_text(path: Path, newline: str | None = None) -> TextIO:
    # A byte that is not UTF-8 becomes a lone surrogate instead of failing the whole read, so
    # the line it is on can be named (_check_utf8). A leading byte-order mark is dropped.
    return path.open(encoding="utf-8-sig", errors="surrogateescape", newline=newline)


def _check_utf8(text: str, path: Path, line: int) -> None:
    """Raise when ``text``, read from ``path`` from ``line`` on, holds a byte that is not UTF-8."""
    found = _ESCAPED_BYTE.search(text)
    if found is not None:
        line += text.count("\n", 0, found.start())
        raise DatasetError(
            f"{path} line {line}: not UTF-8 text (byte 0x{ord(found.group()) - 0xDC00:02x}). "
            "Save the file as UTF-8"
        )


def _checked_lines(lines: Iterable[str], path: Path) -> Iterator[str]:
    for line_number, line in enumerate(lines, start=1):
        _check_utf8(line, path, line_number)
        yield line


def _parse_json(text: str, path: Path, line: int | None, fix: str) -> Any:
    """``text`` as JSON; any failure is a DatasetError naming ``path`` and the line.

    :param line: the line of ``path`` that ``text`` is (JSON Lines), or None when
        ``text`` is the whole file.
    """
    where = f"{path} line {line}" if line is not None else str(path)
    _check_utf8(text, path, line or 1)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} line {line or exc.lineno}: invalid JSON ({exc.msg}). {fix}") from None
    except RecursionError:
        raise DatasetError(f"{where}: JSON nested too deeply to read. {fix}") from None
    except ValueError:  # json's only other error: an int of more digits than Python converts
        raise DatasetError(f"{where}: a number of more than 4,300 digits. {fix}") from None
    if _SURROGATE_ESCAPE.search(text) and _lone_surrogate(value):
        raise DatasetError(
            f"{where}: a \\u escape encodes half a character (a lone surrogate such as \\ud800), "
            f"which is not text. {fix}"
        )
    return value


def _lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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
