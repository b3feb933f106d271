"""The numbers an evaluation reports: intervals, paired tests and pass@k.

Standard library only, so summaries are computed and checked without torch.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

Z95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95% interval."""


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and is sensible for
    small samples and for rates of 0% or 100%.

    :return: ``(low, high)``; ``(0.0, 1.0)`` when there are no trials.
    """
    if trials <= 0:
        return 0.0, 1.0
    rate = successes / trials
    denominator = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """The exact (binomial) two-sided McNemar p-value for paired right/wrong outcomes.

    :param only_a: rows model A gets right and model B wrong.
    :param only_b: rows model B gets right and model A wrong.
    :return: the probability, if both models were equally good, of a split at
        least this uneven; 1.0 when they never disagree.
    """
    discordant = only_a + only_b
    if discordant == 0:
        return 1.0
    smaller = min(only_a, only_b)
    tail = sum(math.comb(discordant, k) for k in range(smaller + 1)) / 2**discordant
    return min(1.0, 2 * tail)


def pass_at_k(samples: int, correct: int, k: int) -> float:
    """The unbiased pass@k estimate from ``samples`` generations of which ``correct`` are right.

    The chance that at least one of ``k`` generations drawn without replacement
    from the ``samples`` is right: ``1 - C(samples - correct, k) / C(samples, k)``.
    """
    if k > samples:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {samples}")
    if samples - correct < k:
        return 1.0
    return 1.0 - math.comb(samples - correct, k) / math.comb(samples, k)


def majority(answers: Sequence[str | None]) -> str | None:
    """The most frequent parsed answer (``None`` answers left out); the earliest wins a tie."""
    counted = Counter(answer for answer in answers if answer is not None)
    if not counted:
        return None
    best = max(counted.values())
    return next(answer for answer in answers if answer is not None and counted[answer] == best)
