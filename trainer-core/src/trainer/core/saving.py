"""Saving a run's final model: gathered from every process, in the dtype asked, moved into place whole."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from trainer.config import TrainerConfig
from trainer.errors import TrainerError

FINAL_STAGING_PREFIX = ".final-"
"""Prefix of the temporary folder in the output directory the final model is written into.

Removed once the model is in place, and when the save fails (a run that fails for a full disk
also sweeps up any left over: :func:`trainer.core.disk.remove_partial_files`)."""


def weights_spread(trainer: Any) -> bool:
    """FSDP or DeepSpeed ZeRO-3 holds each weight in parts, one on every process."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    return bool(getattr(trainer, "is_fsdp_enabled", False) or is_deepspeed_zero3_enabled())


def gathered_state_dict(trainer: Any) -> dict[str, Any] | None:
    """The whole model's weights where FSDP or DeepSpeed spread them over the processes; else None.

    Every process must call it: gathering is a collective step.

    :raises TrainerError: DeepSpeed ZeRO-3 is not set to gather the weights for saving.
    """
    if getattr(trainer, "is_fsdp_enabled", False):
        return dict(trainer.accelerator.get_state_dict(trainer.model))
    if getattr(trainer, "is_deepspeed_enabled", False):
        try:
            return dict(trainer.accelerator.get_state_dict(trainer.deepspeed))
        except ValueError as exc:  # ZeRO-3 without stage3_gather_16bit_weights_on_model_save
            raise TrainerError(
                f"the final model cannot be gathered from the DeepSpeed processes: {exc}. Set "
                '"stage3_gather_16bit_weights_on_model_save": true under "zero_optimization" in the '
                f"system.deepspeed file; the checkpoints in {trainer.args.output_dir} are complete"
            ) from None
    return None


def save_final_model(
    model: Any,
    tokenizer: Any,
    output_dir: Path,
    *,
    state_dict: dict[str, Any] | None = None,
    stop_sequences: list[str],
    max_new_tokens: int,
    temperature: float,
    merge_lora: bool,
    run_info: dict[str, Any],
    dtype: str = "float32",
) -> None:
    """Write everything to a temporary directory, then move it into place.

    ``config.json`` (or ``adapter_config.json``) moves last, so a directory
    that loads is a directory that is complete.

    :param state_dict: the weights gathered from every process (FSDP, DeepSpeed);
        None saves ``model``'s own.
    """
    import torch
    from transformers import GenerationConfig

    if merge_lora:
        model = model.merge_and_unload()
    wanted = getattr(torch, dtype)
    if state_dict is not None:
        state_dict = {
            name: value.to(wanted) if value.is_floating_point() else value
            for name, value in state_dict.items()
        }
    elif not hasattr(model, "peft_config"):  # an unmerged adapter is saved as trained
        model = model.to(wanted)
    end_of_turn = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>",) if t in tokenizer.get_vocab()]
    eos_ids = sorted(
        {*end_of_turn, *([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])}
    )
    # transformers' own stop_strings field would make every plain model.generate() call demand a
    # tokenizer argument, so the profile's stop strings go under a key of ours.
    generation = GenerationConfig(
        eos_token_id=eos_ids or None,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=max_new_tokens,
        do_sample=temperature > 0,
        temperature=temperature if temperature > 0 else None,
        trainer_stop_strings=list(stop_sequences),
    )
    staging = Path(tempfile.mkdtemp(prefix=FINAL_STAGING_PREFIX, dir=output_dir))
    try:
        model.generation_config = generation
        model.save_pretrained(str(staging), state_dict=state_dict)
        if not (staging / "generation_config.json").exists():  # adapters do not write one
            generation.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        (staging / "trainer_run.json").write_text(json.dumps(run_info, indent=2, default=str) + "\n")
        last = [name for name in ("config.json", "adapter_config.json") if (staging / name).exists()]
        mode = 0o666 & ~_umask()  # the staging directory is private; its files should not be
        for path in sorted(staging.iterdir(), key=lambda p: p.name in last):
            path.chmod(mode)
            os.replace(path, output_dir / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def save_dtype(config: TrainerConfig, model_path: str | None) -> str:
    """The dtype the final model is saved in: ``output.save_dtype``, or the base model's own."""
    if config.output.save_dtype != "auto":
        return config.output.save_dtype
    if model_path is None:
        return "float32"
    try:
        from transformers import AutoConfig

        stored = AutoConfig.from_pretrained(model_path, trust_remote_code=config.model.trust_remote_code)
    except Exception:  # the model loaded, so this is unexpected: keep the weights as they are
        return "float32"
    dtype = getattr(stored, "dtype", None) or getattr(stored, "torch_dtype", None)
    name = str(dtype).removeprefix("torch.") if dtype is not None else "float32"
    return name if name in ("float32", "bfloat16", "float16") else "float32"


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
