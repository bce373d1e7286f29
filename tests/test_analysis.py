"""Static blast-radius analysis: expectations derived from the model data, never hard-coded.

The oracle here walks the catalog and topology directly (routes, hosting, nested calls with
the guest's refs) and compares with what :mod:`sim.static.analysis` finds on its graph.
"""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest

from sim.model.load import load_experiment, load_system, load_workload
from sim.model.loader import Loaded
from sim.model.resolved import GuestSpec, System, WorkloadModel
from sim.model.routing import live_units, resolve_route
from sim.static.analysis import (
    OPS,
    analyze,
    build_graph,
    reach,
    reach_for_fault,
    spofs,
    unit_cycles,
)
from sim.static.depgraph import holds_of, sources_of
from sim.static.dot import Highlight, collapse_guests, to_dot

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGIES = sorted((ROOT / "models" / "libvirt").glob("*.yaml"))
TOPOLOGIES = [p for p in TOPOLOGIES if "kind: topology" in p.read_text()]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))


@pytest.fixture(scope="module")
def workload() -> WorkloadModel:
    return load_workload(ROOT / "models" / "workloads" / "virt-host.yaml")


@pytest.fixture(scope="module", params=[p.stem for p in TOPOLOGIES])
def system(request: pytest.FixtureRequest) -> System:
    return load_system(ROOT / "models" / "libvirt" / f"{request.param}.yaml")


@pytest.fixture(scope="module")
def graph(system: System, workload: WorkloadModel) -> nx.DiGraph:
    return build_graph(system, workload)


def all_guests(workload: WorkloadModel) -> set[str]:
    return {g.name for g in workload.guests}


def entry_daemon(system: System, uri: str) -> str:
    """Oracle: the daemon behind the first route path whose socket the preset enables."""
    for path, daemon in system.candidates(uri):
        if system.socket_of_path[path] in system.enabled:
            return daemon
    raise AssertionError(f"no enabled socket for {uri}")


def call_daemons(
    system: System, workload: WorkloadModel, proc: str, refs: dict[str, tuple[str, ...]]
) -> set[str]:
    """Oracle: daemons a call of ``proc`` needs, following non-ignored nested calls."""
    p = system.procedures[proc]
    out = {system.host_of[p.driver]}
    for nc in p.calls:
        if nc.on_error == "ignore":
            continue
        if nc.for_each is None:
            out |= call_daemons(system, workload, nc.procedure, refs)
        for obj in refs.get(nc.for_each or "", ()):
            out |= call_daemons(system, workload, nc.procedure, workload.objects[obj].refs)
    return out


def probe_path(system: System, workload: WorkloadModel, guest: GuestSpec) -> set[str]:
    probe = workload.probe
    entry = entry_daemon(system, probe.uri)
    return {entry} | call_daemons(system, workload, probe.procedure, guest.refs)


def guests_with_ref(workload: WorkloadModel, kind: str) -> set[str]:
    return {g.name for g in workload.guests if g.refs.get(kind)}


# -- graph ---------------------------------------------------------------------------------


def test_graph_has_every_guest_operation(graph: nx.DiGraph, workload: WorkloadModel) -> None:
    for g in workload.guests:
        assert graph.nodes[f"guest:{g.name}"]["kind"] == "guest"
        for op in OPS:
            assert graph.nodes[f"guest:{g.name}:{op}"]["op"] == op


def test_driver_depends_on_its_host_and_daemon_on_its_unit(
    graph: nx.DiGraph, system: System
) -> None:
    for drv, host in system.host_of.items():
        assert graph.has_edge(f"driver:{drv}", f"daemon:{host}")
    for d in system.daemons.values():
        assert graph.edges[f"daemon:{d.name}", f"unit:{d.unit}"]["strength"] == "hard"


def test_service_wants_is_soft_and_never_blocks(graph: nx.DiGraph, system: System) -> None:
    supervised = system.topology.doc.supervisor == "systemd"
    for unit in system.topology.doc.units:
        for other in unit.wants:
            edge = (f"unit:{unit.name}", f"unit:{other}")
            if not supervised:  # no service manager: Wants= means nothing
                assert not graph.has_edge(*edge)
                continue
            attrs = graph.edges[edge]
            assert (attrs["strength"], attrs["blocking"]) == ("soft", False)


