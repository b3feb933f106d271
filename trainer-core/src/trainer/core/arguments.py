"""transformers' training arguments from a run's config: batch, schedule, optimizer, precision, processes.

Also the run's loss (:func:`choose_loss`): the chunked loss where the model allows it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trainer.data.batching import sampling_arguments
from trainer.errors import TrainerError


def training_arguments(
    *,
    checkpoints_dir: Path,
    hyper: Any,
    precision: str,
    device: str,
    evaluate: bool,
    save_steps: int,
    save_total_limit: int | None,
    report_to: list[str],
    group_by_length: bool = False,
    **distributed: Any,
) -> Any:
    """transformers' ``TrainingArguments`` for a run; building them starts the process group.

    :param evaluate: there is a validation set, evaluated every ``save_steps``.
    :param group_by_length: batches hold examples of similar length (the dataset has their lengths).
    :param distributed: ``fsdp``, ``fsdp_config``, ``deepspeed``, ``ddp_backend``, as
        :func:`distributed_arguments` gives them.
    """
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(checkpoints_dir),
        per_device_train_batch_size=hyper.batch_size,
        per_device_eval_batch_size=hyper.batch_size,
        learning_rate=hyper.learning_rate,
        num_train_epochs=hyper.num_epochs,
        max_steps=hyper.max_steps if hyper.max_steps is not None else -1,
        gradient_accumulation_steps=hyper.gradient_accumulation_steps,
        warmup_steps=hyper.warmup_ratio if hyper.warmup_ratio > 0 else hyper.warmup_steps,
        weight_decay=hyper.weight_decay,
        lr_scheduler_type=hyper.lr_scheduler_type,
        seed=hyper.seed,
        data_seed=hyper.seed,
        max_grad_norm=hyper.max_grad_norm,
        optim=optimizer(hyper.optim),
        **_checkpointing(hyper.gradient_checkpointing),
        **sampling_arguments(group_by_length),
        bf16=precision == "bfloat16",
        fp16=precision == "float16",
        # accelerate runs several processes on CPU only when told so (else each trains alone).
        use_cpu=device == "cpu" or (device == "auto" and not accelerator_available()),
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=save_total_limit,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=save_steps if evaluate else None,
        logging_steps=logging_steps(hyper.max_steps),
        logging_first_step=True,
        include_num_input_tokens_seen="non_padding",
        # Every token of a global batch weighs the same, however its rows fall on the processes.
        average_tokens_across_devices=True,
        report_to=list(report_to) or "none",
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=device != "cpu" and cuda_available(),
        **distributed,
    )


def _checkpointing(enabled: bool) -> dict[str, Any]:
    """Activation checkpointing arguments, under the name this transformers uses, when enabled."""
    if not enabled:
        return {}
    from dataclasses import fields

    from transformers import TrainingArguments

    names = {field.name for field in fields(TrainingArguments)}
    prefix = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return {prefix: True, f"{prefix}_kwargs": {"use_reentrant": False}}


def distributed_arguments(system: Any, base_dir: Path) -> dict[str, Any]:
    """The ``TrainingArguments`` keywords for FSDP, DeepSpeed and the DDP backend that are set.

    Unset ones are left out, so transformers keeps its own defaults; the backend is
    passed only to a run launched on several processes (``WORLD_SIZE`` above 1).

    :raises TrainerError: ``system.deepspeed`` is set and DeepSpeed is not installed.
    """
    arguments: dict[str, Any] = {}
    fsdp = system.fsdp.strip()
    if fsdp:
        arguments["fsdp"] = True if fsdp.lower() == "true" else fsdp
        arguments["fsdp_config"] = dict(system.fsdp_config)
    if system.deepspeed:
        from importlib.util import find_spec

        if find_spec("deepspeed") is None:
            raise TrainerError(
                f"system.deepspeed '{system.deepspeed}' needs DeepSpeed, which is not installed. "
                "Install it with: pip install deepspeed"
            )
        arguments["deepspeed"] = str(_resolve(base_dir, system.deepspeed))
    # A single process has no process group; given a backend, accelerate would look for one.
    if system.ddp_backend and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        arguments["ddp_backend"] = system.ddp_backend
    return arguments


def optimizer(name: str) -> str:
    """``hyperparams.optim`` checked against transformers' optimizers and what is installed.

    :raises TrainerError: an unknown name, or one whose library is missing.
    """
    from transformers.training_args import OptimizerNames

    known = [option.value for option in OptimizerNames]
    if name not in known:
        common = "adamw_torch, adamw_torch_fused, adafactor, adamw_8bit, paged_adamw_8bit, sgd"
        raise TrainerError(
            f"hyperparams.optim {name!r} is not an optimizer transformers knows; use one of {common} "
            f"(all: {', '.join(known)})"
        )
    if ("8bit" in name or "bnb" in name or name.startswith("paged_")) and not installed("bitsandbytes"):
        raise TrainerError(
            f"hyperparams.optim {name!r} needs bitsandbytes, which is not installed: "
            "pip install bitsandbytes (CUDA GPUs), or use adamw_torch or adafactor"
        )
    return name


def installed(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is not None


def choose_loss(model: Any, wanted: str, device: str = "auto") -> str:
    """Switch ``model`` to the loss ``wanted`` (``model.loss_impl``) asks for, where it can.

    ``auto`` picks Liger-Kernel's fused kernel on a CUDA GPU where ``liger-kernel`` is
    installed, else the chunked loss, else (a model that cannot) the standard one.

    :return: the loss the run trains with: ``liger``, ``chunked`` or ``standard``.
    :raises TrainerError: ``chunked`` or ``liger`` was asked for and cannot be used.
    """
    if wanted == "standard":
        return "standard"
    from trainer.models.chunked_loss import chunked_loss_problem, use_chunked_loss

    problem = chunked_loss_problem(model)
    if problem is not None:
        if wanted != "auto":
            raise TrainerError(
                f"model.loss_impl is {wanted}, but {problem}; set model.loss_impl to auto or standard"
            )
        return "standard"
    on_cuda = device != "cpu" and cuda_available()
    if wanted == "liger":
        if not on_cuda:
            raise TrainerError(
                "model.loss_impl is liger, which needs a CUDA GPU and none is in use; "
                "set model.loss_impl to auto or chunked"
            )
        if not installed("liger_kernel"):
            raise TrainerError(
                "model.loss_impl is liger, but liger-kernel is not installed: "
                "pip install 'trainer-core[liger]', or set model.loss_impl to auto or chunked"
            )
    kernel = "liger" if wanted == "liger" or (on_cuda and installed("liger_kernel")) else "chunked"
    use_chunked_loss(model, kernel=kernel)
    return kernel


def logging_steps(max_steps: int | None) -> int:
    if max_steps is not None and max_steps > 0:
        return max(1, min(10, max_steps // 20))
    return 10


def accelerator_available() -> bool:
    """A CUDA, MPS or other torch accelerator is there for ``device: auto`` to pick."""
    import torch

    accelerator = getattr(torch, "accelerator", None)  # torch 2.6 and later
    if accelerator is not None:
        return bool(accelerator.is_available())
    return bool(torch.cuda.is_available() or torch.backends.mps.is_available())


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _resolve(base: Path, path: str | os.PathLike[str]) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base / candidate
