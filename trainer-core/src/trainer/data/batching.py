"""How unpacked examples are batched: at random (the default) or grouped by length; the padding left.

Each batch is padded to its longest example. Drawn at random, a batch of short
examples with one long one is mostly padding; grouped by length (transformers'
``LengthGroupedSampler``: the shuffled examples are cut into groups of 50
optimizer steps' worth, each group sorted by length) a batch holds examples of
about the same length, and the order stays random from one group to the next.
"""

from __future__ import annotations

from typing import Any

LENGTH_COLUMN = "length"
"""The column holding each example's token count, which the sampler groups by."""

GROUP_STEPS = 50
"""Optimizer steps' worth of examples sorted together (transformers' ``mega_batch_mult``)."""


def with_lengths(dataset: Any, lengths: list[int]) -> Any:
    """``dataset`` with :data:`LENGTH_COLUMN`, so grouping reads lengths instead of decoding every row."""
    if LENGTH_COLUMN in dataset.column_names:
        dataset = dataset.remove_columns(LENGTH_COLUMN)
    return dataset.add_column(LENGTH_COLUMN, lengths)


def sampling_arguments(group_by_length: bool) -> dict[str, Any]:
    """The ``TrainingArguments`` keywords that group batches by length, under this transformers' names."""
    if not group_by_length:
        return {}
    from dataclasses import fields

    from transformers import TrainingArguments

    names = {field.name for field in fields(TrainingArguments)}
    if "train_sampling_strategy" in names:
        return {"train_sampling_strategy": "group_by_length", "length_column_name": LENGTH_COLUMN}
    return {"group_by_length": True, "length_column_name": LENGTH_COLUMN}


def padding_waste(
    lengths: list[int], batch_size: int, seed: int = 0, *, group_size: int | None = None
) -> float:
    """The share of batch positions that are padding when ``lengths`` are batched.

    :param group_size: examples per optimizer step when batches are grouped by length
        (the sampler's order, drawn with ``seed``); ``None`` draws batches at random.
    """
    if not lengths:
        return 0.0
    if group_size is None:
        import random

        order = list(lengths)
        random.Random(seed).shuffle(order)
    else:
        import torch
        from transformers.trainer_pt_utils import get_length_grouped_indices

        generator = torch.Generator().manual_seed(seed)
        multiple = min(len(lengths) // (group_size * 4), GROUP_STEPS) or 1
        indices = get_length_grouped_indices(lengths, group_size, multiple, generator=generator)
        order = [lengths[index] for index in indices]
    padded = 0
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        padded += max(batch) * len(batch)
    return 1 - sum(order) / padded