def test_ignored_nested_calls_are_soft_edges(
    graph: nx.DiGraph, system: System, workload: WorkloadModel
) -> None:
    """A procedure reached only through ``on_error: ignore`` is a soft, blocking edge."""
    stop = system.procedures[system.catalog.doc.lifecycle.stop]
    ignored = {nc.procedure for nc in stop.calls if nc.on_error == "ignore"}
    hard = {nc.procedure for nc in stop.calls if nc.on_error == "fail"}
    for g in workload.guests:
        for nc in stop.calls:
            if nc.procedure in ignored - hard and g.refs.get(nc.for_each or ""):
                attrs = graph.edges[f"guest:{g.name}:stop", f"proc:{nc.procedure}"]
                assert (attrs["strength"], attrs["blocking"]) == ("soft", True)


def test_probe_route_uses_an_enabled_socket(system: System, workload: WorkloadModel) -> None:
    hop = resolve_route(system, workload.probe.uri, live_units(system))
    assert hop is not None
    assert hop.daemon == entry_daemon(system, workload.probe.uri)


def test_forwarded_client_calls_hold_the_entry_daemons_worker(
    graph: nx.DiGraph, system: System, workload: WorkloadModel
) -> None:
    """A client call whose URI reaches a daemon not hosting the driver is forwarded, and the
    entry daemon's worker waits on the hosting daemon's server."""
    for c in workload.workload.doc.clients:
        for spec in workload.profiles[c.profile].calls:
            entry = entry_daemon(system, spec.uri)
            host = system.host_of[system.procedures[spec.procedure].driver]
            if entry == host:
                continue
            holds = [
                h
                for h in holds_of(graph)
                if h.ctx == f"client:{c.name}" and h.server.startswith(f"server:{entry}/")
            ]
            assert any(f"proc:{spec.procedure}" in h.waits for h in holds)
            assert any(any(w.startswith(f"server:{host}/") for w in h.waits) for h in holds)


# -- reach: crash --------------------------------------------------------------------------


def test_daemon_crash_reaches_manage_exactly_on_probe_path(
    system: System, workload: WorkloadModel, graph: nx.DiGraph
) -> None:
    for daemon in system.daemons:
        r = reach(system, workload, "daemon", daemon, graph=graph)
        expected = {g.name for g in workload.guests if daemon in probe_path(system, workload, g)}
        assert set(r.ops.manage) == expected, daemon


def test_storage_host_reaches_reconnect_of_guests_with_pools(
    system: System, workload: WorkloadModel, graph: nx.DiGraph
) -> None:
    host = system.host_of[system.object_kinds["pool"].driver]
    r = reach(system, workload, "daemon", host, graph=graph)
    pooled = guests_with_ref(workload, "pool")
    assert pooled
    assert pooled <= set(r.ops.reconnect)
    assert pooled <= set(r.lives)


def test_reconnect_reach_follows_non_ignored_nested_calls(
    system: System, workload: WorkloadModel, graph: nx.DiGraph
) -> None:
    """lives at risk under a daemon crash = guests whose reconnect needs that daemon."""
    for daemon in system.daemons:
        r = reach(system, workload, "daemon", daemon, graph=graph)
        expected = set()
        for g in workload.guests:
            recon = system.drivers[g.driver].reconnect_procedure
            assert recon is not None
            if daemon in call_daemons(system, workload, recon, g.refs):
                expected.add(g.name)
        assert set(r.lives) == expected, daemon


def test_driver_crash_is_its_host_crash(
    system: System, workload: WorkloadModel, graph: nx.DiGraph
) -> None:
    for drv, host in system.host_of.items():
        by_driver = reach(system, workload, "driver", drv, graph=graph)
        by_host = reach(system, workload, "daemon", host, graph=graph)
        assert by_driver.ops == by_host.ops
        assert by_driver.lives == by_host.lives


def test_nodedev_host_reaches_manage_only_when_it_hosts_the_probe(
    system: System, workload: WorkloadModel, graph: nx.DiGraph
) -> None:
    """Monolithic: the nodedev host is the guests' host, every manage op is reached.
    Modular: it is another daemon, and no manage op is reached by its crash."""
    nodedev_host = system.host_of["nodedev"]
    probe_host = system.host_of[system.procedures[workload.probe.procedure].driver]
    r = reach(system, workload, "driver", "nodedev", graph=graph)
    if nodedev_host == probe_host:
        assert set(r.ops.manage) == all_guests(workload)
    else:
        assert r.ops.manage == ()


