"""Helpers for the engine trace tests: fixture models, variants, scheduled calls, traces.

The fixture models live in ``tests/fixtures/engine/``: a catalog with a guest driver ``hv``
and an auxiliary driver ``aux``, a topology with ``daemon-a`` (hv, enabled at boot) and
``daemon-b`` (aux, socket-activated only), and a workload with a running guest ``g1`` and a
stopped guest ``g2`` that needs ``aux`` to start.  Every service time is constant, so every
event time in a trace is exact.  Variants of the topology (unit directives, preset, routes)
are built in Python by :func:`variant` and validated like a loaded file.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from functools import cache
from pathlib import Path
from typing import Any

from sim.engine.clients import Session
from sim.engine.simulation import Simulation
from sim.engine.trace import Collector
from sim.model.checks import check_topology, check_workload
from sim.model.load import load_system, load_workload
from sim.model.loader import Loaded
from sim.model.resolved import System, WorkloadModel
from sim.schema import Topology, Workload
from sim.schema.experiment import Scenario

ENGINE_FIXTURES = Path(__file__).parent / "fixtures" / "engine"
Event = tuple[float, str, str]


@cache
def base_system() -> System:
    return load_system(ENGINE_FIXTURES / "topology.yaml")


@cache
def base_workload() -> WorkloadModel:
    return load_workload(ENGINE_FIXTURES / "workload.yaml")


def variant(
    system: System | None = None,
    *,
    units: dict[str, dict[str, Any]] | None = None,
    daemons: dict[str, dict[str, Any]] | None = None,
    routes: dict[str, list[str]] | None = None,
    preset: list[tuple[str, str]] | None = None,
    topology: dict[str, Any] | None = None,
) -> System:
    """A copy of the fixture topology with some fields replaced (``topology``: top-level
    fields such as ``supervisor``); validated and checked."""
    system = system or base_system()
    data = system.topology.doc.model_dump()
    data.update(topology or {})
    for unit in data["units"]:
        unit.update((units or {}).get(unit["name"], {}))
    for daemon in data["daemons"]:
        daemon.update((daemons or {}).get(daemon["name"], {}))
    for route in data["routes"]:
        route["sockets"] = (routes or {}).get(route["uri"], route["sockets"])
    if preset is not None:
        data["preset"]["rules"] = [{"action": a, "pattern": p} for a, p in preset]
    doc = Topology.model_validate(data)
    out = System(system.catalog, Loaded(doc, system.topology.src))
    issues = check_topology(out)
    assert not issues, issues
    return out


def workload_variant(
    guests: dict[str, dict[str, Any]] | None = None, host: dict[str, Any] | None = None
) -> WorkloadModel:
    """A copy of the fixture workload with some guest groups' fields replaced, and with a
    ``host`` section (cores, guest_scope) when given."""
    wl = base_workload()
    data = wl.workload.doc.model_dump()
    for guest in data["guests"]:
        guest.update((guests or {}).get(guest["name"], {}))
    if host is not None:
        data["host"] = {"assumption": "test", **host}
    doc = Workload.model_validate(data)
    out = WorkloadModel(Loaded(doc, wl.workload.src), wl.catalog, wl.imports)
    issues = check_workload(out)
    assert not issues, issues
    return out


def scenario(
    faults: list[dict[str, Any]] | None = None,
    actions: list[dict[str, Any]] | None = None,
    clients: list[dict[str, Any]] | None = None,
) -> Scenario:
    return Scenario.model_validate(
        {"name": "test", "faults": faults or [], "actions": actions or [], "clients": clients or []}
    )


def make_sim(
    system: System | None = None,
    workload: WorkloadModel | None = None,
    scenario: Scenario | None = None,
    start: str = "steady",
) -> Simulation:
    return Simulation(
        system or base_system(),
        workload or base_workload(),
        scenario,
        seed=0,
        replication=0,
        start=start,
        keep_trace=True,
    )


def run(sim: Simulation, until: float) -> Collector:
    """Run ``sim``; the fixture's probes must stay out of the window (huge period)."""
    assert min(sim.probes.phase.values(), default=until) >= until, "a probe would fire"
    return sim.run(until)


class Call:
    """The outcome of one scheduled client call: ``ok``, ``error``, ``t_end``."""

    def __init__(self) -> None:
        self.done = False
        self.ok: bool | None = None
        self.error = ""
        self.t_end: float | None = None

    def __repr__(self) -> str:
        return f"Call(done={self.done}, ok={self.ok}, error={self.error!r}, t_end={self.t_end})"


def call_at(
    sim: Simulation,
    t: float,
    uri: str,
    procedure: str,
    target: str | None = None,
    *,
    session: Session | None = None,
    per_call: bool = True,
    timeout_s: float | None = None,
    keepalive_s: float | None = None,
    label: str = "client",
    before: tuple[str, ...] = (),
) -> Call:
    """Make one client call at time ``t`` (a fresh connection unless ``session`` is given
    with ``per_call=False``, then the session's cached connection is reused); with
    ``before``, a command: those calls first, on the same connection."""
    out = Call()
    sess = session or Session(sim, label, timeout_s, keepalive_s)

    def proc() -> Generator[Any, Any, None]:
        yield sim.env.timeout(t)
        procs = [sim.procs[name] for name in (*before, procedure)]
        result = yield from sess.command(uri, procs, target, per_call)
        assert result is not None
        out.ok, out.error = result
        out.t_end = sim.env.now
        out.done = True

    sim.env.process(proc())
    return out


def observe(sim: Simulation, t: float, fn: Callable[[], Any]) -> list[Any]:
    """``fn()`` evaluated at time ``t`` (after the events scheduled earlier for ``t``)."""
    out: list[Any] = []

    def proc() -> Generator[Any, Any, None]:
        yield sim.env.timeout(t)
        out.append(fn())

    sim.env.process(proc())
    return out


def trace(
    collector: Collector,
    *subjects: str,
    since: float = 0.0,
    until: float = float("inf"),
) -> list[Event]:
    """The trace as ``(t, subject, what)`` with times rounded to the microsecond, restricted
    to ``subjects`` (all when none given) and to ``since <= t <= until``."""
    return [
        (round(t, 6), subject, what)
        for t, subject, what, _ in collector.events
        if (not subjects or subject in subjects) and since <= t <= until
    ]


def data_of(collector: Collector, subject: str, what: str) -> list[dict[str, Any]]:
    """The data of every ``(subject, what)`` event, in order."""
    return [d for _, s, w, d in collector.events if s == subject and w == what]


def pool(sim: Simulation, daemon: str, server: str = "main") -> Any:
    return sim.daemons[daemon].servers[server].pool
