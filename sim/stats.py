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