def test_some_daemon_reaches_every_manage_op(
    system: System, workload: WorkloadModel, graph: nx.DiGraph
) -> None:
    reached = [
        d
        for d in system.daemons
        if set(reach(system, workload, "daemon", d, graph=graph).ops.manage) == all_guests(workload)
    ]
    assert reached == [entry_daemon(system, workload.probe.uri)]


def op_path(system: System, workload: WorkloadModel, g: GuestSpec, op: str) -> set[str]:
    """Oracle: daemons one guest operation needs (entry daemon, host, nested RPCs)."""
    driver = system.drivers[g.driver]
    if op == "reconnect":
        return call_daemons(system, workload, driver.reconnect_procedure or "", g.refs)
    if op == "manage":
        return probe_path(system, workload, g)
    proc = getattr(system.catalog.doc.lifecycle, op)
    return {entry_daemon(system, driver.uri)} | call_daemons(system, workload, proc, g.refs)


def test_daemon_crash_reaches_exactly_the_operations_that_need_it(
    system: System, workload: WorkloadModel, graph: nx.DiGraph
) -> None:
    for d in system.daemons:
        r = reach(system, workload, "daemon", d, graph=graph)
        for op in OPS:
            expected = {g.name for g in workload.guests if d in op_path(system, workload, g, op)}
            assert set(r.ops.of(op)) == expected, (d, op)


def test_split_secondary_daemons_never_reach_management(
    system: System, workload: WorkloadModel, graph: nx.DiGraph
) -> None:
    """A driver the guests refer to reaches every manage op when it shares the guests'
    daemon (monolithic), and none when it runs in its own daemon (modular)."""
    guest_hosts = {system.host_of[g.driver] for g in workload.guests}
    for kind in sorted({k for g in workload.guests for k in g.refs}):
        drv = system.object_kinds[kind].driver
        manage = set(reach(system, workload, "driver", drv, graph=graph).ops.manage)
        shared = system.host_of[drv] in guest_hosts
        assert manage == (all_guests(workload) if shared else set()), kind


# -- reach: hang ---------------------------------------------------------------------------


def test_hang_of_a_daemon_reaches_at_least_its_crash(
    system: System, workload: WorkloadModel, graph: nx.DiGraph
) -> None:
    for d in system.daemons:
        crash = reach(system, workload, "daemon", d, "crash", graph=graph)
        hang = reach(system, workload, "daemon", d, "hang", graph=graph)
        for op in OPS:
            assert set(crash.ops.of(op)) <= set(hang.ops.of(op))
            assert set(hang.direct.of(op)) <= set(hang.ops.of(op))


def test_ignored_call_hang_blocks_but_does_not_kill(
    system: System, workload: WorkloadModel, graph: nx.DiGraph
) -> None:
    """A hang behind an ``on_error: ignore`` reconnect step blocks the reconnect; a crash of
    that daemon (when it is not the guests' own) costs no life."""
    for g in workload.guests:
        recon = system.procedures[system.drivers[g.driver].reconnect_procedure or ""]
        fatal = {system.procedures[c.procedure].driver for c in recon.calls if c.on_error == "fail"}
        for nc in recon.calls:
            drv = system.procedures[nc.procedure].driver
            if nc.on_error != "ignore" or drv in fatal or not g.refs.get(nc.for_each or ""):
                continue
            hang = reach(system, workload, "driver", drv, "hang", graph=graph)
            assert g.name in hang.direct.reconnect
            if system.host_of[drv] != system.host_of[g.driver]:
                crash = reach(system, workload, "driver", drv, "crash", graph=graph)
                assert g.name not in crash.lives
                assert g.name not in crash.ops.reconnect


def _without_clients(workload: WorkloadModel) -> WorkloadModel:
    doc = workload.workload.doc.model_copy(update={"clients": []})
    return WorkloadModel(Loaded(doc, workload.workload.src), workload.catalog, workload.imports)


def test_pool_exhaustion_comes_from_clients_forwarding_calls(
    system: System, workload: WorkloadModel, graph: nx.DiGraph
) -> None:
    """A nodedev hang reaches manage ops only through pools exhausted by callers of nodedev
    procedures; without clients nothing waits on it and no manage op is reached."""
    r = reach(system, workload, "driver", "nodedev", "hang", graph=graph)
    callers = {
        f"client:{c.name}"
        for c in workload.workload.doc.clients
        for spec in workload.profiles[c.profile].calls
        if system.procedures[spec.procedure].driver == "nodedev"
    }
    assert set(r.exhausted_by) <= callers
    assert r.direct.manage == ()
    quiet = _without_clients(workload)
    r0 = reach(system, quiet, "driver", "nodedev", "hang")
    assert r0.exhausted == ()
    assert r0.ops.manage == ()


