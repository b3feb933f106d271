"""Cross-entropy from the final hidden states, a chunk of positions at a time: no whole logits tensor.

A causal LM's standard loss builds logits for every position (tokens x vocabulary:
151,936 floats a token for Qwen3), then their softmax and its gradient. Here only
the positions that have a label are projected, ``CHUNK_ROWS`` at a time, and the
gradients of each chunk are computed in the same pass (the loss is a sum, so they
do not depend on other chunks), so peak memory holds one chunk's logits instead
of the whole batch's. The loss and the gradients equal the standard path's within
float tolerance.

:func:`use_chunked_loss` switches a loaded model to it: the model's ``forward``
computes the chunked loss when it is training and gets ``labels``, and is
unchanged otherwise (evaluation, generation). Patching ``forward`` rather than
the trainer keeps DDP's gradient hooks and PEFT's wrappers in the call path.
"""

from __future__ import annotations

import functools
import types
from typing import Any

IGNORE_INDEX = -100
CHUNK_ROWS = 1024
"""Positions projected to the vocabulary at a time."""

UNSUPPORTED_CONFIG = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")
"""Config attributes that change logits after the output projection: such a model keeps the standard loss."""


def chunked_loss_problem(model: Any) -> str | None:
    """Why ``model`` cannot use the chunked loss, or ``None`` when it can.

    It needs a decoder (``get_decoder()``) returning the final hidden states and a
    linear output projection (``get_output_embeddings()``), and nothing that
    changes the logits after the projection.
    """
    import torch

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(head, torch.nn.Linear):
        return f"{type(model).__name__} has no linear output projection"
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    if decoder is None or decoder is model:
        return f"{type(model).__name__} does not expose its decoder (get_decoder)"
    config = getattr(model, "config", None)
    for name in UNSUPPORTED_CONFIG:
        value = getattr(config, name, None)
        if value not in (None, 0, 1, 1.0):
            return f"{type(model).__name__} changes its logits after the projection ({name}={value})"
    return None


def use_chunked_loss(model: Any, chunk_rows: int = CHUNK_ROWS, kernel: str = "chunked") -> None:
    """Make ``model`` compute its training loss chunk by chunk (see the module documentation).

    :param kernel: ``chunked`` (this module's, any device) or ``liger`` (Liger-Kernel's fused
        linear cross-entropy, a Triton kernel for CUDA GPUs).
    :raises ValueError: the model cannot (:func:`chunked_loss_problem`).
    """
    problem = chunked_loss_problem(model)
    if problem:
        raise ValueError(problem)
    standard = model.forward

    def forward(self: Any, *args: Any, labels: Any = None, **kwargs: Any) -> Any:
        if labels is None or not self.training or args:
            return standard(*args, labels=labels, **kwargs)
        return _chunked_forward(self, labels, kwargs, chunk_rows, kernel)

    model.forward = types.MethodType(forward, model)


def _chunked_forward(model: Any, labels: Any, kwargs: dict[str, Any], chunk_rows: int, kernel: str) -> Any:
    import torch
    from transformers.modeling_outputs import CausalLMOutputWithPast

    num_items_in_batch = kwargs.pop("num_items_in_batch", None)
    kwargs.pop("logits_to_keep", None)
    kwargs.pop("return_dict", None)
    kwargs["use_cache"] = False
    hidden = model.get_decoder()(**kwargs)[0]
    head = model.get_output_embeddings()
    shifted = torch.nn.functional.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:].to(hidden.device)
    flat_hidden = hidden.reshape(-1, hidden.shape[-1])
    flat_labels = shifted.reshape(-1)
    if kernel == "liger":
        total = _liger_sum(flat_hidden, head.weight, head.bias, flat_labels)
    else:
        total = _linear_cross_entropy().apply(flat_hidden, head.weight, head.bias, flat_labels, chunk_rows)
    if num_items_in_batch is None:
        count = (flat_labels != IGNORE_INDEX).sum()
    else:
        count = num_items_in_batch
    if torch.is_tensor(count):
        count = count.to(total.device)
    return CausalLMOutputWithPast(loss=total / count)


def _liger_sum(hidden: Any, weight: Any, bias: Any, labels: Any) -> Any:
    """The summed token cross-entropies by Liger-Kernel's fused linear cross-entropy."""
    from importlib import import_module

    liger = import_module("liger_kernel.transformers")  # an optional extra: trainer-core[liger]
    loss = liger.LigerFusedLinearCrossEntropyLoss(ignore_index=IGNORE_INDEX, reduction="sum")
    total = loss(weight, hidden, labels, bias)
    return total[0] if isinstance(total, tuple) else total


@functools.cache
def _linear_cross_entropy() -> Any:
    import torch

    class LinearCrossEntropyFunction(torch.autograd.Function):
        """Summed token cross-entropies of ``hidden @ weight.T (+ bias)``; gradients computed in forward."""

        @staticmethod
        def forward(ctx: Any, hidden: Any, weight: Any, bias: Any, labels: Any, chunk_rows: int) -> Any:
            positions = (labels != IGNORE_INDEX).nonzero().squeeze(1)
            total = torch.zeros((), dtype=torch.float32, device=hidden.device)
            grad_hidden = torch.zeros_like(hidden) if hidden.requires_grad else None
            grad_weight = torch.zeros_like(weight, dtype=torch.float32) if weight.requires_grad else None
            grad_bias = (
                torch.zeros_like(bias, dtype=torch.float32)
                if bias is not None and bias.requires_grad
                else None
            )
            for start in range(0, positions.numel(), chunk_rows):
                rows = positions[start : start + chunk_rows]
                states = hidden.index_select(0, rows)
                targets = labels.index_select(0, rows)
                logits = states @ weight.t()
                if bias is not None:
                    logits = logits + bias
                logits = logits.float()
                normalizer = torch.logsumexp(logits, dim=-1)
                total += (normalizer - logits.gather(1, targets[:, None]).squeeze(1)).sum()
                # d(sum of losses)/d(logits) = softmax - one-hot, computed in place over the logits.
                gradient = logits.sub_(normalizer[:, None]).exp_()
                gradient[torch.arange(rows.numel(), device=rows.device), targets] -= 1
                if grad_hidden is not None:
                    grad_hidden.index_copy_(0, rows, (gradient.to(weight.dtype) @ weight).to(hidden.dtype))
                if grad_weight is not None:
                    grad_weight += gradient.t() @ states.float()
                if grad_bias is not None:
                    grad_bias += gradient.sum(0)
            ctx.save_for_backward(
                *(value for value in (grad_hidden, grad_weight, grad_bias) if value is not None)
            )
            ctx.present = (grad_hidden is not None, grad_weight is not None, grad_bias is not None)
            ctx.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
            return total

        @staticmethod
        def backward(ctx: Any, grad_output: Any) -> Any:
            saved = iter(ctx.saved_tensors)
            grad_hidden, grad_weight, grad_bias = (
                (next(saved) * grad_output).to(dtype) if present else None
                for present, dtype in zip(ctx.present, ctx.dtypes, strict=True)
            )
            return grad_hidden, grad_weight, grad_bias, None, None

    return LinearCrossEntropyFunction


def __getattr__(name: str) -> Any:
    """``LinearCrossEntropy``: the autograd function, built (importing torch) on first use.

    ``LinearCrossEntropy.apply(hidden, weight, bias, labels, chunk_rows)`` is the summed loss.
    """
    if name == "LinearCrossEntropy":
        return _linear_cross_entropy()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
