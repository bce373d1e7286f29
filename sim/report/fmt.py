"""Number formatting shared by every table, sentence and figure of the report.

Two rules.  :func:`num` (prose, axis ticks): three significant digits, trailing zeros
dropped, ``-0`` printed as ``0``.  :func:`estimate` (a mean or a difference with its
interval): the interval respects the metric's range (:func:`sim.experiment.stats.bounded`:
Wilson for fractions, counts never below 0) and all three numbers share one number of decimals:
2 for fractions (``0.00 [0.00, 0.11]``), else 3 significant digits of the largest of them
(``49.7 [49.6, 49.9]``, ``1126 [1123, 1128]``), at most 3 decimals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sim.experiment.metrics import PROPORTIONS, metric_range
from sim.experiment.stats import bounded

DIGITS = 3
MAX_DECIMALS = 3


def num(x: float | None) -> str:
    """``x`` to :data:`DIGITS` significant digits: ``0.123``, ``83``, ``14400``, ``-0.000096``;
    ``n/a`` for an undefined value (null in ``summary.json``)."""
    if x is None:
        return "n/a"
    if not math.isfinite(x):
        return str(x)
    r = float(f"{x:.{DIGITS}g}")
    if r == 0:
        return "0"
    if 1e-6 <= abs(r) < 1e15:
        text = f"{r:.{max(0, DIGITS - 1 - math.floor(math.log10(abs(r))))}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{r:.{DIGITS - 1}e}"


def decimals(metric: str, *values: float) -> int:
    """Decimals that show ``values`` of ``metric`` at the precision the reader needs."""
    if metric in PROPORTIONS:
        return 2
    scale = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
    if scale == 0:
        return 0
    return min(MAX_DECIMALS, max(0, DIGITS - 1 - math.floor(math.log10(scale))))


def fixed(x: float, places: int) -> str:
    """``x`` with ``places`` decimals; never ``-0.00``."""
    text = f"{x:.{places}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def interval_of(stat: Mapping[str, Any], metric: str, key: str = "mean") -> tuple[float, float]:
    """The displayed interval: a mean's respects the metric's range; a difference's is cut
    to the widest possible difference."""
    low, high = metric_range(metric)
    if key == "mean":
        return bounded(dict(stat), low, high)
    lo, hi = (float(x) for x in stat["ci95"])
    if high is not None:
        span = high - low
        lo, hi = max(-span, lo), min(span, hi)
    return lo, hi


def value(x: float, metric: str) -> str:
    """One number of ``metric`` (a mean or a difference) at the report's precision."""
    return fixed(x, decimals(metric, x))


def estimate(stat: Mapping[str, Any], metric: str = "", key: str = "mean") -> str:
    """``mean [lo, hi]`` (or ``diff_mean [lo, hi]`` with ``key='diff_mean'``); ``n/a``
    when the value is undefined (null in the summary)."""
    if stat.get(key) is None:
        return "n/a"
    lo, hi = interval_of(stat, metric, key)
    mid = float(stat[key])
    places = decimals(metric, mid, lo, hi)
    return f"{fixed(mid, places)} [{fixed(lo, places)}, {fixed(hi, places)}]"


def seconds(x: float) -> str:
    """A duration for prose: ``900 s``."""
    return f"{num(x)} s"


def count(n: int, noun: str) -> str:
    """``1 scenario``, ``3 scenarios`` (regular plurals only)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def replications(summary: Mapping[str, Any]) -> str:
    """How many replications a summary's means are over: ``30``, or ``5-30`` with
    sequential stopping (the fewest and the most any scenario ran)."""
    stopping = summary.get("stopping")
    if not stopping:
        return str(summary["replications"])
    counts = list(stopping["replications"].values()) or [0]
    lo, hi = min(counts), max(counts)
    return str(hi) if lo == hi else f"{lo}-{hi}"
