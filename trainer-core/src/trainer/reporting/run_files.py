"""Reading what a run writes into its output directory, tolerant of files being written.

The engine keeps ``status.json`` up to date by atomic renames and appends to
``metrics.jsonl`` and ``previews.jsonl`` as it goes, so a reader may meet a status
file that does not exist yet or a JSON-lines file whose last line is half
written. Nothing here raises for a missing optional file: each reader returns
what is there.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.errors import TrainerError
from trainer.generation import RUN_INFO_FILE

STATUS_FILE = "status.json"
"""The status file's name inside an output directory, unless ``system.status_file`` says otherwise."""
METRICS_FILE = "metrics.jsonl"
"""One JSON object per training log line (``loss``) or evaluation (``eval_loss``)."""
PREVIEWS_FILE = "previews.jsonl"
"""One JSON object per preview round: ``step``, ``format_rate``, ``accuracy``, ``samples``;
for a data mixture also ``sources`` (each source's profile and rates)."""

FINAL_STATUSES = ("completed", "failed", "interrupted")
"""Statuses after which a run's status file no longer changes."""


def status_file_in(directory: str | Path) -> Path:
    """The status file of the run in ``directory``.

    ``status.json``, unless the run's ``trainer_run.json`` records another
    ``system.status_file`` (a relative one is inside the output directory).
    """
    path = Path(directory)
    info = _read_json_object(path / RUN_INFO_FILE) or {}
    system = info.get("config", {}).get("system", {}) if isinstance(info.get("config"), dict) else {}
    name = system.get("status_file") if isinstance(system, dict) else None
    return path / name if isinstance(name, str) and name.strip() else path / STATUS_FILE


def resolve_status_path(path: str | Path) -> tuple[Path, Path]:
    """The status file and the output directory that ``path`` names.

    ``path`` is a status file or an output directory; one that does not exist yet
    is taken as a file when it ends in ``.json`` and as a directory otherwise.

    :returns: ``(status_file, output_dir)``; the output directory is where
        ``metrics.jsonl`` and ``previews.jsonl`` are looked for.
    """
    given = Path(path)
    if given.is_dir() or (not given.exists() and given.suffix != ".json"):
        return status_file_in(given), given
    return given, given.parent


def read_status(status_file: str | Path) -> dict[str, Any]:
    """The status file's JSON object.

    :raises TrainerError: the file is missing, is not JSON, or holds something other than an object.
    """
    return parse_status(read_status_text(status_file), status_file)


