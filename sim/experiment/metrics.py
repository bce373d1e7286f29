"""Per-replication metrics (DESIGN 4), computed from one run's collector.

The observation window is ``[warmup_s, duration_s]``.  The fault reference time is the
earliest fault's ``at_s`` (the end of warm-up without faults); the recovery reference is the
latest fault end (``at_s + duration_s``, or ``at_s`` for crashes and open-ended faults).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.engine.guests import INTERNAL

if TYPE_CHECKING:
    from sim.engine.trace import Collector
    from sim.schema.experiment import Scenario

HEADLINE = (
    "blast_radius",
    "vms_lost",
    "vms_unmanageable",
    "unmanageable_vm_seconds",
    "failed_operations",
    "time_to_recover_s",
)
"""The metrics of DESIGN 4 shown for every scenario; lower is better for all of them."""

PROPORTIONS = frozenset({"blast_radius"})
"""Metrics that are fractions in [0, 1]; every other metric is a count, a duration or a
latency, never below 0."""


def metric_range(metric: str) -> tuple[float, float | None]:
    """(lowest, highest) value ``metric`` can take; ``None``: no upper bound."""
    return (0.0, 1.0) if metric in PROPORTIONS else (0.0, None)


MANAGEMENT_OPS = frozenset({"start", "stop", "manage", "config", "reconnect", "connect"})


@dataclass(frozen=True)
class Window:
    """A replication's time references (s): the observation window ``[start, end]``, the earliest
    fault's start and the latest fault's end.
    """

    start: float
    end: float
    fault_at: float
    fault_end: float

    @classmethod
    def of(cls, scenario: Scenario | None, warmup_s: float, duration_s: float) -> Window:
        """The window of ``scenario`` (``None`` or no fault: both fault times at the end of
        warm-up).
        """
        faults = scenario.faults if scenario is not None else []
        if not faults:
            return cls(warmup_s, duration_s, warmup_s, warmup_s)
        at = min(f.at_s for f in faults)
        end = max(f.at_s + (f.duration_s or 0.0) for f in faults)
        return cls(warmup_s, duration_s, at, end)


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    k = (len(values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


NOT_RECOVERED = "not recovered by the end of the run"
"""Why ``time_to_recover_s`` is undefined (null) in a run: a guest that was not lost was
still unmanageable when the run ended, so no recovery time exists."""


def compute(c: Collector, running_at_fault: list[str], w: Window) -> dict[str, float | None]:
    """The DESIGN 4 metrics of one replication, plus per-driver failure counts.

    ``time_to_recover_s`` is None (undefined, :data:`NOT_RECOVERED`) when a guest that was
    not lost is still unmanageable at the end of the window."""
    running = set(running_at_fault)
    lost = {g for g, (t, _) in c.lost.items() if g in running and t >= w.fault_at}
    unmanageable = set()
    seconds = 0.0
    recovered_at = w.fault_end
    recovered = True
    for guest, intervals in c.unmanageable.items():
        for t0, t1 in intervals:
            assert t0 is not None and t1 is not None
            part = _overlap(t0, t1, w.start, w.end)
            seconds += part
            if part > 0 and guest in running:
                unmanageable.add(guest)
            if t1 > w.fault_end and guest not in c.lost:
                recovered_at = max(recovered_at, t1)
                recovered &= t1 < w.end
    # the calls that started in the window, probes left out, read by column (a record object
    # per call would cost 100 MB at 1000 guests); ``api``: what clients saw (not internal)
    log = c.calls
    kinds = [
        (cl != "probe", cl != INTERNAL, ok, op in MANAGEMENT_OPS, drv)
        for cl, _, drv, op, ok, _ in log.kinds
    ]
    failed_ops = 0
    latencies: list[float] = []
    api_errors: dict[str, float] = {}  # failed api calls per driver, in order of the first
    for t0, t1, i in zip(log.t_start, log.t_end, log.kind, strict=True):
        if not w.start <= t0 <= w.end:
            continue
        counted, api, ok, management, driver = kinds[i]
        if not counted:
            continue
        if ok:
            if api:
                latencies.append(t1 - t0)
        else:
            failed_ops += management
            if api:
                key = f"api_errors.{driver or 'connect'}"
                api_errors[key] = api_errors.get(key, 0.0) + 1.0
    m: dict[str, float | None] = {
        "vms_running": float(len(running)),
        "vms_lost": float(len(lost)),
        "vms_unmanageable": float(len(unmanageable - lost)),
        "blast_radius": len(lost | unmanageable) / len(running) if running else 0.0,
        "unmanageable_vm_seconds": seconds,
        "failed_operations": float(failed_ops),
        "time_to_recover_s": recovered_at - w.fault_end if recovered else None,
        "api_p50_ms": 1000.0 * _percentile(latencies, 0.5),
        "api_p99_ms": 1000.0 * _percentile(latencies, 0.99),
        "api_errors": float(sum(api_errors.values())),
    }
    m.update(api_errors)
    return m
