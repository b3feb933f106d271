"""Stop sequences end the answer: a leading think block is never cut by them."""

from __future__ import annotations

import pytest

from trainer.generation import AnswerStop, answer_start, cut_at_stop
from trainer.testing import tiny_tokenizer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Step 1: x\nAnswer: 4\n\nmore", "Step 1: x\nAnswer: 4"),
        (
            "<think>\n\n</think>\n\nStep 1: x\nAnswer: 4\n\nmore",
            "<think>\n\n</think>\n\nStep 1: x\nAnswer: 4",
        ),
        ("<think>\na\n\nb\n</think>\n\nAnswer: 4\n\nmore", "<think>\na\n\nb\n</think>\n\nAnswer: 4"),
        ("<think>\nstill thinking\n\nabout it", "<think>\nstill thinking\n\nabout it"),
        ("Answer: 4 <think>\n\n</think>", "Answer: 4 <think>"),
    ],
    ids=["plain", "empty think block", "reasoning with blank lines", "unclosed block", "think later"],
)
def test_cut_at_stop_leaves_a_leading_think_block_alone(text, expected):
    assert cut_at_stop(text, ["\n\n"]) == expected


def test_answer_start():
    assert answer_start("Answer: 4") == 0
    assert answer_start("<think>\nx\n</think>\n\nAnswer") == len("<think>\nx\n</think>\n\n")
    assert answer_start("  <think>\nx") is None


def test_the_stopping_criterion_fires_only_in_the_answer():
    import torch

    tokenizer = tiny_tokenizer(["<think>\n\n</think>\n\nAnswer: 4\n\nmore text"] * 20, vocab_size=300)
    stop = AnswerStop(tokenizer, ["\n\n"], prompt_length=1)
    prompt = [tokenizer.pad_token_id]

    def done(text: str) -> bool:
        ids = prompt + tokenizer.encode(text, add_special_tokens=False)
        return bool(stop(torch.tensor([ids]), None)[0])

    assert not done("<think>\n\n</think>\n\n")
    assert not done("<think>\n\n</think>\n\nAnswer: 4")
    assert done("<think>\n\n</think>\n\nAnswer: 4\n\n")
    assert done("Answer: 4\n\n")
    assert not done("<think>\nstill\n\n")
