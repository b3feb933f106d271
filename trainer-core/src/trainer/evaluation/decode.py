"""Batched decoding for evaluation: left padding, a KV cache, and rows that leave the batch when done.

``model.generate`` keeps a finished row in the batch until every row is done,
padding it step after step. Here a row leaves the batch (and the cache) the step
it ends, on an end-of-turn token, a stop sequence in its answer, or the token
limit, so a batch costs what its rows still need. Greedy decoding gives the
same tokens as ``model.generate``; sampling draws each row from its own seeded
generator, so a row's sample does not depend on the rows batched with it.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainer.generation import answer_start, cut_at_stop, penalized_token_sequences

STOP_EOS = "eos"
STOP_SEQUENCE = "stop_sequence"
STOP_LENGTH = "max_new_tokens"


@dataclass(frozen=True)
class Decoded:
    """One generation: its text (cut before any stop sequence), its tokens, and why it ended.

    :ivar stop: ``"eos"`` (an end-of-turn or end-of-text token), ``"stop_sequence"``
        or ``"max_new_tokens"``.
    """

    text: str
    tokens: int
    stop: str


@dataclass(frozen=True)
class DecodeSettings:
    """How to decode: the profile's stops and penalties, the token limit, the temperature."""

    stop_sequences: tuple[str, ...] = ()
    penalized_strings: tuple[str, ...] = ()
    max_new_tokens: int = 128
    temperature: float = 0.0
    seed: int = 0


def end_token_ids(model: Any, tokenizer: Any) -> set[int]:
    """Tokens that end a reply: the generation config's ``eos_token_id`` (one or more) and the tokenizer's."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in configured if isinstance(configured, (list, tuple)) else [configured]:
        if isinstance(value, int):
            ids.add(value)
    if isinstance(tokenizer.eos_token_id, int):
        ids.add(tokenizer.eos_token_id)
    return ids


def decode_batch(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    settings: DecodeSettings,
    seeds: Sequence[int] | None = None,
) -> list[Decoded]:
    """Generate a reply to each rendered prompt, all in one batch.

    :param prompts: prompts rendered with the chat template, ending where the reply starts.
    :param seeds: one seed per prompt for sampling (default: ``settings.seed`` plus the index).
    """
    import torch
    from transformers import DynamicCache

    if not prompts:
        return []
    device = model.device
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        batch = tokenizer(list(prompts), return_tensors="pt", add_special_tokens=False, padding=True)
    finally:
        tokenizer.padding_side = padding_side
    ids = batch["input_ids"].to(device)
    mask = batch["attention_mask"].to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    count = ids.shape[0]
    ends = end_token_ids(model, tokenizer)
    stops = [stop for stop in settings.stop_sequences if stop]
    processors = _processors(tokenizer, settings, ends)
    generators = _generators(settings, count, seeds, device)
    accepted = inspect.signature(model.forward).parameters
    keep_last = "logits_to_keep" in accepted
    cache_argument = "cache" if "cache" in accepted else "past_key_values"  # renamed in transformers 5

    active = list(range(count))  # the original index of each row still in the batch
    generated: list[list[int]] = [[] for _ in range(count)]
    results: list[Decoded | None] = [None] * count
    cache = DynamicCache()
    step_input, step_positions = ids, positions
    with torch.no_grad():
        while active:
            extra: dict[str, Any] = {cache_argument: cache}
            if keep_last:
                extra["logits_to_keep"] = 1
            output = model(
                input_ids=step_input,
                attention_mask=mask,
                position_ids=step_positions,
                use_cache=True,
                **extra,
            )
            scores = output.logits[:, -1, :].float()
            if processors:
                scores = processors(ids, scores)
            chosen = _choose(scores, settings.temperature, [generators[row] for row in active])
            ids = torch.cat([ids, chosen[:, None]], dim=-1)
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            step_positions = step_positions[:, -1:] + 1
            still = []
            for slot, row in enumerate(active):
                token = int(chosen[slot])
                generated[row].append(token)
                stop = _stop(token, generated[row], tokenizer, ends, stops, settings.max_new_tokens)
                if stop is None:
                    still.append(slot)
                else:
                    text = tokenizer.decode(generated[row], skip_special_tokens=True)
                    results[row] = Decoded(cut_at_stop(text, stops), len(generated[row]), stop)
            if len(still) < len(active):
                if not still:
                    break
                keep = torch.tensor(still, device=device)
                cache.batch_select_indices(keep)
                ids, mask, step_positions = ids[keep], mask[keep], step_positions[keep]
                active = [active[slot] for slot in still]
            step_input = ids[:, -1:]
    assert all(result is not None for result in results)
    return [result for result in results if result is not None]


def _stop(
    token: int, tokens: list[int], tokenizer: Any, ends: set[int], stops: list[str], limit: int
) -> str | None:
    """Why a row ends after ``token``, or ``None`` while it goes on."""
    if token in ends:
        return STOP_EOS
    if stops:
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        start = answer_start(text)
        if start is not None and any(text.find(stop, start) != -1 for stop in stops):
            return STOP_SEQUENCE
    if len(tokens) >= limit:
        return STOP_LENGTH
    return None


def _processors(tokenizer: Any, settings: DecodeSettings, ends: set[int]) -> Any:
    """transformers' logits processors for the penalized strings and sampling, or ``None``."""
    from transformers import LogitsProcessorList, NoBadWordsLogitsProcessor

    processors = LogitsProcessorList()
    bad_words = penalized_token_sequences(tokenizer, settings.penalized_strings)
    if bad_words:
        processors.append(NoBadWordsLogitsProcessor(bad_words, eos_token_id=sorted(ends) or None))
    return processors or None


def _generators(settings: DecodeSettings, count: int, seeds: Sequence[int] | None, device: Any) -> list[Any]:
    import torch

    if settings.temperature <= 0:
        return [None] * count
    chosen = list(seeds) if seeds is not None else [settings.seed + index for index in range(count)]
    generators = []
    for seed in chosen:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        generators.append(generator)
    return generators


def _choose(scores: Any, temperature: float, generators: list[Any]) -> Any:
    """The next token of each row: the most likely, or a sample from its own generator."""
    import torch

    if temperature <= 0:
        return scores.argmax(dim=-1)
    probabilities = torch.softmax(scores / temperature, dim=-1)
    picks = [
        torch.multinomial(probabilities[slot], 1, generator=generator)
        for slot, generator in enumerate(generators)
    ]
    return torch.cat(picks)
