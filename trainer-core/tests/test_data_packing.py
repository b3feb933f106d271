"""Packing and the collators; packed and unpacked losses agree on a tiny Qwen3 the test builds."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from trainer.data.chat_template import IGNORE_INDEX
from trainer.data.collators import PackedCollator, PaddedCollator, build_collator
from trainer.data.loading import load_raw_datasets
from trainer.data.packing import example_lengths, pack_dataset, plan_packs
from trainer.data.pipeline import prepare_dataset
from trainer.profiles.chat import ChatProfile
from trainer.testing import tiny_tokenizer as make_tokenizer


def tiny_tokenizer():
    """A byte-level BPE over a few words, without a chat template (so ChatML is used)."""
    return make_tokenizer(["system", "user", "assistant", "Count to ten.", "one two three"] * 10)


def prepared(tmp_path: Path, count: int = 12, max_length: int = 64):
    """``count`` examples of different lengths, tokenized from a file."""
    words = "one two three four five six seven eight nine ten".split()
    rows = [{"prompt": "Count to ten.", "response": " ".join(words[: 1 + i % 10])} for i in range(count)]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    train, _ = load_raw_datasets(str(path), cache_dir=str(tmp_path / "cache"))
    tokenizer = tiny_tokenizer()
    dataset, report = prepare_dataset(
        train,
        tokenizer=tokenizer,
        profile=ChatProfile(),
        system_prompt="",
        stop_sequences=[],
        max_length=max_length,
    )
    return dataset, report, tokenizer


def test_plan_packs_fits_every_example_once():
    lengths = [6, 4, 5, 5, 3, 7, 1, 9]
    packs = plan_packs(lengths, 10)
    assert sorted(i for pack in packs for i in pack) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in pack) <= 10 for pack in packs)
    assert len(packs) == 4  # 40 tokens in 4 x 10: nothing wasted
    assert plan_packs(lengths, 10) == packs
    with pytest.raises(ValueError, match="example 1 has 11 tokens, more than max_length=10"):
        plan_packs([3, 11], 10)


def test_packed_rows_hold_whole_examples_with_restarting_positions(tmp_path):
    dataset, report, _ = prepared(tmp_path)
    max_length = 64
    packed = pack_dataset(dataset, max_length, report=report)
    assert packed.column_names == ["input_ids", "labels", "position_ids"]
    originals = sorted((tuple(e["input_ids"]), tuple(e["labels"])) for e in dataset)
    found = []
    for pack in packed:
        assert len(pack["input_ids"]) == len(pack["labels"]) == len(pack["position_ids"]) <= max_length
        starts = [i for i, position in enumerate(pack["position_ids"]) if position == 0] + [
            len(pack["input_ids"])
        ]
        for start, end in pairwise(starts):
            assert pack["position_ids"][start:end] == list(range(end - start))
            found.append((tuple(pack["input_ids"][start:end]), tuple(pack["labels"][start:end])))
    assert sorted(found) == originals
    tokens = sum(example_lengths(dataset))
    assert report.packed_sequences == len(packed) < len(dataset)
    assert report.packing_efficiency == pytest.approx(tokens / (len(packed) * max_length))
    assert f"packed into {len(packed)} sequences of up to 64 tokens" in report.format()


def test_packing_a_file_backed_dataset_again_comes_from_the_cache(tmp_path, monkeypatch):
    dataset, _, _ = prepared(tmp_path)
    first = pack_dataset(dataset, 64)

    def must_not_run(*args, **kwargs):
        raise AssertionError("packed again instead of reading the cache")

    monkeypatch.setattr("trainer.data.packing._assemble", must_not_run)
    second = pack_dataset(dataset, 64)
    assert second.cache_files == first.cache_files and second.cache_files
    assert second.to_dict() == first.to_dict()


def test_padded_collator_masks_padding():
    batch = PaddedCollator(pad_token_id=0, pad_to_multiple_of=4)(
        [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [8, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100], [8, -100, -100, -100]]
    assert batch["input_ids"].dtype == torch.long


FEATURES = [
    {"input_ids": [1, 2, 3, 4, 5], "labels": [1, 2, 3, 4, 5], "position_ids": [0, 1, 2, 0, 1]},
    {"input_ids": [6, 7], "labels": [-100, 7]},  # a plain example: one sequence
]


def test_packed_collator_keeps_rows_and_pads_with_a_separate_sequence():
    batch = PackedCollator(pad_token_id=9)(FEATURES)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4, 5], [6, 7, 9, 9, 9]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 1, 0, 1, 2]]
    # the first token of each example is never a target: the logit before it is another example's
    assert batch["labels"].tolist() == [[-100, 2, 3, -100, 5], [-100, 7, -100, -100, -100]]
    assert batch["cu_seq_lens_q"].tolist() == [0, 3, 5, 7, 10]  # 3 + 2, then 2 + 3 of padding
    assert batch["max_length_q"] == 3 and batch["cu_seq_lens_k"] is batch["cu_seq_lens_q"]
    assert batch["use_cache"] is False and "attention_mask" not in batch


def test_packed_collator_flattened_has_no_padding():
    batch = PackedCollator(pad_token_id=9, flatten=True)(FEATURES)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4, 5, 6, 7]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1]]
    assert batch["labels"].tolist() == [[-100, 2, 3, -100, 5, -100, 7]]
    assert batch["cu_seq_lens_q"].tolist() == [0, 3, 5, 7]


def test_build_collator_picks_by_packing():
    tokenizer = tiny_tokenizer()
    packed = build_collator(tokenizer, packing=True)
    assert isinstance(packed, PackedCollator) and not packed.flatten
    assert packed.pad_token_id == tokenizer.pad_token_id
    flash = build_collator(tokenizer, packing=True, attn_implementation="flash_attention_2")
    assert isinstance(flash, PackedCollator) and flash.flatten
    padded = build_collator(tokenizer, packing=False)
    assert isinstance(padded, PaddedCollator) and padded.pad_token_id == tokenizer.pad_token_id
    tokenizer.pad_token = None
    assert build_collator(tokenizer).pad_token_id == tokenizer.eos_token_id


def tiny_qwen3(vocab_size: int, attention: str):
    from trainer.testing import tiny_qwen3 as build

    return build(
        vocab_size=vocab_size,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=128,
        tie_word_embeddings=False,
        initializer_range=0.3,  # larger than the default, so attending across examples shows clearly
        attn_implementation=attention,
    ).eval()  # config.use_cache stays True, the transformers default


def token_losses(model, batch) -> torch.Tensor:
    """Per-token cross-entropy of predicting labels[t] from position t - 1 (0 where ignored)."""
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    labels = batch["labels"][:, 1:]
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2).double(), labels, ignore_index=IGNORE_INDEX, reduction="none"
    )
    return torch.nn.functional.pad(losses, (1, 0))


@pytest.mark.parametrize("flatten", [False, True], ids=["rows", "flattened"])
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_per_example_loss_is_the_same_packed_and_unpacked(tmp_path, attention, flatten):
    dataset, _, tokenizer = prepared(tmp_path)
    packed = pack_dataset(dataset, 64)
    model = tiny_qwen3(len(tokenizer), attention)
    examples = list(dataset)

    padded = build_collator(tokenizer, packing=False)(examples)
    unpacked = token_losses(model, padded).sum(dim=1)  # one loss per example

    packed_batch = PackedCollator(tokenizer.pad_token_id, flatten=flatten)(list(packed))
    assert packed_batch["input_ids"].numel() < padded["input_ids"].numel()
    losses = token_losses(model, packed_batch)
    by_example = {}
    for row, positions in enumerate(packed_batch["position_ids"].tolist()):
        ids = packed_batch["input_ids"][row].tolist()
        starts = [i for i, position in enumerate(positions) if position == 0] + [len(ids)]
        for start, end in pairwise(starts):
            by_example[tuple(ids[start:end])] = losses[row, start:end].sum()
    for example, loss in zip(examples, unpacked, strict=True):
        assert by_example[tuple(example["input_ids"])] == pytest.approx(loss.item(), rel=1e-5, abs=1e-6)

    # The mean loss transformers computes (what Trainer optimises) agrees too.
    with torch.no_grad():
        packed_loss = model(**packed_batch).loss
        padded_loss = model(**padded).loss
    assert packed_loss.item() == pytest.approx(padded_loss.item(), rel=1e-5)

    # Controls: the test can fail. With the model's default cache, or positions that do not restart,
    # attention crosses examples and the losses change.
    running = torch.arange(packed_batch["input_ids"].shape[1]).expand_as(packed_batch["input_ids"])
    with torch.no_grad():
        cached = model(**{**packed_batch, "use_cache": True}).loss
        not_restarting = model(**{**packed_batch, "position_ids": running}).loss
    assert abs(cached.item() - padded_loss.item()) > 1e-3
    assert abs(not_restarting.item() - padded_loss.item()) > 1e-3


def test_padding_waste_is_the_share_of_padded_positions_in_random_batches():
    from trainer.data.batching import padding_waste
    from trainer.data.report import DataReport

    assert padding_waste([5, 5, 5, 5], batch_size=2) == 0.0
    assert padding_waste([1, 3], batch_size=2) == pytest.approx(1 - 4 / 6)
    assert padding_waste([1, 3], batch_size=1) == 0.0
    assert padding_waste([], batch_size=4) == 0.0
    report = DataReport(source="rows.jsonl", max_length=64, padding_waste=0.25)
    assert (
        "  padding: 25.0% of the positions in a batch (batches drawn at random; "
        "data.group_by_length=true groups them; data.packing=true packs examples instead)"
    ) in report.format().splitlines()
    report.grouped_by_length = True
    assert "(batches grouped by length; data.packing=true" in report.format()


def test_batches_grouped_by_length_leave_less_padding():
    from trainer.data.batching import padding_waste

    lengths = [8, 300, 12, 280, 9, 310, 10, 290] * 50
    grouped = padding_waste(lengths, batch_size=4, seed=3, group_size=8)
    drawn = padding_waste(lengths, batch_size=4, seed=3)
    assert drawn > 0.4
    assert grouped < 0.05
    assert padding_waste([5, 5, 5, 5], batch_size=2, group_size=2) == 0.0


def test_the_trainer_draws_batches_grouped_by_length(tmp_path):
    """The training arguments a run builds make transformers' Trainer group its batches by length."""
    from datasets import Dataset
    from transformers import Trainer

    from trainer.config import HyperparamsConfig
    from trainer.core.arguments import training_arguments
    from trainer.data.batching import padding_waste, with_lengths
    from trainer.data.collators import PaddedCollator
    from trainer.models.demo import load_demo_tokenizer
    from trainer.models.demo_model import build_demo_model

    lengths = [4, 60, 5, 58, 6, 61, 7, 59] * 16
    rows = Dataset.from_list([{"input_ids": [1] * n, "labels": [1] * n} for n in lengths])
    tokenizer = load_demo_tokenizer()

    def widths(group: bool) -> list[int]:
        args = training_arguments(
            checkpoints_dir=tmp_path / str(group),
            hyper=HyperparamsConfig(batch_size=4, max_steps=32),
            precision="float32",
            device="cpu",
            evaluate=False,
            save_steps=100,
            save_total_limit=None,
            report_to=[],
            group_by_length=group,
        )
        trainer = Trainer(
            model=build_demo_model(tokenizer, seed=0),
            args=args,
            train_dataset=with_lengths(rows, lengths) if group else rows,
            data_collator=PaddedCollator(pad_token_id=0),
        )
        batches = list(trainer.get_train_dataloader())
        shares = [int(batch["attention_mask"].sum()) / batch["attention_mask"].numel() for batch in batches]
        return shares

    grouped, drawn = widths(True), widths(False)
    # Only the batches where a group of 32 examples turns from long to short ones mix both.
    assert 1 - sum(grouped) / len(grouped) < 0.12
    assert 1 - sum(drawn) / len(drawn) > 0.25
    assert padding_waste(lengths, 4, group_size=4) < 0.15
