"""What the data pipeline did to a dataset, for ``trainer run --dry-run`` and the run record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MAX_PROBLEMS = 5
"""Problem rows quoted in a report; the counts cover all of them."""


@dataclass
class DataReport:
    """Counts for one prepared split (the training set, or the validation set)."""

    source: str
    """The file, directory or hub name the rows came from (or the built-in sample)."""
    max_length: int
    """The token limit examples were held to."""
    rows_read: int = 0
    """Rows in the source (after ``example_limit`` and the validation split)."""
    held_back: int = 0
    """Rows read but kept out of training for previews (counted in ``rows_read``)."""
    invalid_skipped: int = 0
    """Rows the profile could not read, skipped because ``skip_invalid`` is on."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Rows dropped, by reason (over ``max_length``; no trainable token left)."""
    truncated: int = 0
    """Examples cut to ``max_length`` (``overlength: truncate``) and kept."""
    examples: int = 0
    """Examples kept for training."""
    tokens: int = 0
    """Tokens in the kept examples."""
    trainable_tokens: int = 0
    """Tokens the loss is computed on (the assistant's)."""
    packed_sequences: int | None = None
    """Sequences the examples were packed into; ``None`` without packing."""
    packing_efficiency: float | None = None
    """Real tokens / (packed sequences * ``max_length``); ``None`` without packing."""
    padding_waste: float | None = None
    """Without packing: the share of batch positions that are padding, for batches drawn as the run
    draws them (:func:`trainer.data.batching.padding_waste`); ``None`` with packing or when not measured."""
    grouped_by_length: bool = False
    """Batches hold examples of similar length (``data.group_by_length``) rather than drawn at random."""
    own_system_prompt: int = 0
    """Rows with their own system turn, which replaces ``profile.system_prompt`` as the base prompt."""
    problems: list[str] = field(default_factory=list)
    """The first few skipped, dropped or truncated rows, each with its row number and reason."""
    validation: DataReport | None = None
    """The validation split's report, when the caller attaches it."""
    sources: list[dict[str, Any]] = field(default_factory=list)
    """For a mixture: per source, its name, profile, weight or repeat, the examples, tokens and
    trainable tokens drawn from it, its ``share`` of the trained tokens, and its own ``report``."""

    @property
    def rows_dropped(self) -> int:
        """Rows dropped for any reason (invalid rows not included)."""
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-safe data."""
        return asdict(self)

    def format(self) -> str:
        """A few human-readable lines."""
        reasons = ", ".join(f"{reason}: {count:,}" for reason, count in self.dropped.items())
        held_back = f" ({self.held_back:,} held back for previews)" if self.held_back else ""
        lines = [
            f"data: {self.source}",
            f"  rows read {self.rows_read:,}{held_back}; invalid skipped {self.invalid_skipped:,}; "
            f"dropped {self.rows_dropped:,}{f' ({reasons})' if reasons else ''}; "
            f"truncated {self.truncated:,}",
            f"  examples {self.examples:,}: {self.tokens:,} tokens, {self.trainable_tokens:,} trainable "
            f"({_percent(self.trainable_tokens, self.tokens)}), max_length {self.max_length:,}",
        ]
        if self.own_system_prompt:
            lines.append(
                f"  rows with their own system prompt: {self.own_system_prompt:,} "
                "(used instead of profile.system_prompt)"
            )
        if self.packed_sequences is not None:
            lines.append(
                f"  packed into {self.packed_sequences:,} sequences of up to {self.max_length:,} tokens: "
                f"{(self.packing_efficiency or 0.0) * 100:.1f}% efficiency"
            )
        if self.padding_waste is not None:
            how = (
                "batches grouped by length"
                if self.grouped_by_length
                else "batches drawn at random; data.group_by_length=true groups them"
            )
            lines.append(
                f"  padding: {self.padding_waste * 100:.1f}% of the positions in a batch "
                f"({how}; data.packing=true packs examples instead)"
            )
        lines += [f"  {problem}" for problem in self.problems]
        lines += _source_lines(self.sources)
        if self.validation is not None:
            lines += [
                "validation " + line if index == 0 else line
                for index, line in enumerate(self.validation.format().splitlines())
            ]
        return "\n".join(lines)


def _source_lines(sources: list[dict[str, Any]]) -> list[str]:
    """Each mixture source: what was read and dropped, what was drawn, its share of trained tokens."""
    lines = []
    for source in sources:
        own = source["report"]
        weight = source.get("weight")
        drawn = f"weight {weight:.2f}" if weight is not None else f"x{source['repeat']}"
        dropped = sum(own["dropped"].values())
        lines += [
            f"  source {source['name']} ({source['profile']}, {drawn}): rows read {own['rows_read']:,}, "
            f"invalid skipped {own['invalid_skipped']:,}, dropped {dropped:,}; "
            f"{own['examples']:,} examples, {own['tokens']:,} tokens, "
            f"{own['trainable_tokens']:,} trainable",
            f"    drawn {source['examples']:,} examples, {source['trainable_tokens']:,} trainable tokens: "
            f"{source['share'] * 100:.1f}% of the trained tokens",
        ]
        lines += [f"    {problem}" for problem in own["problems"]]
    return lines


def _percent(part: int, whole: int) -> str:
    return f"{part / whole * 100:.1f}%" if whole else "0%"
