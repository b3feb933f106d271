"""Two models on the same rows: paired counts and an exact McNemar test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trainer.evaluation.stats import mcnemar_exact

SIGNIFICANCE = 0.05


def compare(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Paired outcomes of two evaluations of the same rows.

    Only rows both scored count: a row either model could not render, or one
    without an expected answer, is left out.

    :return: ``rows`` (paired), ``both``, ``only_a``, ``only_b``, ``neither`` and
        the exact McNemar ``p_value`` of the disagreements.
    """
    by_row = {record["row"]: record for record in b}
    both = only_a = only_b = neither = 0
    for record in a:
        other = by_row.get(record["row"])
        if other is None or record.get("correct") is None or other.get("correct") is None:
            continue
        right_a, right_b = bool(record["correct"]), bool(other["correct"])
        both += right_a and right_b
        only_a += right_a and not right_b
        only_b += right_b and not right_a
        neither += not right_a and not right_b
    return {
        "rows": both + only_a + only_b + neither,
        "both": both,
        "only_a": only_a,
        "only_b": only_b,
        "neither": neither,
        "p_value": mcnemar_exact(only_a, only_b),
    }


def verdict(paired: dict[str, Any], name_a: str, name_b: str) -> str:
    """One sentence on whether the difference is real at the 5% level."""
    p = paired["p_value"]
    if paired["only_a"] == paired["only_b"]:
        return f"no difference: the models disagree on {paired['only_a'] + paired['only_b']} rows, evenly"
    better, worse = (name_a, name_b) if paired["only_a"] > paired["only_b"] else (name_b, name_a)
    if p < SIGNIFICANCE:
        return f"{better} is better than {worse} (p = {p:.3g} < {SIGNIFICANCE})"
    return f"{better} is ahead, but the difference could be chance (p = {p:.3g} >= {SIGNIFICANCE})"
