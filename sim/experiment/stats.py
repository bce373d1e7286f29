"""Statistics across replications: means, 95% t-intervals, paired differences (DESIGN 4)."""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

DIGITS = 6


def _r(x: float) -> float:
    """Round for stable, byte-identical output across machines."""
    return round(x, DIGITS) + 0.0


@functools.cache
def t_quantile(p: float, df: float) -> float:
    """The Student-t quantile (scipy, imported on first use: it costs seconds to import)."""
    from scipy import stats as _st

    return float(_st.t.ppf(p, df))


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi) of the Student-t interval; a single value gives a zero-width interval."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = math.fsum(values) / n
    if n == 1:
        return mean, mean, mean
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = t_quantile(0.5 + level / 2, n - 1) * math.sqrt(var / n)
    return mean, mean - half, mean + half


def _undefined(missing: int, total: int, why: str) -> str:
    return f"undefined in {missing} of {total} replications: {why}"


def summarize(values: Sequence[float | None], why: str = "undefined") -> dict[str, object]:
    """Mean, 95% interval and n of the defined values.  Undefined ones (None) are left
    out and counted in ``undefined`` with ``why``; with none defined, the mean and interval
    are null (strict JSON: never NaN)."""
    known = [v for v in values if v is not None]
    out: dict[str, object] = {"mean": None, "ci95": [None, None], "n": len(known)}
    if known:
        mean, lo, hi = t_interval(known)
        out |= {"mean": _r(mean), "ci95": [_r(lo), _r(hi)]}
    if len(known) < len(values):
        out["undefined"] = _undefined(len(values) - len(known), len(values), why)
    return out


def paired(
    a: Sequence[float | None], b: Sequence[float | None], why: str = "undefined"
) -> dict[str, object]:
    """Difference b - a per replication (common random numbers), with its 95% interval,
    over the replications where both are defined (null when there is none)."""
    if len(a) != len(b):
        raise ValueError("paired samples differ in length")
    diffs = [y - x for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    out: dict[str, object] = {"diff_mean": None, "ci95": [None, None]}
    if diffs:
        mean, lo, hi = t_interval(diffs)
        out = {"diff_mean": _r(mean), "ci95": [_r(lo), _r(hi)]}
    if len(diffs) < len(a):
        out["undefined"] = _undefined(len(a) - len(diffs), len(a), why)
    return out


Z95 = statistics.NormalDist().inv_cdf(0.975)


def wilson(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a mean ``p`` of ``n`` values in [0, 1]; inside [0, 1].

    For a variable in [0, 1] with mean p the variance is at most p(1 - p), so the interval
    (the p whose normal test accepts the observed mean with that variance) is conservative
    for fractions as well as for 0/1 outcomes: all-zero replications give [0, ~3.8/n]
    rather than the t-interval's [0, 0]."""
    if n <= 0:
        raise ValueError("no values")
    p = min(1.0, max(0.0, p))
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def bounded(stat: Mapping[str, Any], low: float | None, high: float | None) -> tuple[float, float]:
    """The 95% interval of a summary entry (mean, ci95, n) that respects the metric's range.

    A metric in [0, 1] (``low=0, high=1``) gets the Wilson interval; any other range cuts
    the t-interval at its ends (a mean never below 0 keeps a lower end of at least 0:
    intersecting a confidence set with the possible values keeps its coverage)."""
    lo, hi = (float(x) for x in stat["ci95"])
    mean, n = float(stat["mean"]), int(stat["n"])
    if low == 0.0 and high == 1.0 and n >= 1:
        return wilson(mean, n)
    if low is not None:
        lo, hi = max(low, lo), max(low, hi)
    if high is not None:
        lo, hi = min(high, lo), min(high, hi)
    return lo, hi
