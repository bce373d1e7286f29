"""Statistics across replications: means, 95% t-intervals, paired differences (DESIGN 4)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats as _st

DIGITS = 6


def _r(x: float) -> float:
    """Round for stable, byte-identical output across machines."""
    return round(x, DIGITS) + 0.0


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi) of the Student-t interval; a single value gives a zero-width interval."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = math.fsum(values) / n
    if n == 1:
        return mean, mean, mean
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = float(_st.t.ppf(0.5 + level / 2, n - 1)) * math.sqrt(var / n)
    return mean, mean - half, mean + half


def summarize(values: Sequence[float]) -> dict[str, object]:
    mean, lo, hi = t_interval(values)
    return {"mean": _r(mean), "ci95": [_r(lo), _r(hi)], "n": len(values)}


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, object]:
    """Difference b - a per replication (common random numbers), with its 95% interval."""
    if len(a) != len(b):
        raise ValueError("paired samples differ in length")
    mean, lo, hi = t_interval([y - x for x, y in zip(a, b, strict=True)])
    return {"diff_mean": _r(mean), "ci95": [_r(lo), _r(hi)]}