def test_bounded_callers_do_not_exhaust_a_pool(system: System, workload: WorkloadModel) -> None:
    """Without per-call clients, exhaustion needs as many bounded calls as workers."""
    quiet = _without_clients(workload)
    g = build_graph(system, quiet)
    assert all(v is not None for v in sources_of(g).values())
    for d in system.daemons:
        r = reach(system, quiet, "daemon", d, "hang", graph=g)
        for server in r.exhausted:
            waiting = {h.ctx for h in holds_of(g) if h.server == server}
            assert len(waiting) >= g.nodes[server]["max_workers"]


def test_guest_target_reaches_its_own_life_and_operations(
    system: System, workload: WorkloadModel, graph: nx.DiGraph
) -> None:
    g = workload.guests[0].name
    r = reach(system, workload, "guest", g, graph=graph)
    assert r.lives == (g,)
    assert r.guests == (g,)
    assert r.ops.manage == (g,)


def test_unknown_or_unresolved_target_is_a_value_error(
    system: System, workload: WorkloadModel, graph: nx.DiGraph
) -> None:
    with pytest.raises(ValueError, match="unknown target kind"):
        reach(system, workload, "planet", "x", graph=graph)
    with pytest.raises(ValueError, match="does not resolve"):
        reach(system, workload, "driver", "no-such-driver", graph=graph)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_every_shipped_fault_has_a_static_bound(path: Path) -> None:
    model = load_experiment(path)
    for system in model.systems:
        g = build_graph(system, model.workload)
        for sc in model.doc.scenarios:
            for fault in sc.faults:
                r = reach_for_fault(system, model.workload, fault, graph=g)
                assert r.target == str(fault.target)
                assert set(r.lives) <= all_guests(model.workload)


# -- whole analysis ------------------------------------------------------------------------


def test_spofs_are_exactly_the_hard_dependencies_of_management(
    system: System, workload: WorkloadModel, graph: nx.DiGraph
) -> None:
    found = spofs(graph, all_guests(workload))
    by_node = {s.node: s for s in found}
    for d in system.daemons:
        manage = set(reach(system, workload, "daemon", d, graph=graph).ops.manage)
        if manage:
            assert set(by_node[f"daemon:{d}"].guests) == manage
        else:
            assert f"daemon:{d}" not in by_node
    entry = entry_daemon(system, workload.probe.uri)
    assert by_node[f"daemon:{entry}"].all_guests


def test_no_unit_cycles_in_shipped_models(system: System) -> None:
    assert unit_cycles(system) == ()


def test_requirement_cycle_is_found(system: System) -> None:
    units = list(system.topology.doc.units)
    a, b = units[0], units[1]
    units[0] = a.model_copy(update={"requires": [*a.requires, b.name]})
    units[1] = b.model_copy(update={"wants": [*b.wants, a.name]})
    doc = system.topology.doc.model_copy(update={"units": units})
    looped = System(system.catalog, Loaded(doc, system.topology.src))
    cycles = unit_cycles(looped)
    assert [c.kind for c in cycles] == ["requirement"]
    assert set(cycles[0].units) == {a.name, b.name}
    assert cycles[0].units[0] == min(a.name, b.name)


def test_analysis_is_deterministic_and_json(system: System, workload: WorkloadModel) -> None:
    first = analyze(system, workload)
    again = analyze(system, workload)
    assert first.to_json() == again.to_json()
    data = json.loads(first.to_json())
    assert {r["name"] for r in data["daemons"]} == set(system.daemons)
    assert {r["name"] for r in data["drivers"]} == set(system.host_of)
    assert set(data["daemons"][0]["crash"]["ops"]) == set(OPS)
    assert "nodes" not in data["daemons"][0]["crash"]


def test_dot_names_every_node_and_collapses_guest_groups(
    graph: nx.DiGraph, workload: WorkloadModel
) -> None:
    text = to_dot(graph, "t")
    for node in graph:
        assert f'"{node}"' in text
    small, mapping = collapse_guests(graph)
    groups = {g.group for g in workload.guests}
    assert sum(1 for n in small if small.nodes[n]["kind"] == "guest") == len(groups)
    hl = Highlight(reached=frozenset({f"guest:{workload.guests[0].name}"})).mapped(mapping)
    assert hl.reached == {f"guests:{workload.guests[0].group}"}
    assert 'fillcolor="orange"' in to_dot(small, "t", hl)
