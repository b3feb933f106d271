"""Several tokenized sources into one training set: drawn by weight, or repeated whole.

Each source is tokenized on its own (and cached by ``datasets`` on its own), so
changing a weight re-draws the mixture but tokenizes nothing again. Drawing by
weight is ``datasets.interleave_datasets`` with the weights as probabilities and a
seed; repeats are whole copies concatenated. Either way the result is the same for
the same seed, and the report says what share of the trained tokens each source got.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SOURCE_COLUMN = "_trainer_source"
"""Each example's source, by index; present only while the mixture is measured."""
TRAINABLE_COLUMN = "_trainer_trainable"
"""Each example's trained tokens (labels not ignored); present only while the mixture is measured."""
_LENGTH_COLUMN = "_trainer_length"
IGNORED = -100


@dataclass
class SourceShare:
    """What one source put into the mixed training set."""

    name: str
    profile: str
    weight: float | None
    """The normalised sampling weight, or None when the source is repeated."""
    repeat: int | None
    examples: int = 0
    """Examples drawn from this source (a row drawn twice counts twice)."""
    tokens: int = 0
    trainable_tokens: int = 0
    share: float = 0.0
    """This source's part of all trained tokens (0 to 1)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mix(
    sets: list[Any],
    *,
    weights: list[float] | None,
    repeats: list[int] | None,
    seed: int,
    strategy: str = "all_exhausted",
) -> Any:
    """One dataset from ``sets``: interleaved by ``weights`` (normalised), or each repeated ``repeats`` times.

    With neither, every set once, concatenated. ``sets`` must have the same columns.
    """
    from datasets import concatenate_datasets, interleave_datasets

    if len(sets) == 1 and weights is None and (repeats is None or repeats[0] == 1):
        return sets[0]
    if weights is not None:
        total = sum(weights)
        return interleave_datasets(
            sets, probabilities=[w / total for w in weights], seed=seed, stopping_strategy=strategy
        )
    counts = repeats or [1] * len(sets)
    copies = [part for part, count in zip(sets, counts, strict=True) for _ in range(count)]
    return concatenate_datasets(copies)


def tag(dataset: Any, index: int) -> Any:
    """``dataset`` (``input_ids``, ``labels``) with its source index, length and trained tokens as columns."""
    import numpy as np
    import pyarrow.compute as pc
    from datasets.fingerprint import Hasher

    lengths, trainable = [], []
    for table in dataset.select_columns(["input_ids", "labels"]).with_format("arrow").iter(batch_size=10_000):
        lengths.append(np.asarray(pc.list_value_length(table.column("input_ids")).to_numpy(zero_copy_only=False)))
        labels = table.column("labels").combine_chunks()
        parents = np.asarray(pc.list_parent_indices(labels).to_numpy(zero_copy_only=False))
        values = np.asarray(pc.list_flatten(labels).to_numpy(zero_copy_only=False))
        trainable.append(np.bincount(parents[values != IGNORED], minlength=table.num_rows))
    tagged = dataset
    for name, column in (
        (SOURCE_COLUMN, np.full(len(dataset), index, dtype=np.int64)),
        (_LENGTH_COLUMN, np.concatenate(lengths).astype(np.int64)),
        (TRAINABLE_COLUMN, np.concatenate(trainable).astype(np.int64)),
    ):
        fingerprint = Hasher.hash([tagged._fingerprint, name, index])
        tagged = tagged.add_column(name, column, new_fingerprint=fingerprint)
    return tagged


def measure(mixed: Any, shares: list[SourceShare]) -> Any:
    """Fill ``shares`` from a mixture of :func:`tag`-ged sets; return the mixture without those columns."""
    import numpy as np

    columns = mixed.select_columns([SOURCE_COLUMN, _LENGTH_COLUMN, TRAINABLE_COLUMN]).with_format("numpy")[:]
    source = columns[SOURCE_COLUMN]
    count = len(shares)
    examples = np.bincount(source, minlength=count)
    tokens = np.bincount(source, weights=columns[_LENGTH_COLUMN], minlength=count)
    trainable = np.bincount(source, weights=columns[TRAINABLE_COLUMN], minlength=count)
    total = float(trainable.sum())
    for index, share in enumerate(shares):
        share.examples = int(examples[index])
        share.tokens = int(tokens[index])
        share.trainable_tokens = int(trainable[index])
        share.share = round(share.trainable_tokens / total, 4) if total else 0.0
    return mixed.select_columns(["input_ids", "labels"])