def read_status_text(status_file: str | Path) -> str:
    """The status file's text, checked to be a JSON object.

    :raises TrainerError: as :func:`read_status`.
    """
    path = Path(status_file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TrainerError(
            f"no status file at {path}: pass a run's output directory or its status file "
            f"(trainer status outputs/run), or add --watch to wait for a run that is starting"
        ) from None
    except OSError as exc:
        raise TrainerError(f"cannot read the status file {path}: {exc.strerror or exc}") from None
    parse_status(text, path)
    return text


def parse_status(text: str, path: str | Path) -> dict[str, Any]:
    """``text``, a status file's content, as a JSON object.

    :raises TrainerError: ``text`` is not JSON or not an object; the message names ``path``.
    """
    try:
        state = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrainerError(
            f"the status file {path} is not valid JSON ({exc.msg} at line {exc.lineno}); "
            "it is damaged or not a trainer status file"
        ) from None
    if not isinstance(state, dict):
        raise TrainerError(
            f"the status file {path} holds a JSON {type(state).__name__}, not an object; "
            "it is not a trainer status file"
        )
    return state


def follow_status(
    status_file: str | Path,
    interval: float = 2.0,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[dict[str, Any] | None]:
    """Yield the status each time the file changes, until the run reaches a final status or dies.

    Yields ``None`` while the file does not exist (the run has not started, or its
    output directory is being replaced). A file that cannot be parsed is taken as
    a moment between writes and read again after ``interval``; the first state
    read is yielded even when the run is already over. An unchanged state is
    yielded again when its :func:`~trainer.monitoring.status.liveness` changes
    (the heartbeat stopped: ``stale``); the run's process gone (``died``) ends it.

    :param interval: seconds between reads.
    :param sleep: waits between reads (tests pass a function that writes the file).
    """
    from trainer.monitoring.status import liveness

    path = Path(status_file)
    last: object = object()  # the text last yielded; at first, nothing
    state: dict[str, Any] | None = None
    verdict = None
    while True:
        try:
            text: str | None = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = None
        except OSError:  # on Windows a file being replaced cannot be opened for a moment
            sleep(interval)
            continue
        if text != last:
            state = None
            if text is not None:
                try:
                    state = parse_status(text, path)
                except TrainerError:
                    sleep(interval)
                    continue
            last = text
            verdict = None if state is None else liveness(state).verdict
            yield state
        elif state is not None and (now := liveness(state).verdict) != verdict:
            verdict = now
            yield state
        if state is not None and (state.get("status") in FINAL_STATUSES or verdict == "died"):
            return
        sleep(interval)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects in a JSON-lines file; a missing file gives ``[]``.

    A line that is not a JSON object is skipped: the last one may be half written
    by a run that is still appending.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _read_json_object(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def series(records: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """Steps and values of ``key`` in the records that have both as finite numbers."""
    steps, values = [], []
    for record in records:
        step, value = number(record.get("step")), number(record.get(key))
        if step is not None and value is not None:
            steps.append(step)
            values.append(value)
    return steps, values


@dataclass
class RunFiles:
    """Everything a run's output directory holds about its progress; each part may be empty."""

    directory: Path
    """The output directory."""
    status_file: Path
    """Where the status file is (or would be)."""
    status: dict[str, Any] | None = None
    """The status file's object; ``None`` when it is missing or unreadable."""
    metrics: list[dict[str, Any]] = field(default_factory=list)
    """``metrics.jsonl``: training log lines and evaluation lines."""
    previews: list[dict[str, Any]] = field(default_factory=list)
    """Preview rounds, oldest first: ``previews.jsonl``, or the status file's history."""
    run_info: dict[str, Any] | None = None
    """``trainer_run.json``; written when a run finishes."""

    @property
    def profile(self) -> str | None:
        """The profile the run used (``profile.name`` of the config in ``trainer_run.json``).

        ``None`` when the run recorded none: ``trainer_run.json`` is written when a run
        finishes, and the status file does not name the profile.
        """
        config = (self.run_info or {}).get("config")
        section = config.get("profile") if isinstance(config, dict) else None
        name = section.get("name") if isinstance(section, dict) else None
        return name if isinstance(name, str) and name.strip() else None

    @property
    def sources(self) -> dict[str, str | None]:
        """A data mixture's sources by name, each with its profile (``None`` where none is recorded).

        Empty for a run of one dataset. The names come from the data report in
        ``trainer_run.json`` (``data.sources``), then from the preview rounds, so a run
        that is still training has them too; in the order the run lists them.
        """
        found: dict[str, str | None] = {}

        def add(name: Any, profile: Any) -> None:
            if isinstance(name, str) and found.get(name) is None:
                found[name] = profile if isinstance(profile, str) else None

        for name, share in self.source_shares.items():
            add(name, share.get("profile"))
        latest = (self.status or {}).get("previews")
        for round_ in [*self.previews, latest if isinstance(latest, dict) else {}]:
            sources = round_.get("sources")
            for name, rates in sources.items() if isinstance(sources, dict) else ():
                add(name, rates.get("profile") if isinstance(rates, dict) else None)
        return found

    @property
    def source_shares(self) -> dict[str, dict[str, Any]]:
        """A data mixture's sources in the data report of ``trainer_run.json`` (``data.sources``), by name.

        Each: ``profile``, ``weight`` or ``repeat``, the ``examples``, ``tokens`` and
        ``trainable_tokens`` drawn from it, its ``share`` of the trained tokens and its
        own ``report``. Empty for a run of one dataset or one not finished.
        """
        data = (self.run_info or {}).get("data")
        listed = data.get("sources") if isinstance(data, dict) else None
        entries = listed if isinstance(listed, list) else []
        return {
            entry["name"]: entry
            for entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("name"), str)
        }

    @property
    def latest_preview(self) -> dict[str, Any] | None:
        """The most recent preview round with its samples, if any round has them."""
        for round_ in reversed(self.previews):
            if isinstance(round_.get("samples"), list):
                return round_
        latest = (self.status or {}).get("previews")
        return latest if isinstance(latest, dict) else None


def read_run_files(directory: str | Path) -> RunFiles:
    """Read every progress file in a run's output directory.

    :raises TrainerError: the directory does not exist, or holds none of the files a run writes.
    """
    path = Path(directory)
    if not path.is_dir():
        raise TrainerError(
            f"output directory '{directory}' not found: pass a run's output directory "
            "(output.output_dir), e.g. trainer report outputs/run"
        )
    status_file = status_file_in(path)
    run = RunFiles(
        directory=path,
        status_file=status_file,
        status=_read_json_object(status_file),
        metrics=read_jsonl(path / METRICS_FILE),
        previews=read_jsonl(path / PREVIEWS_FILE),
        run_info=_read_json_object(path / RUN_INFO_FILE),
    )
    if not run.previews and run.status is not None:
        history = run.status.get("preview_history")
        run.previews = (
            [entry for entry in history if isinstance(entry, dict)] if isinstance(history, list) else []
        )
    if run.status is None and run.run_info is None and not run.metrics and not run.previews:
        raise TrainerError(
            f"'{directory}' holds no run to report on (no {status_file.name}, {METRICS_FILE}, "
            f"{PREVIEWS_FILE} or {RUN_INFO_FILE}): pass the output directory of a run (output.output_dir)"
        )
    return run
