"""Sequential stopping (``replications: auto``): how many replications each scenario needs.

A scenario is run in rounds, in every topology at once (paired comparisons need equal
counts): ``min`` replications, then ``batch`` more at a time.  After each round it stops when
every stopping metric (by default the blast radius and the guests lost) is precise enough:
the 95% Student-t half-width of its mean in each topology, and of each paired difference
between topologies, is at most the metric's tolerance
(:data:`sim.experiment.significance.TOLERANCES`); or when it reaches ``max``.

The decision reads only the scenario's own replications 0..n-1, which the seed fixes, so the
counts, and the summary, are the same whatever the number of processes or the order in
which runs finish.  A resumed run reaches the same decisions from the runs already kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sim.experiment.runlog import metric_value
from sim.experiment.significance import tolerance
from sim.experiment.stats import t_interval
from sim.schema.experiment import Stopping

Record = Mapping[str, Any]


def half_width(values: Sequence[float]) -> float:
    """Half the width of the 95% t-interval of ``values`` (infinite below 2 values)."""
    if len(values) < 2:
        return float("inf")
    _, lo, hi = t_interval(values)
    return (hi - lo) / 2


DEFAULT_METRICS = ("blast_radius", "vms_lost")
"""What the stopping rule watches unless told: the metrics the conclusions rest on.  Every
other metric is still summarized with its interval, at the replications these needed."""


def metrics_of(rule: Stopping) -> list[str]:
    """The metrics the rule watches: its own list, else :data:`DEFAULT_METRICS`."""
    return list(rule.metrics) if rule.metrics else list(DEFAULT_METRICS)


def precise(
    by_topology: Mapping[str, Sequence[Record]],
    metrics: Iterable[str],
    tolerances: Mapping[str, float] | None = None,
) -> bool:
    """Whether every metric's mean in each topology, and each paired difference, has a 95%
    half-width within the metric's tolerance.  Undefined values are left out; a metric
    undefined in every replication of a topology does not hold the scenario back."""
    names = list(by_topology)
    for metric in metrics:
        tol = tolerance(metric, tolerances)
        series = {t: [metric_value(r, metric) for r in by_topology[t]] for t in names}
        for values in series.values():
            known = [v for v in values if v is not None]
            if known and half_width(known) > tol:
                return False
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                diffs = [
                    y - x
                    for x, y in zip(series[a], series[b], strict=True)
                    if x is not None and y is not None
                ]
                if diffs and half_width(diffs) > tol:
                    return False
    return True


@dataclass
class Plan:
    """Where each scenario stands: replications decided so far, and whether it is done."""

    rule: Stopping
    scenarios: list[str]
    topologies: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)

    def next_round(self) -> dict[str, range]:
        """The replications each unfinished scenario runs next (empty when all are done)."""
        out = {}
        for sc in self.scenarios:
            if sc in self.done:
                continue
            n = self.counts.get(sc, 0)
            target = self.rule.min if n == 0 else min(n + self.rule.batch, self.rule.max)
            out[sc] = range(n, target)
        return out

    def settle(self, scenario: str, n: int, runs: Mapping[tuple[str, int], Record]) -> None:
        """Record that ``scenario`` has ``n`` replications in every topology (``runs`` by
        (topology, replication)) and decide whether it stops."""
        self.counts[scenario] = n
        by_topology = {t: [runs[(t, r)] for r in range(n)] for t in self.topologies}
        if n >= self.rule.max or precise(by_topology, metrics_of(self.rule)):
            self.done.add(scenario)

    def bound(self) -> int:
        """The most runs still possible in total (done scenarios at their count)."""
        per = [
            self.counts.get(sc, 0) if sc in self.done else self.rule.max for sc in self.scenarios
        ]
        return sum(per) * len(self.topologies)

    def describe(self) -> dict[str, Any]:
        """The rule and its outcome, for ``summary.json``."""
        return {
            "rule": (
                "each scenario ran until, for every metric listed, the 95% t half-width of "
                "its mean in each topology and of each paired difference was at most the "
                "metric's tolerance (or max replications)"
            ),
            "min": self.rule.min,
            "max": self.rule.max,
            "batch": self.rule.batch,
            "metrics": {m: tolerance(m) for m in metrics_of(self.rule)},
            "replications": {sc: self.counts.get(sc, 0) for sc in self.scenarios},
        }
