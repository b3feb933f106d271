"""One source of a data mixture: a dataset, the profile that reads it, and its share of training.

``data.mixture`` is a list of these::

    data:
      mixture:
        - {path: gsm8k.jsonl, profile: regime3, weight: 0.5}
        - {path: tools.jsonl, profile: tool_use, weight: 0.3}
        - {path: chat.jsonl, profile: chat, weight: 0.2}

A run with ``data.dataset_path`` and ``profile.name`` instead is a mixture of one source.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MIXTURE_STRATEGIES = ("all_exhausted", "first_exhausted")
"""How sampling by weight ends (``datasets.interleave_datasets``' stopping strategies)."""
DATASET_SYNTAX = "PATH[:PROFILE][@WEIGHT]"
"""What one ``--dataset`` value holds: a source's path and, optionally, its profile and weight."""

_PROFILE_NAME = re.compile(r"[A-Za-z0-9_+-]+")
_NUMBER = re.compile(r"[-+0-9.eE]*")


@dataclass(kw_only=True)
class SourceConfig:
    """One dataset of ``data.mixture``, read through its own profile."""

    path: str | None = None
    """The source's data: a JSONL, JSON, CSV or Parquet file, a saved directory or a hub id; None uses
    the sample dataset its profile ships, else the built-in sample."""
    name: str | None = None
    """The source's name in reports, status and previews; None uses the file name without its suffix."""
    profile: str | None = None
    """The profile that reads this source (a name, or ``a+b``); None uses ``profile.name``."""
    options: dict[str, Any] = field(default_factory=dict)
    """The profile's options for this source, as in ``profile.options``; a source without a profile of its
    own and without options takes ``profile.options`` with ``profile.name``."""
    system_prompt: str | None = None
    """This source's base system prompt; None uses ``profile.system_prompt``."""
    weight: float | None = None
    """Sampling weight: the source's share of the examples drawn (weights are normalised to sum to 1).
    Set weight on every source or on none; with no weight and no repeat anywhere, every source is
    taken once, concatenated (each source's share then grows with its size)."""
    repeat: int | None = None
    """Whole passes over this source per epoch, instead of a weight (sources concatenated)."""
    limit: int | None = None
    """Use only the first this many rows of the source; None uses all."""
    validation_split: float = 0.0
    """Fraction of this source held out for validation (0 to below 1); 0 holds out none."""
    validation_path: str | None = None
    """A separate validation file for this source."""

    def _problems(self) -> list[str]:
        problems: list[str | None] = [
            "path: must not be blank (null uses the profile's sample)"
            if self.path is not None and not self.path.strip()
            else None,
            "name: must not be blank" if self.name is not None and not self.name.strip() else None,
            "profile: must not be blank" if self.profile is not None and not self.profile.strip() else None,
            "weight and repeat are both set; set one of them"
            if self.weight is not None and self.repeat is not None
            else None,
            f"weight: must be positive, got {self.weight}"
            if self.weight is not None and not self.weight > 0
            else None,
            f"repeat: must be at least 1, got {self.repeat}"
            if self.repeat is not None and self.repeat < 1
            else None,
            f"limit: must be at least 1, got {self.limit}"
            if self.limit is not None and self.limit < 1
            else None,
            f"validation_split: must be at least 0 and below 1, got {self.validation_split}"
            if not 0 <= self.validation_split < 1
            else None,
            "validation_path and validation_split are both set; set only one of them"
            if self.validation_path is not None and self.validation_split > 0
            else None,
        ]
        return [problem for problem in problems if problem]


def mixture_problems(sources: list[SourceConfig]) -> list[str]:
    """Problems of the list as a whole (each source checks its own fields): ``mixture...: ...`` lines."""
    problems = []
    weighted = [source.weight is not None for source in sources]
    repeated = [source.repeat is not None for source in sources]
    if any(weighted) and not all(weighted):
        missing = [f"mixture[{i}]" for i, has in enumerate(weighted) if not has]
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5:,} more" if len(missing) > 5 else "")
        problems.append(f"mixture: weight is set on some sources but not on {shown}; set it on every one")
    if any(weighted) and any(repeated):
        problems.append(
            "mixture: some sources have a weight and others a repeat; use weights (sampling) "
            "or repeats (whole passes) for all of them"
        )
    names = Counter(source_name(source, index) for index, source in enumerate(sources))
    for name in sorted(name for name, count in names.items() if count > 1):
        problems.append(f"mixture: two sources are named '{name}'; give them distinct names with name:")
    return problems


