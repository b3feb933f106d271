"""Attention for bf16 training on a CPU: float32 where PyTorch's bf16 kernel is the slower one.

PyTorch's CPU flash-attention kernel (what ``sdpa`` runs on a CPU) computes its backward pass
more slowly in bf16 than in float32 for short sequences: on the project's 2-core Xeon
(``avx512_bf16``, AMX), forward and backward over 2,400 tokens took 43 ms in bf16 against 18 ms
in float32 at 143 tokens a sequence and 28 against 21 ms at 256; from 512 tokens on bf16 was
the faster (33 against 34 ms at 512, 38 against 46 at 1,024). ``benchmarks/cpu_attention.py``
measures it. The matrix products around it gain from bf16 (2.7x on that machine), so
bf16 training loses most of its gain to attention on short rows.

:data:`ATTENTION` is ``sdpa`` with one change: on a CPU under bf16 (or fp16) autocast, a query
shorter than :data:`FLOAT32_BELOW` tokens attends in float32 (its inputs upcast, the output cast
back). Everywhere else, a GPU included, it is ``sdpa`` unchanged.
"""

from __future__ import annotations

from typing import Any

ATTENTION = "sdpa_cpu_float32_short"
"""The name the function is registered under with transformers' ``AttentionInterface``."""

FLOAT32_BELOW = 512
"""Query length (tokens) below which CPU attention under mixed precision runs in float32."""


def attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> Any:
    """transformers' sdpa attention, in float32 for short queries on a CPU under mixed precision."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    # Under autocast sdpa runs in bf16 whatever its inputs' dtypes (Qwen3's query and key come
    # out of their norms in float32, the value in bf16); the output is the value's dtype.
    mixed = query.device.type == "cpu" and torch.is_autocast_enabled("cpu")
    if not mixed or query.shape[-2] >= FLOAT32_BELOW:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    dtype = torch.get_autocast_dtype("cpu")
    if attention_mask is not None and attention_mask.is_floating_point():
        attention_mask = attention_mask.float()
    with torch.autocast("cpu", enabled=False):
        output, weights = sdpa_attention_forward(
            module, query.float(), key.float(), value.float(), attention_mask, **kwargs
        )
    return output.to(dtype), weights


def use_cpu_attention(model: Any, chosen: str | None, precision: str) -> str:
    """Switch ``model`` to :data:`ATTENTION` where it helps: mixed precision on the default ``sdpa``.

    :param chosen: ``model.attn_implementation`` as configured; a kernel the user chose is kept.
    :param precision: the run's resolved precision (``bfloat16``, ``float16`` or ``float32``).
    :return: the attention the model trains with (the name recorded in ``trainer_run.json``).
    """
    config = getattr(model, "config", None)
    current = getattr(config, "_attn_implementation", None)
    if chosen is not None or precision == "float32" or current != "sdpa":
        return str(current or chosen or "default")
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, attention)
    model.set_attn_implementation(ATTENTION)
    return ATTENTION
