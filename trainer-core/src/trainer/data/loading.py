"""Loading training rows through ``datasets``: files, saved directories, hub names, the sample.

Every loaded dataset gets a column of source row numbers (:data:`ROW_COLUMN`)
and a source label in ``dataset.info.description``; both survive the
validation split and ``select``, so an error found later, while tokenizing,
can still name the file and the row.
"""

from __future__ import annotations

import codecs
import json
import math
from pathlib import Path
from typing import Any

from trainer.data.sources import DatasetError, iter_rows, unreadable
from trainer.errors import TrainerError

ROW_COLUMN = "_trainer_row"
"""Column holding each row's number in its source, counted from 1."""

SAMPLE_LABEL = "the built-in sample dataset"

_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".arrow": "arrow"}
_TEXT_FORMATS = (".jsonl", ".json", ".csv")
# No line shorter than this nests deep enough to crash pyarrow (see _refuse_lines_pyarrow_cannot_take).
_SHALLOW_LINE = 2048


def load_raw_datasets(
    dataset_path: str | None,
    *,
    validation_path: str | None = None,
    validation_split: float = 0.0,
    seed: int = 42,
    example_limit: int | None = None,
    cache_dir: str | None = None,
) -> tuple[Any, Any | None]:
    """The training rows and the validation rows (``None`` without validation).

    :param dataset_path: a ``.jsonl``, ``.json``, ``.csv`` or ``.parquet`` file, a
        directory saved by ``datasets``, or a hub dataset name; ``None`` for the
        built-in sample dataset.
    :param validation_path: a separate validation source, in any of those forms.
    :param validation_split: fraction of the training rows held out for
        validation (shuffled with ``seed``) when there is no ``validation_path``.
    :param example_limit: keep only the first this many rows of each source
        (before the split).
    :param cache_dir: where ``datasets`` keeps its Arrow files; ``None`` for its default.
    :raises DatasetError: a source is missing, malformed (naming file and line) or empty.
    :raises TrainerError: the split leaves either side without rows.
    """
    train = load_rows(dataset_path, limit=example_limit, cache_dir=cache_dir)
    if validation_path is not None:
        return train, load_rows(validation_path, limit=example_limit, cache_dir=cache_dir)
    if validation_split > 0:
        return split_validation(train, validation_split, seed)
    return train, None


def load_rows(source: str | None, *, limit: int | None = None, cache_dir: str | None = None) -> Any:
    """One source as a ``datasets.Dataset`` with :data:`ROW_COLUMN` and a source label.

    See :func:`load_raw_datasets` for the arguments.
    """
    if source is None:
        from datasets import Dataset

        from trainer.data.sample import sample_rows

        dataset, label = Dataset.from_list(sample_rows()), SAMPLE_LABEL
    else:
        try:
            dataset, label = _load(str(source), cache_dir), str(source)
        except OSError as exc:  # the OS refuses the path itself: a name too long, no permission
            raise unreadable(str(source), exc) from None
    if len(dataset) == 0:
        raise DatasetError(f"dataset '{label}' has no rows. Pass a dataset with at least one row")
    if limit is not None and limit < len(dataset):
        dataset = dataset.select(range(limit))
    import numpy as np
    from datasets.fingerprint import Hasher

    if ROW_COLUMN in dataset.column_names:  # the source's own column of that name is not ours
        dataset = dataset.remove_columns(ROW_COLUMN)
    dataset = dataset.add_column(
        ROW_COLUMN,
        np.arange(1, len(dataset) + 1, dtype=np.int64),
        # Hashing the fingerprint is cheaper than hashing a million row numbers.
        new_fingerprint=Hasher.hash([dataset._fingerprint, ROW_COLUMN]),
    )
    dataset.info.description = label
    return dataset


