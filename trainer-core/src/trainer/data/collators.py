"""Batches for transformers' ``Trainer``: padded examples, or packed rows with examples kept apart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain, pairwise
from typing import Any

from trainer.data.chat_template import IGNORE_INDEX


class PaddedCollator:
    """Pads examples on the right to the longest in the batch.

    Returns ``input_ids``, ``attention_mask`` (0 on padding) and ``labels``
    (:data:`IGNORE_INDEX` on padding), as int64 tensors.

    :param pad_token_id: the id padding is filled with; masked, so it never reaches the loss.
    :param pad_to_multiple_of: round the padded length up to a multiple of this (tensor cores like 8).
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Collate ``features`` (each with ``input_ids`` and ``labels``) into a padded batch."""
        import torch

        width = max(len(feature["input_ids"]) for feature in features)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(features), width), dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)
        for row, feature in enumerate(features):
            length = len(feature["input_ids"])
            input_ids[row, :length] = torch.as_tensor(feature["input_ids"], dtype=torch.long)
            labels[row, :length] = torch.as_tensor(feature["labels"], dtype=torch.long)
            attention_mask[row, :length] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


class PackedCollator:
    """Batches of packed rows (from :func:`~trainer.data.packing.pack_dataset`), examples kept apart.

    Returns ``input_ids``, ``labels``, ``position_ids`` restarting at 0 at every
    example, and no ``attention_mask``: transformers then builds a mask that
    keeps attention inside each example (eager, sdpa and flex attention).
    Also returns ``cu_seq_lens_q``/``cu_seq_lens_k`` and ``max_length_q``/``max_length_k``,
    the example boundaries flash attention's varlen kernels read (other
    implementations ignore them), and ``use_cache=False``: with a cache (a
    model config's default), transformers skips the packed-sequence check and
    attention would cross examples. Each example's first label is
    :data:`IGNORE_INDEX`, since the logit before it belongs to another example.

    :param pad_token_id: fills the end of rows shorter than the batch's longest; the
        padding gets its own position ids, so it is a separate sequence, and no labels.
    :param flatten: put the whole batch in one row, padding-free. Right for flash
        attention, whose cost is per example; with eager or sdpa attention one row of
        batch * max_length tokens costs (batch * max_length)² instead of batch * max_length².
    """

    def __init__(self, pad_token_id: int = 0, flatten: bool = False) -> None:
        self.pad_token_id = pad_token_id
        self.flatten = flatten

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Collate ``features`` (packed rows, or single examples without ``position_ids``)."""
        import torch

        rows = [_row(feature) for feature in features]
        if self.flatten:
            ids, labels, positions = zip(*rows, strict=True)
            rows = [(list(chain(*ids)), list(chain(*labels)), list(chain(*positions)))]
        width = max(len(ids) for ids, _, _ in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        label_ids = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        position_ids = torch.zeros((len(rows), width), dtype=torch.long)
        lengths: list[int] = []  # of every sequence, padding included, in batch order
        for index, (row_ids, row_labels, row_positions) in enumerate(rows):
            # The padding restarts its positions too, so it is a sequence of its own.
            row_positions = row_positions + list(range(width - len(row_ids)))
            input_ids[index, : len(row_ids)] = torch.as_tensor(row_ids, dtype=torch.long)
            label_ids[index, : len(row_ids)] = torch.as_tensor(row_labels, dtype=torch.long)
            position_ids[index] = torch.as_tensor(row_positions, dtype=torch.long)
            starts = [i for i, position in enumerate(row_positions) if position == 0] + [width]
            lengths += [end - start for start, end in pairwise(starts)]
        label_ids[position_ids == 0] = IGNORE_INDEX
        cu_seq_lens = torch.tensor([0, *lengths], dtype=torch.int32).cumsum(0, dtype=torch.int32)
        return {
            "input_ids": input_ids,
            "labels": label_ids,
            "position_ids": position_ids,
            "cu_seq_lens_q": cu_seq_lens,
            "cu_seq_lens_k": cu_seq_lens,
            "max_length_q": max(lengths),
            "max_length_k": max(lengths),
            "use_cache": False,
        }


def _row(feature: Mapping[str, Any]) -> tuple[list[int], list[int], list[int]]:
    ids = list(feature["input_ids"])
    positions = list(feature["position_ids"]) if "position_ids" in feature else list(range(len(ids)))
    return ids, list(feature["labels"]), positions


def build_collator(
    tokenizer: Any, packing: bool = False, attn_implementation: str | None = None
) -> PaddedCollator | PackedCollator:
    """The collator for datasets from :func:`~trainer.data.pipeline.prepare_dataset` (``packing=False``)
    or :func:`~trainer.data.packing.pack_dataset` (``packing=True``). The pad id is the
    tokenizer's pad token, else its eos token, else 0.

    :param attn_implementation: the model's attention kernel; with flash attention, packed
        batches are flattened into one padding-free row.
    """
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    if packing:
        return PackedCollator(int(pad), flatten="flash" in (attn_implementation or ""))
    return PaddedCollator(int(pad))
