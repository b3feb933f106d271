"""The bare PyTorch loop and the TRL loop of ``train_speed.py``, each run in a process of its own.

``python benchmarks/train_speed_loops.py SPEC.json`` trains as the spec says and
writes the result JSON it names: the wall-clock time (``time.time()``) at the end
of every optimizer step, the real (non-padding) tokens of every step, the first
step's loss and, on CUDA, the peak allocated memory. Neither loop imports trainer.

Both draw rows in the order transformers' ``Trainer`` (so trainer and TRL) does
with its default seedable sampler: ``torch.randperm`` seeded with the seed (plus
the epoch), batch after batch; the same first batch gives the same first loss.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

IGNORE_INDEX = -100


def read_rows(path: str) -> list[dict[str, list[int]]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def batches(rows: list[Any], batch_size: int, steps: int, seed: int) -> list[list[Any]]:
    """The rows of each step: a fresh permutation every epoch, seeded ``seed + epoch``."""
    import torch

    order: list[int] = []
    epoch = 0
    while len(order) < steps * batch_size:
        generator = torch.Generator().manual_seed(seed + epoch)
        order += torch.randperm(len(rows), generator=generator).tolist()
        epoch += 1
    return [[rows[i] for i in order[s * batch_size : (s + 1) * batch_size]] for s in range(steps)]


def collate(rows: list[dict[str, list[int]]], pad: int) -> tuple[dict[str, Any], int]:
    """A batch padded on the right, and its real tokens.

    Plain rows get an ``attention_mask``; packed rows (with ``position_ids``) get none,
    so that transformers keeps attention inside each example (position ids restart),
    the padding is a sequence of its own, and every example's first label is ignored.
    """
    import torch

    width = max(len(row["input_ids"]) for row in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    packed = "position_ids" in rows[0]
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        length = len(row["input_ids"])
        ids[index, :length] = torch.tensor(row["input_ids"])
        labels[index, :length] = torch.tensor(row["labels"])
        mask[index, :length] = 1
        if packed:
            positions[index, :length] = torch.tensor(row["position_ids"])
            positions[index, length:] = torch.arange(width - length)
    real = int(mask.sum())
    if not packed:
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}, real
    labels[positions == 0] = IGNORE_INDEX
    return {"input_ids": ids, "position_ids": positions, "labels": labels, "use_cache": False}, real


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def load_model(spec: dict[str, Any]) -> Any:
    """The saved model in float32 (mixed precision computes in bf16), on the spec's device."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(spec["model_dir"], dtype=torch.float32)
    return model.to(spec["device"])


def bare(spec: dict[str, Any]) -> dict[str, Any]:
    """AdamW, the model's own loss on the whole logits, gradient clipping at 1.0 (as trainer and TRL)."""
    import torch

    device = spec["device"]
    model = load_model(spec)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec["learning_rate"], weight_decay=0.0)
    rows = read_rows(spec["tokens"])
    bf16 = spec["precision"] == "bfloat16"
    times, tokens, losses = [], [], []
    for step_rows in batches(rows, spec["batch_size"], spec["steps"], spec["seed"]):
        batch, real = collate(step_rows, spec["pad_token_id"])
        batch = {key: value.to(device) if hasattr(value, "to") else value for key, value in batch.items()}
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())  # waits for the step, as a loop printing its loss does
        synchronize(device)
        times.append(time.time())
        tokens.append(real)
    return {"times": times, "tokens": tokens, "first_loss": losses[0], "notes": ""}


def trl(spec: dict[str, Any]) -> dict[str, Any]:
    """TRL's ``SFTTrainer`` with its defaults, but the batch, steps, learning rate and precision.

    It gets the examples already tokenized (``input_ids`` and ``labels``, unpacked): TRL
    keeps a dataset's labels and only pads. Its own defaults stay, gradient
    checkpointing among them. A callback records the end of each step.
    """
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    device = spec["device"]
    times: list[float] = []
    seen: list[int] = []
    first: list[float] = []

    class Timed(SFTTrainer):  # the first step's loss, without turning on logging every step
        def training_step(self, *args: Any, **kwargs: Any) -> Any:
            loss = super().training_step(*args, **kwargs)
            if not first:
                first.append(float(loss.detach().float().item()))
            return loss

    class Clock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            synchronize(device)
            times.append(time.time())
            seen.append(int(getattr(trainer, "_total_train_tokens", 0)))

    rows = read_rows(spec["examples"])
    dataset = Dataset.from_dict(
        {"input_ids": [row["input_ids"] for row in rows], "labels": [row["labels"] for row in rows]}
    )
    config = SFTConfig(
        output_dir=str(Path(spec["work"]) / "trl-out"),
        per_device_train_batch_size=spec["batch_size"],
        max_steps=spec["steps"],
        learning_rate=spec["learning_rate"],
        bf16=spec["precision"] == "bfloat16",
        seed=spec["seed"],
        max_length=spec["max_length"],
        use_cpu=device == "cpu",
        report_to="none",
        disable_tqdm=True,
    )
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    trainer = Timed(
        model=load_model(spec),
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[Clock()],
    )
    trainer.train()
    tokens = [after - before for before, after in zip([0, *seen], seen, strict=False)]
    checkpointing = "on" if config.gradient_checkpointing else "off"
    notes = f"TRL defaults: gradient checkpointing {checkpointing}, unpacked rows"
    return {"times": times, "tokens": tokens, "first_loss": first[0] if first else None, "notes": notes}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    import torch

    result = {"bare": bare, "trl": trl}[spec["loop"]](spec)
    if spec["device"].startswith("cuda"):
        result["peak_bytes"] = torch.cuda.max_memory_allocated()
    Path(spec["result"]).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
