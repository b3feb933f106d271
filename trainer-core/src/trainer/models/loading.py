"""Loading models and tokenizers, and choosing precision and device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.errors import TrainerError


def resolve_precision(precision: str, device: str) -> str:
    """``auto`` becomes ``bfloat16`` on a GPU or CPU that computes it natively, else ``float32``.

    On a CPU, bf16 means autocast with float32 master weights; native means the CPU
    has bf16 instructions (x86 ``avx512_bf16`` or AMX, Arm ``bf16``): elsewhere
    emulated bf16 is slower than float32.

    :raises TrainerError: ``float16`` asked for without a CUDA GPU.
    """
    import torch

    on_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if precision == "auto":
        if on_cuda:
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
        on_cpu = device == "cpu" or not _other_accelerator()
        return "bfloat16" if on_cpu and cpu_native_bf16() is not None else "float32"
    if precision == "float16" and not on_cuda:
        raise TrainerError(
            "model.precision 'float16' needs a CUDA GPU and none is in use. "
            "Use bfloat16 or float32 instead (or precision: auto)"
        )
    return precision


CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
"""CPU feature flags (``/proc/cpuinfo``) that mean native bf16 arithmetic."""


def cpu_native_bf16(cpuinfo: str | None = None) -> str | None:
    """The first of :data:`CPU_BF16_FLAGS` this CPU has, or ``None`` (also where it cannot tell).

    :param cpuinfo: the text of ``/proc/cpuinfo``; read from the system when omitted.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags = set(value.split())
            return next((flag for flag in CPU_BF16_FLAGS if flag in flags), None)
    return None


def _other_accelerator() -> bool:
    """An MPS or other non-CUDA accelerator that ``device: auto`` picks instead of the CPU."""
    import torch

    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None:
        return bool(accelerator.is_available())
    return bool(torch.backends.mps.is_available())


def load_tokenizer(model_path: str, trust_remote_code: bool = False) -> Any:
    """The tokenizer of a local model directory or hub id.

    :raises TrainerError: there is no tokenizer to load there.
    """
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    except Exception as exc:  # transformers raises OSError, ValueError, HTTP errors...
        raise TrainerError(
            f"could not load a tokenizer from '{model_path}': {_first_line(exc)}. {_path_hint(model_path)}"
        ) from None
    if tokenizer.pad_token is None:
        # Padding is masked out of the loss, so any existing token will do.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    model_path: str, trust_remote_code: bool = False, attn_implementation: str | None = None
) -> Any:
    """A causal LM from a local directory or hub id, in float32 (mixed precision trains it).

    :raises TrainerError: nothing loadable there.
    """
    import torch
    from transformers import AutoModelForCausalLM

    # safetensors only: a pickled checkpoint (pytorch_model.bin) can run code when loaded.
    options: dict[str, Any] = {
        "trust_remote_code": trust_remote_code,
        "dtype": torch.float32,
        "use_safetensors": True,
    }
    if attn_implementation:
        options["attn_implementation"] = attn_implementation
    try:
        return AutoModelForCausalLM.from_pretrained(model_path, **options)
    except Exception as exc:
        raise TrainerError(
            f"could not load a causal LM from '{model_path}': {_first_line(exc)}. {_path_hint(model_path)}"
        ) from None


def require_peft() -> None:
    """:raises TrainerError: peft, which LoRA needs, is not installed."""
    from importlib.util import find_spec

    if find_spec("peft") is None:
        raise TrainerError(
            "model.lora.enabled needs peft, which is not installed. Install it with: "
            "pip install 'trainer-core[lora]'"
        )


def apply_lora(model: Any, r: int, alpha: int, dropout: float, target_modules: list[str]) -> Any:
    """Wrap ``model`` with LoRA adapters (peft); only the adapters train.

    :raises TrainerError: peft is not installed.
    """
    require_peft()
    from peft import LoraConfig, get_peft_model

    targets: str | list[str] = "all-linear" if target_modules == ["all-linear"] else list(target_modules)
    config = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, task_type="CAUSAL_LM"
    )
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise TrainerError(
            f"model.lora.target_modules {target_modules!r}: {_first_line(exc)}. "
            "Name modules the model has, or use ['all-linear']"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__


def _path_hint(model_path: str) -> str:
    path = Path(model_path)
    if (path / "status.json").is_file() and not (path / "config.json").is_file():
        return (
            f"'{model_path}' holds a run that saved no model (see trainer status {model_path}). "
            "Point --model at a completed run or a Hugging Face model directory"
        )
    if path.exists():
        return "Point --model at a Hugging Face model directory (config.json, weights, tokenizer files)"
    return (
        "No such local directory; as a hub id it needs the hub to be reachable. "
        "Pass a local model directory with --model"
    )
