"""Number formatting shared by every table, sentence and figure of the report.

One rule everywhere (so a reader, and a test, can match the report against
``summary.json``): three significant digits, no exponent for everyday magnitudes, trailing
zeros dropped, ``-0`` printed as ``0``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

DIGITS = 3


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


def interval(stat: Mapping[str, Any]) -> str:
    """``[lo, hi]`` of a summary statistic or comparison (its ``ci95``)."""
    lo, hi = stat["ci95"]
    return f"[{num(lo)}, {num(hi)}]"


def estimate(stat: Mapping[str, Any], key: str = "mean") -> str:
    """``mean [lo, hi]`` (or ``diff_mean [lo, hi]`` with ``key='diff_mean'``)."""
    return f"{num(stat[key])} {interval(stat)}"


def seconds(x: float) -> str:
    """A duration for prose: ``900 s``."""
    return f"{num(x)} s"


def count(n: int, noun: str) -> str:
    """``1 scenario``, ``3 scenarios`` (regular plurals only)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