def split_validation(dataset: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    """``dataset`` shuffled with ``seed`` and split into training and validation rows.

    :raises TrainerError: either side would be empty.
    """
    count = len(dataset)
    held_out = math.ceil(count * fraction)
    if held_out >= count:
        raise TrainerError(
            f"validation_split {fraction} of the {count} rows of {source_label(dataset)} leaves no "
            "training rows. Lower data.validation_split or use more rows"
        )
    parts = dataset.train_test_split(test_size=held_out, seed=seed, shuffle=True)
    label = source_label(dataset)
    train, validation = parts["train"], parts["test"]
    train.info.description = f"{label} (training part)"
    validation.info.description = f"{label} (validation part, {fraction:g})"
    return train, validation


def source_label(dataset: Any) -> str:
    """The label :func:`load_rows` gave ``dataset`` (a path or hub name), for messages."""
    return str(getattr(dataset.info, "description", "") or "dataset")


def _load(source: str, cache_dir: str | None) -> Any:
    import datasets

    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in _BUILDERS:
        if not path.is_file():
            raise DatasetError(f"dataset file '{source}' not found. Pass an existing file with --dataset")
        options: dict[str, Any] = {}
        json_lines = suffix == ".jsonl"
        if suffix == ".json":
            layout = _json_layout(path)
            json_lines = layout is None
            options.update(layout or {})
        if json_lines:
            _refuse_lines_pyarrow_cannot_take(path)
        try:
            return datasets.load_dataset(
                _BUILDERS[suffix], data_files=str(path), split="train", cache_dir=cache_dir, **options
            )
        except Exception as exc:  # datasets' parse errors do not say where
            raise _read_error(path, exc) from None
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            return _load_saved(path)
        try:
            return datasets.load_dataset(str(path), split="train", cache_dir=cache_dir)
        except Exception as exc:
            raise DatasetError(
                f"directory '{source}' could not be read as a dataset: {_first_line(exc)}"
            ) from None
    if path.exists():
        raise DatasetError(
            f"dataset '{source}' has an unsupported extension '{suffix}'. Use .jsonl, .json, .csv, "
            ".parquet, a directory saved by datasets, or a hub dataset name"
        )
    if source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise DatasetError(f"dataset '{source}' not found. Pass an existing file or directory with --dataset")
    try:
        return datasets.load_dataset(source, split="train", cache_dir=cache_dir)
    except Exception as exc:
        raise DatasetError(
            f"dataset '{source}' is no file or directory here, and loading it from the hub failed "
            f"({_first_line(exc)}). Pass an existing file with --dataset"
        ) from None


def _load_saved(path: Path) -> Any:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise DatasetError(
            f"'{path}' could not be loaded with datasets.load_from_disk: {_first_line(exc)}"
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            raise DatasetError(
                f"'{path}' holds the splits {', '.join(loaded)} but no 'train' split. "
                f"Point --dataset at one split's directory, e.g. {path / next(iter(loaded))}"
            )
        return loaded["train"]
    return loaded


def _json_layout(path: Path) -> dict[str, Any] | None:
    """``load_dataset`` options for a .json file holding a list of objects; None for JSON Lines.

    A list may stand alone or be wrapped in an object (``{"data": [...]}``), whose key
    ``datasets`` needs as ``field``. Every item must be an object: ``datasets`` would
    hand a ``null`` item to pyarrow, which crashes on it (see _refuse_lines_pyarrow_cannot_take).
    """
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        head = handle.read(4096).lstrip()
    if not head.startswith(("{", "[")):
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON Lines in a .json file
            return None
        raise _read_error(path, exc) from None
    except (ValueError, RecursionError) as exc:  # not UTF-8, a 5,000-digit number, nested too deep
        raise _read_error(path, exc) from None
    if isinstance(data, list):
        rows, layout = data, {}
    else:
        lists = [key for key, value in data.items() if isinstance(value, list)]
        if len(lists) != 1:
            raise DatasetError(f"{path}: expected a JSON list of objects, or an object holding one such list")
        rows, layout = data[lists[0]], {"field": lists[0]}
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise DatasetError(f"{path} row {number}: expected a JSON object, got {type(row).__name__}")
    return layout


def _refuse_lines_pyarrow_cannot_take(path: Path) -> None:
    """Report, by line, JSON Lines that would crash pyarrow before ``datasets`` hands it the file.

    pyarrow's JSON reader kills the process (a segfault, no exception) on a ``null``
    row at the start of one of its blocks, and on a row nested some ten thousand
    levels deep. Neither is a row we take: a row must be a JSON object, and the
    json module stops at about a thousand levels. Only a line that does not start
    an object, or a long one, is looked at closer, so a million rows take a fraction
    of a second.
    """
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            start = (line.removeprefix(codecs.BOM_UTF8) if number == 1 else line).lstrip()
            if start.startswith(b"{"):
                if len(line) > _SHALLOW_LINE:
                    try:
                        json.loads(line)
                    except RecursionError as exc:
                        raise _read_error(path, exc) from None
                    except ValueError:  # reported, by line, once datasets fails on it
                        pass
            elif line.decode("utf-8", errors="replace").strip():  # blank lines are skipped
                raise _read_error(path, ValueError(f"line {number} is not a JSON object"))


def _read_error(path: Path, exc: Exception) -> DatasetError:
    # Find the bad line with the standard library; datasets only says "parse error at position N".
    if path.suffix.lower() in _TEXT_FORMATS:
        try:
            if sum(1 for _ in iter_rows(str(path))) == 0:
                return DatasetError(f"dataset '{path}' has no rows. Pass a dataset with at least one row")
        except DatasetError as located:
            return located
    return DatasetError(
        f"{path} could not be read: {_first_line(exc)}. Check that every row is a JSON object whose "
        "fields have the same type in every row"
        if path.suffix.lower() in (".json", ".jsonl")
        else f"{path} could not be read: {_first_line(exc)}"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
