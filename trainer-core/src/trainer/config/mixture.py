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

from dataclasses import dataclass, field
from typing import Any

MIXTURE_STRATEGIES = ("all_exhausted", "first_exhausted")
"""How sampling by weight ends (``datasets.interleave_datasets``' stopping strategies)."""


@dataclass(kw_only=True)
class SourceConfig:
    """One dataset of ``data.mixture``, read through its own profile."""

    path: str | None = None
    """The source's data: a JSONL, JSON, CSV or Parquet file, a saved directory or a hub id (required)."""
    name: str | None = None
    """The source's name in reports, status and previews; None uses the file name without its suffix."""
    profile: str | None = None
    """The profile that reads this source (a name, or ``a+b``); None uses ``profile.name``."""
    options: dict[str, Any] = field(default_factory=dict)
    """The profile's options for this source, as in ``profile.options``."""
    system_prompt: str | None = None
    """This source's base system prompt; None uses ``profile.system_prompt``."""
    weight: float | None = None
    """Sampling weight: the source's share of the examples drawn (weights are normalised to sum to 1).
    Set weight on every source or on none; None with no repeat anywhere means equal weights."""
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
            "path: required: the file, directory or hub id this source reads" if not self.path else None,
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
        missing = ", ".join(f"mixture[{i}]" for i, has in enumerate(weighted) if not has)
        problems.append(f"mixture: weight is set on some sources but not on {missing}; set it on every one")
    if any(weighted) and any(repeated):
        problems.append(
            "mixture: some sources have a weight and others a repeat; use weights (sampling) "
            "or repeats (whole passes) for all of them"
        )
    names = [source_name(source, index) for index, source in enumerate(sources)]
    for name in sorted({name for name in names if names.count(name) > 1}):
        problems.append(f"mixture: two sources are named '{name}'; give them distinct names with name:")
    return problems


def source_name(source: SourceConfig, index: int) -> str:
    """The name a source goes by: its ``name``, else its file name without suffix, else ``source<i>``."""
    if source.name:
        return source.name.strip()
    if source.path:
        stem = source.path.rstrip("/").rpartition("/")[2]
        return stem.rsplit(".", 1)[0] if "." in stem else stem
    return f"source{index + 1}"
