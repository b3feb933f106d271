"""How much faster `trainer eval` generates than one prompt at a time, with the same greedy outputs.

Three ways over the same GSM8K test rows, greedy, in one process:

- **one at a time**: transformers' ``model.generate`` on each prompt alone, what a
  script looping over ``trainer generate`` does (the bare loop);
- **trainer, batch 1**: trainer's decoding loop on each prompt alone;
- **trainer eval**: the evaluator at ``--batch-size`` (rows sorted by length within
  a window, a row leaving the batch the step it ends).

It prints generated tokens per second for each, the ratios, and whether every
output equals the one-at-a-time output. Run from the repository root::

    python benchmarks/eval_speed.py                      # the embedded demo model, 64 rows
    python benchmarks/eval_speed.py --model outputs/run --rows 64 --batch-size 16

Without ``--model`` it uses the embedded demo model (random init), which writes
until the token limit: every row costs ``--max-new-tokens`` tokens.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default=None,
        help="a run's output directory; default: the embedded demo",
    )
    parser.add_argument("--dataset", default=str(SHARED / "data" / "gsm8k" / "test.jsonl"))
    parser.add_argument(
        "--profile",
        default=None,
        help="default: the run's, or regime3 for the demo model",
    )
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    options = parser.parse_args()

    import torch
    from trainer.data.chat_template import render_prompt
    from trainer.data.sources import iter_rows
    from trainer.evaluation.decode import DecodeSettings, decode_batch
    from trainer.evaluation.evaluator import EvalSettings, Evaluator
    from trainer.evaluation.items import eval_items
    from trainer.generation import (
        SavedRun,
        generate_batch,
        generation_defaults,
        load_model_for_generation,
    )

    torch.manual_seed(0)
    if options.model is None:
        from trainer.models.demo import load_demo_tokenizer
        from trainer.models.demo_model import build_demo_model

        tokenizer = load_demo_tokenizer()
        model = build_demo_model(tokenizer).eval()
        saved = SavedRun(directory=Path("."))
        name = "embedded demo model (random init)"
    else:
        model, tokenizer = load_model_for_generation(options.model)
        saved = SavedRun.read(options.model)
        name = options.model
    run = generation_defaults(saved, options.profile or (None if options.model else "regime3"))
    items = [
        item
        for item in eval_items(
            iter_rows(options.dataset, limit=options.rows),
            run.profile,
            run.system_prompt,
            run.stop_sequences,
        )
        if item.error is None
    ]
    settings = DecodeSettings(
        stop_sequences=tuple(run.stop_sequences),
        penalized_strings=tuple(run.profile.penalized_strings),
        max_new_tokens=options.max_new_tokens,
    )
    prompts = [render_prompt(list(item.messages), tokenizer) for item in items]
    print(f"model: {name}; profile {run.profile.name}; {len(items)} rows of {options.dataset}")
    print(f"torch threads: {torch.get_num_threads()}; max_new_tokens {options.max_new_tokens}; greedy")

    started = time.perf_counter()
    alone = []
    for item in items:
        text = generate_batch(
            model,
            tokenizer,
            [list(item.messages)],
            stop_sequences=list(settings.stop_sequences),
            penalized_strings=settings.penalized_strings,
            max_new_tokens=options.max_new_tokens,
        )[0]
        alone.append(text)
    one_at_a_time = time.perf_counter() - started

    started = time.perf_counter()
    singles = [decode_batch(model, tokenizer, [prompt], settings)[0] for prompt in prompts]
    batch_one = time.perf_counter() - started
    alone_tokens = sum(result.tokens for result in singles)

    evaluator = Evaluator(
        model,
        tokenizer,
        run.profile,
        EvalSettings(batch_size=options.batch_size, decode=settings),
    )
    output = Path("eval-speed.jsonl")
    started = time.perf_counter()
    records, _ = evaluator.run(items, output)
    batched = time.perf_counter() - started
    output.unlink()
    batched_tokens = sum(record["tokens"] for record in records)

    same_alone = sum(a == b.text for a, b in zip(alone, singles, strict=True))
    same_batched = sum(a == record["generation"] for a, record in zip(alone, records, strict=True))
    rows = [
        ("one at a time (model.generate)", one_at_a_time, alone_tokens),
        ("trainer, batch 1", batch_one, alone_tokens),
        (f"trainer eval, batch {options.batch_size}", batched, batched_tokens),
    ]
    print(f"{'':34}{'seconds':>9}{'tokens':>9}{'tokens/s':>10}{'ratio':>8}")
    base = alone_tokens / one_at_a_time
    for label, seconds, tokens in rows:
        speed = tokens / seconds
        print(f"{label:34}{seconds:9.1f}{tokens:9,}{speed:10,.0f}{speed / base:7.2f}x")
    print(
        f"identical to one at a time: trainer batch 1 {same_alone}/{len(items)}, ",
        end="",
    )
    print(f"trainer eval {same_batched}/{len(items)}")
    print(
        json.dumps(
            {
                "speedup": round(batched_tokens / batched / base, 2),
                "identical": same_batched,
            }
        )
    )


if __name__ == "__main__":
    main()
