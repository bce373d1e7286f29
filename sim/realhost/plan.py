"""What a real run will do: the experiment read loosely, its targets resolved to testbed
processes and controls, and every fault or action the host cannot take refused with a reason.

The experiment is read with its own, looser schema (unknown keys and fault kinds the engine
does not know yet are accepted here; the host description decides what is runnable), so a
real run does not depend on the engine's schema version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim.errors import ConfigError
from sim.model.loader import Loaded, Source, load_as, read_yaml, validate_source
from sim.model.scenarios import from_sweep
from sim.schema import Catalog, ClientProfiles, Topology, Workload
from sim.schema.experiment import Action, Sweep, Target
from sim.schema.realhost import DaemonSpec, FaultImpl, RealHost
from sim.schema.realhost import Topology as BedTopology
from sim.schema.workload import ClientDecl, ClientProfile, Probe

NonNeg = Annotated[float, Field(ge=0)]


class Loose(BaseModel):
    """Base of the loose experiment schema: unknown keys are ignored, values frozen."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class RealFault(Loose):
    """A fault as a real run reads it: any ``kind`` (the host description decides what runs)."""

    kind: str
    target: Target
    scope: str | None = None
    at_s: NonNeg
    duration_s: Annotated[float, Field(gt=0)] | None = None


class ProbeOv(Loose):
    """A scenario's probe override (``overrides.probe``)."""

    every_s: float | None = None
    slo_ms: float | None = None
    timeout_s: float | None = None


class RealOverrides(Loose):
    """A scenario's overrides; ``counts`` and ``pool`` make the scenario refused."""

    counts: dict[str, int] = Field(default_factory=dict)
    pool: dict[str, Any] | None = None
    probe: ProbeOv | None = None


class RealScenario(Loose):
    """A scenario as a real run reads it: clients, faults, actions and overrides."""

    name: str
    clients: list[ClientDecl] = Field(default_factory=list)
    faults: list[RealFault] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    overrides: RealOverrides = Field(default_factory=RealOverrides)


class RealExperiment(Loose):
    """An experiment as a real run reads it (the parts a real run uses)."""

    kind: str
    name: str
    topologies: list[str]
    workload: str
    duration_s: Annotated[float, Field(gt=0)]
    warmup_s: NonNeg = 0.0
    replications: Annotated[int, Field(ge=1)] = 10
    seed: int = 0
    scenarios: list[RealScenario] = Field(default_factory=list)
    sweeps: list[Sweep] = Field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """One scheduled thing: start or end of a fault, or an action."""

    at_s: float
    what: str  # signal, guest-signal, block, unblock, daemon-start, daemon-stop, guest-call, none
    on: str = ""  # daemon name, guest name, or object
    arg: str = ""  # signal name, or lifecycle procedure
    note: str = ""
    control_kill: bool = False


@dataclass
class Plan:
    """What a real run does in one scenario: the timed steps, or why it cannot run (``refused``)."""

    scenario: RealScenario
    steps: list[Step] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def fault_at(self) -> float | None:
        """The earliest fault's start (s), or ``None`` without a fault."""
        return min((f.at_s for f in self.scenario.faults), default=None)

    @property
    def fault_end(self) -> float | None:
        """The latest fault's end (s; its start for an open-ended fault), or ``None`` without a
        fault.
        """
        ends = [f.at_s + (f.duration_s or 0.0) for f in self.scenario.faults]
        return max(ends, default=None)


@dataclass
class Inputs:
    """An experiment's documents for a real run in one topology: scenarios (sweeps expanded),
    topology, workload, client profiles, catalog.
    """

    path: Path
    exp: RealExperiment
    scenarios: list[RealScenario]
    topology: Loaded[Topology]
    workload: Workload
    profiles: dict[str, ClientProfile]
    catalog: Catalog


