"""An experiment's estimated size, checked before it runs.

A run's cost grows with the calls it simulates: the probe's (one per running guest every
``every_s``), the clients' (``count`` x calls per second x guests per call for
``each-guest`` x the duration) and the nested calls each call makes.  The estimate is

    events = runs x (EVENTS_PER_CALL x calls per run + guests + clients)

summed over scenarios (each with its own clients and overrides) and topologies.  It is an
order of magnitude, not a prediction: it exists so that ``duration_s: 1e7`` or a million
clients is refused in a second with a clear message instead of running for days.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sim.errors import ConfigError
from sim.model.resolved import ExperimentModel, WorkloadModel
from sim.schema.catalog import Catalog
from sim.schema.experiment import Scenario
from sim.schema.workload import CallSpec, ClientDecl

EVENTS_PER_CALL = 3.0
"""SimPy events per simulated call (PERF-NOTES: about 170 k events for 60 k calls)."""
EVENTS_PER_SECOND = 100_000.0
"""Events simulated per CPU second, for the time shown in the message (PERF-NOTES)."""


@dataclass(frozen=True)
class SizeLimits:
    """The largest experiment run without ``--no-size-check``.

    Attributes
    ----------
    events : estimated events of all runs together (1e9: about 3 CPU hours, ten times the
        shipped fault matrix)
    run_events : estimated events of one run (2e7: a few GB of call records, eighty times
        the largest shipped run)
    """

    events: float = 1e9
    run_events: float = 2e7


LIMITS = SizeLimits()
"""The limits :func:`check_size` applies (tests substitute tiny ones)."""


@dataclass(frozen=True)
class Size:
    """An experiment's estimated size."""

    runs: int
    events: float
    largest: str
    """The scenario with the most events per run."""
    largest_events: float

    def describe(self) -> str:
        """The estimate in one sentence, with the CPU hours it implies."""
        hours = self.events / EVENTS_PER_SECOND / 3600
        return (
            f"estimated size {self.runs} runs, {self.events:.3g} events (about {hours:.3g} "
            f"CPU hours); the largest run is scenario {self.largest!r} with "
            f"{self.largest_events:.3g} events"
        )


def _nested(catalog: Catalog, fanout: dict[str, int]) -> dict[str, float]:
    """Calls one call of each procedure amounts to, nested calls included."""
    procs = {p.name: p for p in catalog.procedures}

    @cache
    def weight(name: str) -> float:
        proc = procs.get(name)
        if proc is None:
            return 1.0
        total = 1.0
        for call in proc.calls:
            times = 1 if call.for_each is None else fanout.get(call.for_each, 1)
            total += times * weight(call.procedure)
        return total

    return {name: weight(name) for name in sorted(procs)}


def _fanout(workload: WorkloadModel) -> dict[str, int]:
    """The most objects of each kind one guest or object refers to (at least 1)."""
    doc = workload.workload.doc
    out: dict[str, int] = {}
    for refs in [g.refs for g in doc.guests] + [o.refs for o in doc.objects]:
        for kind, names in refs.items():
            out[kind] = max(out.get(kind, 1), len(names))
    return out


def _call_rate(spec: CallSpec, guests: dict[str | None, int]) -> float:
    """Calls per second one client makes for one call spec."""
    per_s = spec.rate_per_s if spec.rate_per_s is not None else 1.0 / (spec.every_s or 1.0)
    fan = guests.get(spec.group, 0) if spec.target == "each-guest" else 1
    return per_s * fan


def run_events(workload: WorkloadModel, scenario: Scenario, duration_s: float) -> float:
    """Estimated events of one run of ``scenario`` (its overrides already applied)."""
    doc = workload.workload.doc
    guests: dict[str | None, int] = {g.name: g.count for g in doc.guests}
    guests[None] = sum(g.count for g in doc.guests)
    weights = _nested(workload.catalog.doc, _fanout(workload))
    probe = doc.probe
    probe_steps = [*probe.before, probe.procedure]
    calls = (
        guests[None] * duration_s / probe.every_s * sum(weights.get(n, 1.0) for n in probe_steps)
    )
    decls: list[ClientDecl] = [*doc.clients, *scenario.clients]
    for decl in decls:
        profile = workload.profiles.get(decl.profile)
        if profile is None:
            continue
        active = max(0.0, duration_s - decl.start_s)
        for spec in profile.calls:
            steps = [*spec.before, spec.procedure or ""]
            rate = _call_rate(spec, guests) * sum(weights.get(n, 1.0) for n in steps)
            calls += decl.count * rate * active
        if profile.keepalive is not None:
            calls += decl.count * active / profile.keepalive.interval_s
    return EVENTS_PER_CALL * calls + guests[None] + sum(d.count for d in decls)


def estimate(model: ExperimentModel, replications: int) -> Size:
    """The size of running every scenario of ``model`` in every topology."""
    from sim.model.resolved import apply_workload

    duration = model.doc.duration_s
    per_run = {
        sc.name: run_events(apply_workload(model.workload, sc.overrides), sc, duration)
        for sc in model.scenarios
    }
    runs_per_scenario = len(model.systems) * replications
    largest = max(sorted(per_run), key=lambda name: per_run[name])
    return Size(
        runs=runs_per_scenario * len(per_run),
        events=runs_per_scenario * sum(per_run.values()),
        largest=largest,
        largest_events=per_run[largest],
    )


def check_size(model: ExperimentModel, replications: int) -> Size:
    """Raise :class:`~sim.errors.ConfigError` when the estimate exceeds :data:`LIMITS`."""
    size = estimate(model, replications)
    if size.largest_events > LIMITS.run_events:
        problem = f"one run is estimated above the limit of {LIMITS.run_events:.3g} events"
    elif size.events > LIMITS.events:
        problem = f"the runs are estimated above the limit of {LIMITS.events:.3g} events"
    else:
        return size
    msg = (
        f"{problem} ({size.describe()}); lower replications, duration_s, scenarios, guests "
        "or clients, or pass --no-size-check"
    )
    raise ConfigError.single(model.experiment.path, msg)
