"""Static blast radius: which guests and guest operations a fault can reach.

Built on the dependency graph of :mod:`sim.static.depgraph` (``build_graph`` is re-exported here).
A fault is placed on *seed* nodes and propagates against the "depends on" edges, to every
node that depends on a faulted one.  Two modes:

``crash`` (fail fast)
    the target fails and every call into it fails at once: propagation along hard edges
    only.  A crash of a driver or procedure is the crash of the daemon hosting it.  A nested
    call made with ``on_error: ignore`` does not propagate a failure.
``hang`` (fail slow)
    the target stops answering: callers wait, so propagation also follows soft *blocking*
    edges (an ignored nested call still blocks while it hangs).  Waiting callers hold their
    worker (:class:`sim.static.depgraph.Hold`): a server is *exhausted* when the callers that can
    hold its workers while waiting on a blocked node can have at least ``max_workers``
    calls in flight (a per-call client has no bound); everything needing that server is
    then blocked too, iterated to a fixed point.  A driver hang thus reaches every
    procedure served by the daemons whose workers pile up on it (its host's, and a
    forwarding daemon's), not a daemon's other drivers through the process.

Both are conservative upper bounds (every worker that *can* be held is assumed held, with
unlimited time): the engine's dynamic blast radius for the same single fault must never
exceed them.  ``lives`` are the
guests whose life is at risk: their reconnect operation fails (or the guest itself is the
target); a hang leaves a guest's reconnect waiting, counted as failing once it times out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import networkx as nx

from sim.model.checks import resolve_target
from sim.model.resolved import System, WorkloadModel
from sim.schema.experiment import Fault, Target
from sim.schema.topology import ServiceUnit
from sim.static.depgraph import (
    OPS,
    build_graph,
    daemon_id,
    driver_id,
    guest_id,
    object_id,
    op_id,
    proc_id,
    unit_id,
)
from sim.static.propagation import blocking, dependents, exhaust, hard

__all__ = [
    "OPS",
    "Analysis",
    "Cycle",
    "OpSets",
    "Reach",
    "Spof",
    "TargetReach",
    "analyze",
    "build_graph",
    "reach",
    "reach_for_fault",
]

Mode = Literal["crash", "hang"]
TARGET_KINDS = tuple(Target.model_fields)
INFRA = ("unit", "daemon", "server", "driver")
SPOF_KINDS = ("daemon", "unit", "server", "driver", "proc", "object")


@dataclass(frozen=True)
class OpSets:
    """Guests whose operation of each kind a fault reaches (sorted names)."""

    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    manage: tuple[str, ...] = ()
    reconnect: tuple[str, ...] = ()

    def of(self, op: str) -> tuple[str, ...]:
        """The guests whose ``op`` operation (one of :data:`OPS`) is reached."""
        ops: tuple[str, ...] = getattr(self, op)
        return ops


@dataclass(frozen=True)
class Reach:
    """What one fault reaches in one topology.

    Attributes
    ----------
    target : the fault target as ``kind:name`` (``driver:NAME``)
    mode : ``crash`` or ``hang`` (module docstring)
    seeds : graph nodes the fault is placed on
    guests : guests with at least one operation reached, or whose life is at risk
    ops : guests reached, per operation (for a hang, with worker pools exhausted)
    direct : for a hang, the operations that wait on the target itself, before any pool is
        exhausted; for a crash, the same as ``ops``
    lives : guests whose life is at risk (reconnect reached)
    exhausted : servers whose worker pool a hang can exhaust
    exhausted_by : the callers (hold sources) whose waiting calls exhaust them
    components : units, daemons, servers and drivers reached
    clients : workload clients with at least one call reached
    nodes : every node reached (for drawing; not in :meth:`to_dict`)
    """

    target: str
    mode: str
    seeds: tuple[str, ...]
    guests: tuple[str, ...]
    ops: OpSets
    direct: OpSets
    lives: tuple[str, ...]
    exhausted: tuple[str, ...]
    exhausted_by: tuple[str, ...]
    components: tuple[str, ...]
    clients: tuple[str, ...]
    nodes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The reach as plain data, without ``nodes``."""
        out = asdict(self)
        del out["nodes"]
        return out


@dataclass(frozen=True)
class TargetReach:
    """A daemon or driver with its reach under a crash and under a hang."""

    kind: str
    name: str
    resolves_to: tuple[str, ...]
    crash: Reach
    hang: Reach


@dataclass(frozen=True)
class Spof:
    """A node whose failure alone makes ``guests`` unmanageable (``all_guests``: every one)."""

    node: str
    kind: str
    guests: tuple[str, ...]
    all_guests: bool


@dataclass(frozen=True)
class Cycle:
    """A cycle among units: ``requirement`` (Requires=/BindsTo=/Wants=, socket activation)
    or ``ordering`` (After=/Before=)."""

    kind: str
    units: tuple[str, ...]