def _validate(data: Any, model: type[Loose], src: Source, at: tuple[str | int, ...] = ()) -> Any:
    """Validate loosely; every error names file, line and field."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        issues = [src.issue((*at, *e["loc"]), e["msg"]) for e in err.errors()]
        raise ConfigError(issues) from None


def load_inputs(path: Path, topology: str) -> Inputs:
    """Read the experiment at ``path`` loosely and load the topology called ``topology``, the
    workload, its profiles and catalog; ConfigError when there is no such topology.
    """
    src = read_yaml(path)
    exp: RealExperiment = _validate(src.data, RealExperiment, src)
    scenarios = list(exp.scenarios)
    for i, sweep in enumerate(exp.sweeps):
        at = ("sweeps", i, "template")
        scenarios += [_validate(d, RealScenario, src, at) for d in from_sweep(sweep)]
    here = path.parent
    topo = None
    for ref in exp.topologies:
        t = load_as(here / ref, Topology)
        if t.doc.name == topology:
            topo = t
    if topo is None:
        raise ConfigError.single(
            path, f"no topology named {topology!r} in the experiment", field="topologies"
        )
    wl = load_as(here / exp.workload, Workload)
    profiles = {p.name: p for p in wl.doc.profiles}
    for ref in wl.doc.imports:
        profiles |= {p.name: p for p in load_as(wl.resolve(ref), ClientProfiles).doc.profiles}
    cat = validate_source(read_yaml(wl.resolve(wl.doc.catalog)), Catalog).doc
    return Inputs(path, exp, scenarios, topo, wl.doc, profiles, cat)


# ------------------------------------------------------------------------------ targets
def _daemons_for(target: Target, topo: Topology, bed: BedTopology) -> list[DaemonSpec]:
    kind, value = target.key
    by_name = {d.name: d for d in bed.daemons}
    if kind == "daemon":
        names = [value]
    elif kind == "role":
        names = [d.name for d in bed.daemons if value in d.roles]
    elif kind == "driver":
        names = [d.name for d in topo.daemons if value in d.drivers]
    elif kind == "unit":
        names = [d.name for d in bed.daemons if d.unit == value]
    else:
        return []
    return [by_name[n] for n in names if n in by_name]


def _impl(host: RealHost, kind: str, scope: str | None) -> FaultImpl | str:
    for r in host.refused:
        if r.kind == kind and (r.scope is None or r.scope == scope):
            return r.reason
    for f in host.faults:
        if f.kind == kind and f.scope == scope:
            return f
    return (
        f"fault kind {kind!r}"
        + (f" scope {scope!r}" if scope else "")
        + " is not realised on this host"
    )


def plan_fault(
    host: RealHost, bed: BedTopology, topo: Topology, f: RealFault, guests: list[str]
) -> list[Step] | str:
    """The steps that realise fault ``f`` on the testbed (signals, a pool block, and their ends),
    or why the host cannot.
    """
    impl = _impl(host, f.kind, f.scope)
    if isinstance(impl, str):
        return impl
    end = None if f.duration_s is None else f.at_s + f.duration_s
    kind, value = f.target.key
    if impl.on == "object":
        if kind != "object" or value != host.pool.name:
            return f"only the pool {host.pool.name!r} can be blocked on this host, not {f.target}"
        steps = [Step(f.at_s, "block", value)]
        return steps + ([Step(end, "unblock", value)] if end is not None else [])
    if impl.on == "guest":
        if kind != "guest" or value not in guests:
            return f"{f.kind} needs a target guest of the testbed, not {f.target}"
        ctl = f.kind == "guest-crash"
        steps = [Step(f.at_s, "guest-signal", value, str(impl.start), control_kill=ctl)]
        if end is not None and impl.end:
            steps.append(Step(end, "guest-signal", value, str(impl.end)))
        return steps
    daemons = _daemons_for(f.target, topo, bed)
    if not daemons:
        return f"no testbed daemon matches {f.target}"
    steps = [Step(f.at_s, "signal", d.name, str(impl.start)) for d in daemons]
    if end is not None and impl.end:
        steps += [Step(end, "signal", d.name, str(impl.end)) for d in daemons]
    return steps


def plan_action(bed: BedTopology, topo: Topology, cat: Catalog, a: Action) -> list[Step] | str:
    """The steps that carry out action ``a`` on the testbed (a daemon stop or start, a lifecycle
    call on a guest), or why the host cannot.
    """
    kind, value = a.target.key
    if a.kind in ("guest-start", "guest-stop"):
        proc = cat.lifecycle.start if a.kind == "guest-start" else cat.lifecycle.stop
        return [Step(a.at_s, "guest-call", value, proc, note=a.uri or "")]
    if a.kind == "reset-failed":
        return "reset-failed needs a service manager; this host has none"
    if kind == "unit" and value in bed.sockets:
        return [Step(a.at_s, "none", value, note=f"{a.kind} {value}: {bed.sockets[value]}")]
    daemons = _daemons_for(a.target, topo, bed)
    if not daemons:
        return f"no testbed daemon matches {a.target}"
    steps = []
    for d in daemons:
        if a.kind in ("stop", "restart"):
            steps.append(Step(a.at_s, "daemon-stop", d.name))
        if a.kind in ("start", "restart"):
            steps.append(Step(a.at_s, "daemon-start", d.name))
    return steps


def plan(
    host: RealHost, bed: BedTopology, inputs: Inputs, sc: RealScenario, guests: list[str]
) -> Plan:
    """The plan of scenario ``sc``: its faults' and actions' steps in time order, or everything
    that makes it refused.
    """
    p = Plan(sc)
    if sc.overrides.pool is not None:
        p.refused.append("worker-pool overrides would need a daemon reconfiguration per scenario")
    if sc.overrides.counts:
        p.refused.append("count overrides would need another testbed per scenario")
    topo = inputs.topology.doc
    for f in sc.faults:
        got = plan_fault(host, bed, topo, f, guests)
        p.refused.append(got) if isinstance(got, str) else p.steps.extend(got)
    for a in sc.actions:
        got2 = plan_action(bed, topo, inputs.catalog, a)
        p.refused.append(got2) if isinstance(got2, str) else p.steps.extend(got2)
    p.steps.sort(key=lambda s: s.at_s)
    return p


def probe_of(workload: Workload, sc: RealScenario) -> Probe:
    """The workload's probe with the scenario's probe overrides applied."""
    ov = sc.overrides.probe
    if ov is None:
        return workload.probe
    return workload.probe.model_copy(
        update={k: v for k, v in ov.model_dump().items() if v is not None}
    )


def guest_groups(workload: Workload) -> dict[str, str]:
    """Guest name -> its group, as the engine names guests (``<group>-<i>`` when count > 1)."""
    out = {}
    for g in workload.guests:
        for name in [g.name] if g.count == 1 else [f"{g.name}-{i}" for i in range(g.count)]:
            out[name] = g.name
    return out


def workload_guests(workload: Workload) -> list[str]:
    """Names of the guests the workload has running, as the engine names them."""
    running = {g.name for g in workload.guests if g.running}
    return [name for name, group in guest_groups(workload).items() if group in running]
