"""The models and token rows that ``train_speed.py`` hands to every loop.

The rows come from trainer's own data pipeline, called the way ``trainer run``
calls it (``TrainerEngine._run``, step 2) with the config the run will have, so
the bare and TRL loops train on exactly the examples trainer trains on:

- ``tokens.jsonl``: what trainer batches (one line per example, or per packed row
  with ``position_ids``), in its dataset order;
- ``examples.jsonl``: the examples before packing (``input_ids``, ``labels``), which
  TRL gets (its default is no packing);
- ``rows.jsonl``: the raw GSM8K rows the trainer run reads (``--dataset``); the demo
  case has none, its run uses the built-in sample like ``trainer run`` without
  ``--dataset``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QWEN3_WIDE = {  # the embedded demo model's width with two layers, on the real Qwen3 vocabulary
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
}
QWEN3_06B = {  # Qwen3-0.6B's published shape
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
}


@dataclass
class Prepared:
    """One case's inputs, on disk, and what they hold."""

    model_dir: Path
    tokens: Path
    examples: Path
    dataset: Path | None
    """The rows file for ``trainer run --dataset``; None for the built-in sample."""
    rows: int
    """Training rows (packed rows with packing) in ``tokens``."""
    tokens_total: int
    mean_example_length: float
    pad_token_id: int
    flops_model: Any
    """The model on the meta device, for :func:`trainer.models.flops.training_flops_per_token`."""


def save_qwen3(directory: Path, tokenizer_dir: Path, shape: dict[str, int], dtype: str, seed: int) -> None:
    """A ``Qwen3ForCausalLM`` of ``shape`` with random weights (``seed``), saved with its tokenizer."""
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM
    from transformers.utils import logging

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        **shape,
    )
    logging.disable_progress_bar()
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))  # build in the saved dtype: half the memory in bf16
    try:
        model = Qwen3ForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    del model


def save_demo(directory: Path, seed: int) -> None:
    """The embedded demo model exactly as ``trainer run`` builds it (same seed), with its tokenizer."""
    from trainer.models.demo import load_demo_tokenizer
    from trainer.models.demo_model import build_demo_model
    from transformers.utils import logging

    logging.disable_progress_bar()
    tokenizer = load_demo_tokenizer()
    build_demo_model(tokenizer, seed=seed).save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def prepare(
    work: Path,
    *,
    model_dir: Path,
    demo: bool,
    profile: str,
    gsm8k: Path,
    max_length: int,
    packing: bool,
    rows_needed: int,
) -> Prepared:
    """Tokenize (and pack) the case's data with trainer's pipeline; write the three files.

    :param rows_needed: training rows (packed rows with ``packing``) the steps consume; for
        GSM8K, the fewest first rows that give at least that many are used.
    """
    from datasets import disable_progress_bars
    from trainer.config import create_default_config
    from trainer.data.conversation import effective_stop_sequences
    from trainer.data.packing import example_lengths, plan_packs
    from trainer.data.pipeline import load_raw_datasets, pack_dataset, prepare_dataset
    from trainer.models.demo import load_demo_tokenizer
    from trainer.models.loading import load_tokenizer
    from trainer.profiles import get_profile

    disable_progress_bars()
    config = create_default_config()
    config.profile.name = profile
    config.data.max_length = max_length
    tokenizer = load_demo_tokenizer() if demo else load_tokenizer(str(model_dir))
    prof = get_profile(config.profile.name, config.profile.options)
    options = dict(
        tokenizer=tokenizer,
        profile=prof,
        system_prompt=config.profile.system_prompt,
        stop_sequences=effective_stop_sequences(prof, config.profile.stop_sequences),
        max_length=min(config.data.max_length, config.model.max_context_length),
        overlength=config.data.overlength,
        skip_invalid=config.data.skip_invalid,
        num_proc=config.data.num_proc,
        trained_turns=config.data.trained_turns,
        allow_consecutive_assistant=config.data.allow_consecutive_assistant,
    )
    dataset = None
    if not demo:  # the first GSM8K rows that cover the steps
        every, _ = prepare_dataset(load_raw_datasets(str(gsm8k))[0], **options)
        lengths = example_lengths(every)
        count = _rows_covering(lengths, rows_needed, options["max_length"] if packing else None, plan_packs)
        dataset = work / "rows.jsonl"
        with open(gsm8k, encoding="utf-8") as source:
            dataset.write_text("".join(line for _, line in zip(range(count), source, strict=False)))
    source = str(dataset) if dataset is not None else prof.default_dataset()  # as the engine picks it
    train_rows, _ = load_raw_datasets(source, seed=config.hyperparams.seed)
    examples, report = prepare_dataset(train_rows, **options)
    rows = pack_dataset(examples, options["max_length"], report=report) if packing else examples
    files = {"tokens": work / "tokens.jsonl", "examples": work / "examples.jsonl"}
    _write_jsonl(files["tokens"], rows)
    _write_jsonl(files["examples"], examples)
    lengths = example_lengths(examples)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return Prepared(
        model_dir=model_dir,
        tokens=files["tokens"],
        examples=files["examples"],
        dataset=dataset,
        rows=len(rows),
        tokens_total=sum(lengths),
        mean_example_length=sum(lengths) / len(lengths),
        pad_token_id=int(pad if pad is not None else 0),
        flops_model=meta_model(model_dir),
    )


def _rows_covering(lengths: list[int], needed: int, pack_length: int | None, plan_packs: Any) -> int:
    """The fewest first rows giving ``needed`` training rows (packs of ``pack_length``), plus a few."""
    if pack_length is None:
        return min(len(lengths), needed + 8)
    tokens = sum(lengths) / len(lengths)
    count = min(len(lengths), int(needed * pack_length / tokens) + 8)
    while count < len(lengths) and len(plan_packs(lengths[:count], pack_length)) < needed + 1:
        count = min(len(lengths), int(count * 1.2) + 1)
    return count


def _write_jsonl(path: Path, dataset: Any) -> None:
    columns = [name for name in ("input_ids", "labels", "position_ids") if name in dataset.column_names]
    with path.open("w", encoding="utf-8") as handle:
        for row in dataset.select_columns(columns).iter(batch_size=256):
            for values in zip(*(row[name] for name in columns), strict=True):
                handle.write(json.dumps(dict(zip(columns, values, strict=True))) + "\n")


def meta_model(model_dir: Path) -> Any:
    """The saved model's architecture on the meta device: its shape, no memory."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
