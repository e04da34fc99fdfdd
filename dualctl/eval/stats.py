"""Binomial statistics for success rates: the Wilson score interval for one rate, Newcombe's
hybrid score interval for the difference of two, and McNemar's exact test for two settings
run on the same seeds.

Wilson rather than the normal approximation because cells are small (tens of episodes) and
rates sit near 0 or 1, where ``p +- z sqrt(p(1-p)/n)`` collapses to zero width or leaves [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Two-sided 95 % standard normal quantile.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    """A success count with its 95 % Wilson interval."""

    successes: int
    trials: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.successes / self.trials if self.trials else float("nan")


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (low, high) of a binomial proportion; (0, 1) when trials is 0."""
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"successes={successes}, trials={trials}: need 0 <= successes <= trials")
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    # Exact bounds at the edges, so 0/n reports 0 and n/n reports 1 rather than 1e-17.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def rate(successes: int, trials: int) -> Rate:
    return Rate(successes, trials, *wilson_interval(successes, trials))


def difference_interval(a: Rate, b: Rate) -> tuple[float, float]:
    """95 % interval of ``a.value - b.value`` (Newcombe 1998, method 10: hybrid Wilson score).

    An interval excluding 0 is the evidence we accept for "a beats b" (or the reverse).
    """
    if not a.trials or not b.trials:
        return -1.0, 1.0
    p1, p2 = a.value, b.value
    low = p1 - p2 - math.sqrt((p1 - a.low) ** 2 + (b.high - p2) ** 2)
    high = p1 - p2 + math.sqrt((a.high - p1) ** 2 + (p2 - b.low) ** 2)
    return max(-1.0, low), min(1.0, high)


def mcnemar_exact_p(lost: int, gained: int) -> float:
    """Two-sided exact McNemar p-value for a paired comparison on the same episodes: ``lost``
    succeed in the first setting only, ``gained`` in the second only (the episodes that agree
    carry no information). Small p: the settings differ beyond episode-to-episode churn."""
    if lost < 0 or gained < 0:
        raise ValueError(f"lost={lost}, gained={gained}: need counts >= 0")
    n = lost + gained
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(lost, gained) + 1))
    return min(1.0, 2.0 * tail / 2**n)
