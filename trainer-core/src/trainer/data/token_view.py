"""Which tokens of an example are trained, shown as text (for ``trainer preview --tokens``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from trainer.data.chat_template import IGNORE_INDEX

TRAINED_MARK = ">>"


class TokenLabel(NamedTuple):
    """One token of an example and whether the loss is computed on it."""

    position: int
    token_id: int
    text: str
    """The token decoded on its own (special tokens included)."""
    trained: bool


def token_labels(input_ids: Sequence[int], labels: Sequence[int], tokenizer: Any) -> list[TokenLabel]:
    """Each token of an example, decoded, with its trained flag (label not ``-100``)."""
    return [
        TokenLabel(index, int(token), tokenizer.decode([int(token)]), label != IGNORE_INDEX)
        for index, (token, label) in enumerate(zip(input_ids, labels, strict=True))
    ]


def format_token_labels(tokens: Sequence[TokenLabel]) -> list[str]:
    """A table of the tokens, one per line: position, ``>>`` when trained, id, the token quoted.

    Quoting (Python ``repr``) makes newlines and spaces visible; no colour is needed.
    """
    trained = sum(token.trained for token in tokens)
    width = len(str(max(len(tokens) - 1, 0)))
    lines = [f"{len(tokens)} tokens, {trained} trained (marked {TRAINED_MARK})"]
    for token in tokens:
        mark = TRAINED_MARK if token.trained else " " * len(TRAINED_MARK)
        lines.append(f"{token.position:>{width}} {mark} {token.token_id:>6}  {token.text!r}")
    return lines
