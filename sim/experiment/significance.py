"""When a difference between two means counts: the one rule of the gate and the report.

A difference ``d`` (new - old, or topology b - topology a) with a 95% interval ``[lo, hi]``
counts as **higher** when ``lo > 0`` and ``d > tolerance``, as **lower** when ``hi < 0`` and
``d < -tolerance``; otherwise it does not count (it is either not significant, or smaller
than the metric's tolerance).  The tolerances are absolute, per metric: a difference of
-0.008 in the blast radius is not practically different from 0.
"""

from __future__ import annotations

from collections.abc import Mapping

TOLERANCES: dict[str, float] = {
    "blast_radius": 0.05,
    "vms_lost": 0.5,
    "vms_unmanageable": 1.0,
    "unmanageable_vm_seconds": 60.0,
    "failed_operations": 1.0,
}
"""Absolute tolerance per gated metric: fraction of guests, guests, guest-seconds, operations.

Metrics not listed have no tolerance (0): for them the interval alone decides."""


def tolerance(metric: str, tolerances: Mapping[str, float] | None = None) -> float:
    """The tolerance of ``metric`` (0 when it has none)."""
    return float((TOLERANCES if tolerances is None else tolerances).get(metric, 0.0))


def direction(diff: float, lo: float, hi: float, tol: float) -> int:
    """+1 when the difference counts as higher, -1 as lower, 0 when it does not count."""
    if lo > 0 and diff > tol:
        return 1
    if hi < 0 and diff < -tol:
        return -1
    return 0


def significant_only(lo: float, hi: float) -> bool:
    """Whether the interval excludes 0 (statistically significant, whatever the size)."""
    return lo > 0 or hi < 0
