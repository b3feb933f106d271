"""The embedded demo model: a tiny Qwen3 built from a fixed seed, no download."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer.config import HyperparamsConfig

DEMO_MODEL_NAME = "embedded demo (Qwen3ForCausalLM, 4 layers, hidden size 256, random init)"

DEMO_HYPERPARAMS: dict[str, Any] = {
    "learning_rate": 1e-3,
    "max_steps": 300,
    "batch_size": 16,
    "warmup_steps": 20,
}
"""What the demo trains with, for each of these fields left at its default.

A random-init model needs a larger learning rate than a pretrained one, and a
step cap keeps the demo within a few minutes on two CPU cores.
"""

DEMO_TOKEN_BUDGET = 700_000
"""The most tokens the demo trains on when its step count is left at the default.

About 300 steps of 16 rows of the built-in sample (143 tokens a row); a dataset
of longer rows trains fewer steps (tool_use's 260-token rows: 169), so every
profile's demo takes about the same few minutes.
"""


def demo_max_steps(max_steps: int, rows_per_step: int, tokens: int, examples: int) -> int:
    """The demo's step count: ``max_steps``, or fewer when :data:`DEMO_TOKEN_BUDGET` runs out first.

    :param rows_per_step: examples in one optimizer step (batch size times accumulation).
    :param tokens: the tokens of the ``examples`` training examples.
    """
    if examples <= 0 or tokens <= 0:
        return max_steps
    per_step = rows_per_step * tokens / examples
    return max(1, min(max_steps, math.ceil(DEMO_TOKEN_BUDGET / per_step)))


def demo_hyperparams(hyper: HyperparamsConfig) -> tuple[HyperparamsConfig, dict[str, Any]]:
    """``hyper`` with :data:`DEMO_HYPERPARAMS` in place of every field still at its default.

    :return: the settings the demo trains with, and the fields that changed.
    """
    from dataclasses import replace

    from trainer.config import HyperparamsConfig

    defaults = HyperparamsConfig()
    changes = {
        name: value
        for name, value in DEMO_HYPERPARAMS.items()
        if getattr(hyper, name) == getattr(defaults, name)
    }
    return (replace(hyper, **changes) if changes else hyper), changes


def apply_demo_budget(
    hyper: HyperparamsConfig, args: Any, tokens: int, examples: int
) -> tuple[HyperparamsConfig, str | None]:
    """``hyper`` and the training arguments ``args`` with the demo's step count for this data.

    :return: the settings, and a line for the user when the budget cut the steps (else ``None``).
    """
    from dataclasses import replace

    assert hyper.max_steps is not None
    rows_per_step = hyper.batch_size * hyper.gradient_accumulation_steps
    steps = demo_max_steps(hyper.max_steps, rows_per_step, tokens, examples)
    if steps == hyper.max_steps:
        return hyper, None
    args.max_steps = steps
    note = (
        f"Demo: {steps} steps, not {hyper.max_steps}: these rows average {tokens / examples:,.0f} "
        f"tokens and the demo trains on {DEMO_TOKEN_BUDGET:,} at most (set --max-steps to choose)"
    )
    return replace(hyper, max_steps=steps), note


def build_demo_model(tokenizer: Any, seed: int = 0, max_position_embeddings: int = 2048) -> Any:
    """A ``Qwen3ForCausalLM`` of about four million parameters for ``tokenizer``.

    The same seed always gives the same weights.
    """
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):  # the global random state is left as it was
        torch.manual_seed(seed)
        return Qwen3ForCausalLM(config)
