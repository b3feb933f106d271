"""An evaluation's results file: one JSON line per row, written whole, read back for ``--resume``.

Rows are evaluated in windows of consecutive rows and each window's lines are
written in one piece, in row order, then flushed to disk. A killed evaluation
leaves whole windows and at most one partial one; :func:`read_results` keeps the
whole windows, so a resumed evaluation batches every row as an uninterrupted
one would and writes the same file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trainer.errors import TrainerError


def settings_file(output: Path) -> Path:
    """Where the settings and summary of the evaluation writing ``output`` are kept."""
    return output.with_name(output.name.removesuffix(".jsonl") + ".summary.json")


def read_results(output: Path, window: int, total: int) -> list[dict[str, Any]]:
    """The records of the whole windows in ``output``; the file is cut back to them.

    :param window: rows per window.
    :param total: rows the evaluation covers; a last window shorter than
        ``window`` is whole when every row is there.
    :raises TrainerError: a line before the damaged tail is not a JSON record.
    """
    if not output.is_file():
        return []
    data = output.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    records = []
    for number, line in enumerate(complete.decode("utf-8", errors="replace").splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("row"), int):
            raise TrainerError(
                f"{output} line {number} is not an evaluation record; it was not written by trainer eval. "
                "Write to another --output, or delete the file to start again"
            )
        records.append(record)
    kept = len(records) if len(records) >= total else len(records) // window * window
    records = records[:kept]
    _truncate(output, sum(len(line) + 1 for line in complete.split(b"\n")[:kept]))
    return records


def append_records(output: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append ``records`` as whole lines in one write, then flush them to disk."""
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    with output.open("a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` through a temporary file, so a reader never sees half of it."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _truncate(path: Path, size: int) -> None:
    if path.stat().st_size != size:
        with path.open("r+b") as handle:
            handle.truncate(size)