@dataclass(frozen=True)
class Analysis:
    """The static analysis of one topology under one workload."""

    system: str
    workload: str
    guests: tuple[str, ...]
    groups: dict[str, tuple[str, ...]]
    daemons: tuple[TargetReach, ...]
    drivers: tuple[TargetReach, ...]
    spofs: tuple[Spof, ...]
    cycles: tuple[Cycle, ...]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The analysis as plain data, each target's crash and hang reach without ``nodes``."""
        out = asdict(self)
        for key in ("daemons", "drivers"):
            for row, tr in zip(out[key], getattr(self, key), strict=True):
                row["crash"] = tr.crash.to_dict()
                row["hang"] = tr.hang.to_dict()
        return out

    def to_json(self) -> str:
        """The analysis as JSON text (indented, keys sorted: stable across runs)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# -- propagation ---------------------------------------------------------------------------

# -- targets -------------------------------------------------------------------------------


def _check_target(system: System, workload: WorkloadModel, kind: str, name: str) -> list[str]:
    if kind not in TARGET_KINDS:
        raise ValueError(f"unknown target kind {kind!r}: use one of {', '.join(TARGET_KINDS)}")
    resolved = resolve_target(system, workload, kind, name)
    if not resolved:
        raise ValueError(f"target {kind} {name!r} does not resolve in topology {system.name!r}")
    return resolved


def _seeds(
    system: System,
    workload: WorkloadModel,
    kind: str,
    name: str,
    mode: Mode,
    scope: str | None = None,
) -> list[str]:
    """Graph nodes a fault on ``kind:name`` is placed on."""
    resolved = _check_target(system, workload, kind, name)
    if kind == "guest":
        return [guest_id(name)]
    if kind == "group":
        return [guest_id(g) for g in resolved]
    if kind == "object":
        return [object_id(name)]
    if kind == "unit":
        unit = system.units[name]
        daemon = unit.daemon if isinstance(unit, ServiceUnit) else None
        return [unit_id(name)] + ([daemon_id(daemon)] if mode == "hang" and daemon else [])
    if mode == "crash" or scope == "process":
        return [daemon_id(d) for d in resolved]
    if kind == "driver":
        return [driver_id(name)]
    if kind == "procedure":
        return [proc_id(name)]
    if scope == "driver":
        return [driver_id(drv) for d in resolved for drv in system.daemons[d].drivers]
    return [daemon_id(d) for d in resolved]


def _opsets(graph: nx.DiGraph, nodes: Iterable[str]) -> OpSets:
    ops: dict[str, set[str]] = {op: set() for op in OPS}
    for n in nodes:
        attrs = graph.nodes[n]
        if attrs["kind"] == "op":
            ops[attrs["op"]].add(attrs["guest"])
    return OpSets(**{op: tuple(sorted(ops[op])) for op in OPS})


def _reach(
    graph: nx.DiGraph, target: str, mode: Mode, seeds: list[str], guest_target: str | None
) -> Reach:
    if mode == "crash":
        failed = dependents(graph, seeds, hard)
        touched, direct, exhausted, by = failed, failed, set[str](), set[str]()
    else:
        direct = dependents(graph, seeds, blocking)
        touched, exhausted, by = exhaust(graph, set(seeds))
        failed = dependents(graph, set(seeds) | exhausted, hard)
    nodes = graph.nodes
    ops = _opsets(graph, touched)
    lives = {nodes[n]["guest"] for n in failed if nodes[n].get("op") == "reconnect"}
    if guest_target is not None:
        lives.add(guest_target)
    guests = lives.union(*(ops.of(op) for op in OPS))
    return Reach(
        target=target,
        mode=mode,
        seeds=tuple(sorted(s for s in seeds if s in graph)),
        guests=tuple(sorted(guests)),
        ops=ops,
        direct=_opsets(graph, direct),
        lives=tuple(sorted(lives)),
        exhausted=tuple(sorted(exhausted)),
        exhausted_by=tuple(sorted(by)),
        components=tuple(sorted(n for n in touched if nodes[n]["kind"] in INFRA)),
        clients=tuple(sorted(nodes[n]["name"] for n in touched if nodes[n]["kind"] == "client")),
        nodes=tuple(sorted(touched)),
    )


def reach(
    system: System,
    workload: WorkloadModel,
    target_kind: str,
    target_name: str,
    mode: Mode = "crash",
    *,
    scope: str | None = None,
    graph: nx.DiGraph | None = None,
) -> Reach:
    """Which guests and guest operations a fault on one target reaches.

    Parameters
    ----------
    target_kind, target_name : a fault target as in :class:`sim.schema.experiment.Target`
        (``daemon``, ``unit``, ``driver``, ``role``, ``procedure``, ``object``, ``guest``)
    mode : ``crash`` or ``hang`` (module docstring)
    scope : for a hang, ``process`` hangs the daemon(s) the target resolves to; ``driver``
        (the default for driver and procedure targets) hangs only the driver or procedure
    graph : a graph from :func:`build_graph` for the same system and workload (reused)

    Raises
    ------
    ValueError
        the target kind is unknown or the target does not resolve in this topology
    """
    g = build_graph(system, workload) if graph is None else graph
    seeds = _seeds(system, workload, target_kind, target_name, mode, scope)
    guest = target_name if target_kind == "guest" else None
    return _reach(g, f"{target_kind}:{target_name}", mode, seeds, guest)


def reach_for_fault(
    system: System, workload: WorkloadModel, fault: Fault, graph: nx.DiGraph | None = None
) -> Reach:
    """The static bound for one experiment fault: crash, crash-loop and guest-crash fail
    fast; hang and slow are hangs (a slow target is bounded by a hung one)."""
    kind, name = fault.target.key
    mode: Mode = "hang" if fault.kind in ("hang", "slow", "guest-hang") else "crash"
    return reach(system, workload, kind, name, mode, scope=fault.scope, graph=graph)


# -- whole-system analysis -----------------------------------------------------------------


def spofs(graph: nx.DiGraph, guests: Iterable[str]) -> tuple[Spof, ...]:
    """Single points of failure of guest manageability.

    Every hard edge is a requirement (all of a node's hard dependencies must hold), and the
    only alternatives in the model, route fallbacks, are resolved when the graph is built.
    Dominators and articulation points find the vertices on *every path*, the right notion
    when paths are alternatives (OR); with conjunctive (AND) dependencies they would miss
    most culprits (the procedure, the driver).  So a node is a single point of failure for
    guest X exactly when it is a hard descendant of ``guest:X:manage``: its failure alone
    breaks X's management.  Guest and operation nodes themselves are left out.
    """
    names = sorted(guests)
    hard = nx.subgraph_view(graph, filter_edge=lambda a, b: graph.edges[a, b]["strength"] == "hard")
    broken: dict[str, set[str]] = {}
    for g in names:
        for node in nx.descendants(hard, op_id(g, "manage")):
            if graph.nodes[node]["kind"] in SPOF_KINDS:
                broken.setdefault(node, set()).add(g)
    rank = {k: i for i, k in enumerate(SPOF_KINDS)}
    out = [
        Spof(n, graph.nodes[n]["kind"], tuple(sorted(gs)), len(gs) == len(names))
        for n, gs in broken.items()
    ]
    return tuple(sorted(out, key=lambda s: (-len(s.guests), rank[s.kind], s.node)))


def _canonical(cycle: list[str]) -> tuple[str, ...]:
    i = cycle.index(min(cycle))
    return tuple(cycle[i:] + cycle[:i])


def unit_cycles(system: System) -> tuple[Cycle, ...]:
    """Requirement and ordering cycles among the topology's units (sorted)."""
    req: nx.DiGraph = nx.DiGraph()
    order: nx.DiGraph = nx.DiGraph()
    for unit in system.topology.doc.units:
        for other in (*unit.requires, *unit.binds_to, *unit.wants):
            req.add_edge(unit.name, other)
        if unit.type == "socket":
            req.add_edge(unit.service, unit.name)
        for other in unit.after:
            order.add_edge(unit.name, other)
        for other in unit.before:
            order.add_edge(other, unit.name)
    out = [
        Cycle(kind, _canonical(c))
        for kind, g in (("requirement", req), ("ordering", order))
        for c in nx.simple_cycles(g)
    ]
    return tuple(sorted(out, key=lambda c: (c.kind, c.units)))


def _target_reach(
    system: System, workload: WorkloadModel, graph: nx.DiGraph, kind: str, name: str
) -> TargetReach:
    resolved = tuple(resolve_target(system, workload, kind, name))
    crash = reach(system, workload, kind, name, "crash", graph=graph)
    hang = reach(system, workload, kind, name, "hang", graph=graph)
    return TargetReach(kind, name, resolved, crash, hang)


def analyze(system: System, workload: WorkloadModel) -> Analysis:
    """Reach of every daemon and every hosted driver, SPOFs, unit cycles and model notes."""
    graph = build_graph(system, workload)
    groups: dict[str, list[str]] = {}
    for g in workload.guests:
        groups.setdefault(g.group, []).append(g.name)
    guests = tuple(g.name for g in workload.guests)
    daemons = [_target_reach(system, workload, graph, "daemon", d) for d in sorted(system.daemons)]
    drivers = [_target_reach(system, workload, graph, "driver", d) for d in sorted(system.host_of)]
    return Analysis(
        system=system.name,
        workload=workload.name,
        guests=guests,
        groups={k: tuple(v) for k, v in groups.items()},
        daemons=tuple(daemons),
        drivers=tuple(drivers),
        spofs=spofs(graph, guests),
        cycles=unit_cycles(system),
        notes=tuple(graph.graph["notes"]),
    )


def highlight(
    system: System, workload: WorkloadModel, spec: str, graph: nx.DiGraph, mode: Mode = "crash"
) -> Reach:
    """Reach of a ``kind:name`` target string (as the CLI's ``--highlight`` takes it)."""
    kind, sep, name = spec.partition(":")
    if not sep or not name:
        raise ValueError(f"target must look like KIND:NAME (e.g. driver:NAME), got {spec!r}")
    return reach(system, workload, kind, name, mode, graph=graph)
