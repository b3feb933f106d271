"""Model FLOPs utilisation: a model's training FLOPs per token, and the device's peak.

MFU is the FLOPs a step needs by the model's shape (not what the kernels happen to
do) per second, over what the device can do at most. Per token, training costs
``6 N`` for the ``N`` weights that multiply it (forward 2, backward 4: the output
projection counts, the embedding lookup does not) plus ``12 L d T`` for attention
over a sequence of ``T`` tokens (``L`` layers, ``d`` query heads times head size),
as in the PaLM paper's appendix B; the output projection only for the tokens whose
loss is computed, since the chunked loss projects no others. A CUDA GPU's peak comes from
:data:`GPU_PEAK_TFLOPS`, a table of dense bf16/fp16 figures from the vendors' data
sheets; any other device's is measured once per process with a large matrix
multiplication in the run's compute dtype.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

GPU_PEAK_TFLOPS = {
    "H200": 989.4,
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H100": 989.4,
    "GH200": 989.4,
    "B200": 2250.0,
    "A100": 312.0,
    "A800": 312.0,
    "L40S": 362.1,
    "L40": 181.0,
    "L4": 121.0,
    "A10G": 70.0,
    "A10": 125.0,
    "RTX 4090": 165.2,
    "RTX 3090": 71.0,
    "V100": 125.0,
    "T4": 65.0,
}
"""Dense bf16 (fp16 before Ampere) tensor-core peaks in TFLOP/s, looked up by the first name
contained in ``torch.cuda.get_device_name()``; more specific names come first."""

MATMUL_SIZE = 2048


def training_flops_per_token(model: Any, sequence_length: float, head_share: float = 1.0) -> float:
    """Training FLOPs per token of ``model`` on sequences of ``sequence_length`` tokens.

    Counts every weight but the input embedding (for tied embeddings: every weight;
    the projection uses it), LoRA's frozen and trained weights alike.

    :param head_share: the share of tokens the output projection is needed for: the
        labelled ones (the chunked loss projects no others), 1 for the standard loss.
    """
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    embedding_weight = getattr(embedding, "weight", None)
    head_weight = getattr(head, "weight", None)
    weights = sum(parameter.numel() for parameter in model.parameters())
    if embedding_weight is not None and embedding_weight is not head_weight:
        weights -= embedding_weight.numel()
    if head_weight is not None:
        weights -= head_weight.numel() * (1.0 - head_share)
    config: Any = getattr(model, "config", None)
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    layers = getattr(config, "num_hidden_layers", 0) or 0
    heads = getattr(config, "num_attention_heads", 0) or 0
    hidden = getattr(config, "hidden_size", 0) or 0
    head_dim = getattr(config, "head_dim", None) or (hidden // heads if heads else 0)
    return 6.0 * weights + 12.0 * layers * heads * head_dim * sequence_length


def peak_flops(device: Any, dtype: Any) -> float | None:
    """The most FLOP/s ``device`` does in ``dtype``: the CUDA table, else measured (cached).

    :return: ``None`` when it cannot be known (an unknown GPU that fails to measure).
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, tflops in GPU_PEAK_TFLOPS.items():
            if key in name:
                return tflops * 1e12 * (0.5 if dtype == torch.float32 else 1.0)
    return measured_peak_flops(str(device), str(dtype).removeprefix("torch."))


@cache
def measured_peak_flops(device: str, dtype: str, budget_seconds: float = 0.25) -> float | None:
    """The best FLOP/s of ``MATMUL_SIZE``-square matrix products in ``dtype`` on ``device``,
    timed for about ``budget_seconds`` after one warm-up."""
    import torch

    try:
        kind = getattr(torch, dtype)
        left = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device).to(kind)
        right = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device).to(kind)
        _synchronize(device)
        torch.matmul(left, right)
        best = float("inf")
        deadline = time.perf_counter() + budget_seconds
        while time.perf_counter() < deadline:
            _synchronize(device)
            started = time.perf_counter()
            torch.matmul(left, right)
            _synchronize(device)
            best = min(best, time.perf_counter() - started)
    except (RuntimeError, AttributeError, TypeError):
        return None
    return 2.0 * MATMUL_SIZE**3 / best if best != float("inf") and best > 0 else None


def _synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def mfu(tokens_per_second: float, flops_per_token: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation as a fraction of ``peak``; ``None`` when the peak is unknown."""
    if not peak or tokens_per_second <= 0:
        return None
    return tokens_per_second * flops_per_token / peak