def source_name(source: SourceConfig, index: int) -> str:
    """The name a source goes by: its ``name``, else its file name without suffix, else its profile's."""
    if source.name:
        return source.name.strip()
    if source.path:
        stem = source.path.rstrip("/").rpartition("/")[2]
        return stem.rsplit(".", 1)[0] if "." in stem else stem
    return source.profile or f"source{index + 1}"


def parse_dataset_flag(text: str) -> dict[str, Any]:
    """One ``--dataset`` value, ``PATH[:PROFILE][@WEIGHT]``, as a source: ``path``, and
    ``profile`` and ``weight`` where given.

    Read from the right: the text after the last ``@`` is the weight, unless it holds ``/``,
    ``\\`` or ``:`` (then the ``@`` is part of the path); then the text after the last ``:`` is
    the profile, if it is a profile name (letters, digits, ``_``, ``-``, ``+``). So ``C:/data/x.jsonl``
    and ``runs:2024/x.jsonl`` are paths, and ``mail@home.jsonl@1`` is a file with an ``@`` in its name.

    :raises ValueError: one line naming the value and the fix: no path, nothing after ``:``, or a
        weight that is not a number above 0.
    """
    rest, weight = text, None
    head, at, tail = rest.rpartition("@")
    if at and not any(char in tail for char in "/\\:"):
        weight, rest = _weight(text, head, tail), head
    head, colon, tail = rest.rpartition(":")
    profile = None
    if colon and _PROFILE_NAME.fullmatch(tail):
        profile, rest = tail, head
    elif colon and not tail:
        raise ValueError(
            f"--dataset {text!r}: no profile after ':'; write {DATASET_SYNTAX} with a profile name "
            "after the ':' (trainer profiles lists them), or leave the ':' out"
        )
    if not rest.strip():
        raise ValueError(
            f"--dataset {text!r}: no path before the profile or weight; write {DATASET_SYNTAX}, "
            "e.g. data/train.jsonl:chat@0.5"
        )
    source: dict[str, Any] = {"path": rest}
    if profile is not None:
        source["profile"] = profile
    if weight is not None:
        source["weight"] = weight
    return source


def dataset_flag(path: str, profile: str | None = None, weight: float | None = None) -> str:
    """The ``--dataset`` value that :func:`parse_dataset_flag` reads back as this source."""
    return path + (f":{profile}" if profile else "") + ("" if weight is None else f"@{weight:g}")


def _weight(text: str, head: str, tail: str) -> float:
    try:
        weight = float(tail)
    except ValueError:
        weight = math.nan
    if math.isfinite(weight) and weight > 0:
        return weight
    # "@name" that is no number may be part of the file name; a weight after it keeps it there.
    named = (
        "" if _NUMBER.fullmatch(tail) else f" (a file whose name holds '@' takes a weight after it: {text}@1)"
    )
    raise ValueError(
        f"--dataset {text!r}: the weight after '@' must be a number above 0, got {tail!r}; "
        f"write e.g. {head}@0.5{named}"
    )


def source_profile(
    source: SourceConfig, default_name: str, default_options: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The profile name and options that read ``source``.

    A source with neither a profile nor options of its own takes the run's
    (``profile.name`` with ``profile.options``); one with either takes its own.
    """
    if source.profile or source.options:
        return source.profile or default_name, dict(source.options)
    return default_name, dict(default_options)
