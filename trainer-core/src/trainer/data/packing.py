"""Packing tokenized examples into sequences of at most ``max_length`` tokens.

A packed row holds several whole examples back to back, with ``position_ids``
restarting at 0 at each one. Those position ids mark the boundaries:
transformers (5.x) reads them when a forward pass gets ``position_ids``, no
``attention_mask`` and no cache, and masks attention so that no token sees
another example (``masking_utils.find_packed_sequence_indices``, for eager,
sdpa and flex attention). Flash attention gets the same boundaries as
``cu_seq_lens``. :class:`trainer.data.collators.PackedCollator` builds batches in
that form.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainer.data.report import DataReport

PACKED_COLUMNS = ("input_ids", "labels", "position_ids")


def plan_packs(lengths: Sequence[int], max_length: int) -> list[list[int]]:
    """Group example indices into packs whose lengths sum to at most ``max_length``.

    Best-fit decreasing: longest examples first, each into the fullest pack
    it still fits. Deterministic; usually within a few percent of the best
    possible packing.

    :raises ValueError: an example is longer than ``max_length``.
    """
    packs: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, pack number), sorted
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        length = lengths[index]
        if length > max_length:
            raise ValueError(f"example {index} has {length} tokens, more than max_length={max_length}")
        slot = bisect_left(free, (length, -1))
        if slot < len(free):
            room, number = free.pop(slot)
        else:
            room, number = max_length, len(packs)
            packs.append([])
        packs[number].append(index)
        if room - length > 0:
            insort(free, (room - length, number))
    return packs


def pack_dataset(dataset: Any, max_length: int, report: DataReport | None = None) -> Any:
    """``dataset`` (``input_ids`` and ``labels`` per example) packed into rows of up to ``max_length``.

    Each packed row has ``input_ids``, ``labels`` and ``position_ids`` (restarting
    at every example). A file-backed dataset's packs are cached next to it
    and reused by a second run on the same data.

    :param report: when given, its ``packed_sequences`` and ``packing_efficiency`` are set.
    """
    from datasets import Dataset, Features, List, Value
    from datasets.fingerprint import Hasher

    lengths = example_lengths(dataset)
    packs = plan_packs(lengths, max_length)
    fingerprint = Hasher.hash(["trainer-packing-v1", dataset._fingerprint, max_length])
    cache_file = None
    if dataset.cache_files:
        folder = Path(dataset.cache_files[0]["filename"]).parent
        cache_file = str(folder / f"trainer-packed-{fingerprint}.arrow")
    features = Features({name: List(Value("int32")) for name in PACKED_COLUMNS})
    packed = Dataset.from_dict({"members": packs}).map(
        _assemble,
        batched=True,
        batch_size=256,
        remove_columns=["members"],
        fn_kwargs={"source": dataset},
        features=features,
        new_fingerprint=fingerprint,
        cache_file_name=cache_file,
        desc="Packing",
    )
    if report is not None:
        report.packed_sequences = len(packed)
        report.packing_efficiency = packing_efficiency(sum(lengths), len(packed), max_length)
    return packed


def packing_efficiency(tokens: int, sequences: int, max_length: int) -> float:
    """Real tokens / (``sequences`` * ``max_length``): the share of packed room not left empty."""
    return tokens / (sequences * max_length) if sequences else 0.0


def example_lengths(dataset: Any) -> list[int]:
    """The number of tokens of each example, read from Arrow without decoding the ids."""
    import pyarrow.compute as pc

    lengths: list[int] = []
    for table in dataset.select_columns(["input_ids"]).with_format("arrow").iter(batch_size=10_000):
        lengths += pc.list_value_length(table.column("input_ids")).to_pylist()
    return lengths


def _assemble(batch: dict[str, list[Any]], source: Any) -> dict[str, list[list[int]]]:
    members = batch["members"]
    rows = source.select_columns(["input_ids", "labels"])[[i for pack in members for i in pack]]
    out: dict[str, list[list[int]]] = {name: [] for name in PACKED_COLUMNS}
    cursor = 0
    for pack in members:
        input_ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for _ in pack:
            ids = rows["input_ids"][cursor]
            input_ids += ids
            labels += rows["labels"][cursor]
            positions += range(len(ids))
            cursor += 1
        out["input_ids"].append(input_ids)
        out["labels"].append(labels)
        out["position_ids"].append(positions)
    return out
