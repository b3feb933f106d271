"""Attention under bf16 on a CPU: PyTorch's bf16 kernel against float32, by sequence length.

Two measurements, both on the CPU, 2 warm-up rounds left out:

1. **the kernel**: ``scaled_dot_product_attention`` forward and backward over about 2,400
   tokens (batch = 2,400 / length), 4 heads of 64, causal: in float32, in bf16, and in bf16
   with the inputs upcast to float32 (what trainer does below
   ``trainer.models.cpu_attention.FLOAT32_BELOW`` tokens), the three taking turns, the
   median call of each;
2. **a training step** of the embedded demo model (batch 16 of 143 tokens, the chunked loss,
   AdamW) in float32, in bf16 autocast with transformers' ``sdpa``, and in bf16 autocast with
   trainer's attention. The three models take their steps in turn, one each round, so a machine
   that speeds up or slows down moves all three alike.

Run from the repository root: ``python benchmarks/cpu_attention.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import time

LENGTHS = (64, 143, 256, 512, 1024, 2048)


def kernel_ms(length: int, repeats: int) -> tuple[float, float, float]:
    """Milliseconds for float32, bf16 and bf16 upcast, the three taking turns ``repeats`` times."""
    import torch
    import torch.nn.functional as F

    batch = max(1, 2400 // length)
    inputs = {
        dtype: [torch.randn(batch, 4, length, 64, dtype=dtype, requires_grad=True) for _ in range(3)]
        for dtype in (torch.float32, torch.bfloat16)
    }
    variants = [(torch.float32, False), (torch.bfloat16, False), (torch.bfloat16, True)]
    times: list[list[float]] = [[], [], []]
    for repeat in range(repeats + 2):
        for index, (dtype, upcast) in enumerate(variants):
            q, k, v = inputs[dtype]
            start = time.perf_counter()
            if upcast:
                q, k, v = q.float(), k.float(), v.float()
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True).to(dtype)
            out.sum().backward()
            if repeat >= 2:
                times[index].append(time.perf_counter() - start)
    fp32, bf16, upcast = (1000 * sorted(t)[len(t) // 2] for t in times)
    return fp32, bf16, upcast


def model_steps(rounds: int) -> dict[str, float]:
    """tokens/s of one demo-model training step per setting, the settings taking turns."""
    import torch
    from trainer.models.chunked_loss import use_chunked_loss
    from trainer.models.cpu_attention import use_cpu_attention
    from trainer.models.demo import load_demo_tokenizer
    from trainer.models.demo_model import build_demo_model

    tokenizer = load_demo_tokenizer()
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 2000, (16, 143), generator=generator)
    labels = ids.clone()
    labels[:, :100] = -100  # the prompt: about the built-in sample's share of labelled tokens
    settings = {}
    for name in ("float32", "bf16, sdpa", "bf16, trainer's attention"):
        model = build_demo_model(tokenizer)
        model.train()
        use_chunked_loss(model)
        if name.endswith("trainer's attention"):
            use_cpu_attention(model, None, "bfloat16")
        settings[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-3), [])
    for round_number in range(rounds + 2):
        for name, (model, optimizer, times) in settings.items():
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name != "float32"):
                loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if round_number >= 2:
                times.append(time.perf_counter() - start)
    return {name: ids.numel() * len(times) / sum(times) for name, (_, _, times) in settings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="timed training steps per setting")
    parser.add_argument("--repeats", type=int, default=8, help="timed kernel calls per variant")
    options = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| tokens a sequence | float32 (ms) | bf16 (ms) | bf16 upcast to float32 (ms) |")
    print("| ---: | ---: | ---: | ---: |")
    for length in LENGTHS:
        fp32, bf16, upcast = kernel_ms(length, options.repeats)
        print(f"| {length:,} | {fp32:.1f} | {bf16:.1f} | {upcast:.1f} |", flush=True)
    speeds = model_steps(options.rounds)
    print("\n| demo model, batch 16 x 143 | tokens/s | vs float32 |")
    print("| --- | ---: | ---: |")
    for name, speed in speeds.items():
        print(f"| {name} | {speed:,.0f} | {speed / speeds['float32']:.2f}x |")


if __name__ == "__main__":
    main()
