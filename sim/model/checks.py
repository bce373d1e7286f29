"""Cross-reference rules: what the schema alone cannot check.

Each rule returns :class:`~sim.errors.ConfigIssue` objects pointing at the file, line and
field that break it; the loaders in :mod:`sim.model` collect them all before raising.
"""

from __future__ import annotations

import fnmatch
import graphlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sim.errors import ConfigIssue
from sim.model.loader import Loaded
from sim.schema.catalog import Catalog
from sim.schema.common import MAX_POPULATION
from sim.schema.topology import ServiceUnit, SocketUnit

if TYPE_CHECKING:
    from sim.model.resolved import ExperimentModel, System, WorkloadModel

UNIT_REFS = ("requires", "binds_to", "wants", "after", "before", "conflicts", "also", "wanted_by")


def _duplicates(doc: Loaded[Any], field: str, items: Iterable[Any]) -> list[ConfigIssue]:
    seen: set[str] = set()
    out = []
    for i, item in enumerate(items):
        if item.name in seen:
            out.append(doc.issue((field, i, "name"), f"duplicate name {item.name!r}"))
        seen.add(item.name)
    return out


def check_catalog(cat: Loaded[Catalog]) -> list[ConfigIssue]:
    """The catalog's rules: unique names, known drivers, object kinds and procedures.

    Also: an object lock, a job or monitor work needs a target kind; nested ``calls`` form no cycle;
    the lifecycle procedures exist.
    """
    doc = cat.doc
    out = _duplicates(cat, "drivers", doc.drivers)
    out += _duplicates(cat, "object_kinds", doc.object_kinds)
    out += _duplicates(cat, "procedures", doc.procedures)
    drivers = {d.name for d in doc.drivers}
    kinds = {k.name for k in doc.object_kinds}
    procs = {p.name: p for p in doc.procedures}
    for i, d in enumerate(doc.drivers):
        for kind in d.init_cpu_ms_per_object:
            if kind not in kinds:
                loc: tuple[Any, ...] = ("drivers", i, "init_cpu_ms_per_object", kind)
                out.append(cat.issue(loc, f"unknown object kind {kind!r}"))
        if d.reconnect_procedure and d.reconnect_procedure not in procs:
            loc = ("drivers", i, "reconnect_procedure")
            out.append(cat.issue(loc, f"unknown procedure {d.reconnect_procedure!r}"))
    for i, k in enumerate(doc.object_kinds):
        if k.driver not in drivers:
            out.append(cat.issue(("object_kinds", i, "driver"), f"unknown driver {k.driver!r}"))
    edges: list[tuple[str, str]] = []
    for i, p in enumerate(doc.procedures):
        if p.driver not in drivers:
            out.append(cat.issue(("procedures", i, "driver"), f"unknown driver {p.driver!r}"))
        if p.target is not None and p.target not in kinds:
            out.append(cat.issue(("procedures", i, "target"), f"unknown object kind {p.target!r}"))
        if "object" in p.locks and p.target is None:
            msg = "an 'object' lock needs a target object kind"
            out.append(cat.issue(("procedures", i, "locks"), msg))
        if p.job != "none" and p.target is None:
            msg = "a job is taken on the target object: the procedure needs a target"
            out.append(cat.issue(("procedures", i, "job"), msg))
        if p.monitor and p.target is None:
            msg = "monitor work is done by the target guest: the procedure needs a target"
            out.append(cat.issue(("procedures", i, "monitor"), msg))
        if p.each is not None and p.each.kind not in kinds:
            msg = f"unknown object kind {p.each.kind!r}"
            out.append(cat.issue(("procedures", i, "each", "kind"), msg))
        for j, call in enumerate(p.calls):
            cloc: tuple[Any, ...] = ("procedures", i, "calls", j)
            if call.procedure not in procs:
                out.append(cat.issue((*cloc, "procedure"), f"unknown procedure {call.procedure!r}"))
            else:
                edges.append((p.name, call.procedure))
            if call.for_each is not None and call.for_each not in kinds:
                msg = f"unknown object kind {call.for_each!r}"
                out.append(cat.issue((*cloc, "for_each"), msg))
    for cycle in cycles(edges):
        i = next(i for i, p in enumerate(doc.procedures) if p.name == cycle[0])
        msg = f"nested calls form a cycle: {' -> '.join(cycle)}"
        out.append(cat.issue(("procedures", i, "calls"), msg))
    for what in ("start", "stop"):
        name = getattr(doc.lifecycle, what)
        if name not in procs:
            out.append(cat.issue(("lifecycle", what), f"unknown procedure {name!r}"))
    return out


def _check_unit_refs(system: System) -> list[ConfigIssue]:
    topo = system.topology
    known = set(system.units) | set(topo.doc.external_units)
    out = []
    for i, unit in enumerate(topo.doc.units):
        for attr in UNIT_REFS:
            for j, ref in enumerate(getattr(unit, attr)):
                if ref not in known:
                    msg = f"unit {unit.name!r} refers to unknown unit {ref!r}"
                    out.append(topo.issue(("units", i, attr, j), msg))
        if isinstance(unit, SocketUnit):
            target = system.units.get(unit.service)
            if not isinstance(target, ServiceUnit):
                msg = f"socket {unit.name!r} activates {unit.service!r}, which is not a service"
                out.append(topo.issue(("units", i, "service"), msg))
        if isinstance(unit, ServiceUnit) and unit.daemon is not None:
            daemon = system.daemons.get(unit.daemon)
            if daemon is None:
                out.append(topo.issue(("units", i, "daemon"), f"unknown daemon {unit.daemon!r}"))
            elif daemon.unit != unit.name:
                msg = f"daemon {unit.daemon!r} is run by {daemon.unit!r}, not by {unit.name!r}"
                out.append(topo.issue(("units", i, "daemon"), msg))
    return out


def cycles(edges: list[tuple[str, str]]) -> list[list[str]]:
    """Every simple cycle of the directed graph ``edges``, each as its sorted nodes, sorted.

    An acyclic graph (every valid model) is recognised by the standard library's
    topological sort; networkx, which names the cycles, costs a tenth of a second to import
    and is imported only when there is one."""
    order: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for a, b in edges:
        order.add(b, a)
    try:
        order.prepare()
        return []
    except graphlib.CycleError:
        pass
    import networkx as nx

    return sorted(sorted(c) for c in nx.simple_cycles(nx.DiGraph(edges)))


def _check_ordering(system: System) -> list[ConfigIssue]:
    topo = system.topology
    edges: list[tuple[str, str]] = []
    for unit in topo.doc.units:
        edges += [(other, unit.name) for other in unit.after]
        edges += [(unit.name, other) for other in unit.before]
    out = []
    for cycle in cycles(edges):
        i = next(i for n in cycle for i, u in enumerate(topo.doc.units) if u.name == n)
        msg = f"ordering cycle (After=/Before=) between units {', '.join(cycle)}"
        out.append(topo.issue(("units", i), msg))
    return out


def _check_daemons(system: System) -> list[ConfigIssue]:
    topo = system.topology
    out = _duplicates(topo, "daemons", topo.doc.daemons)
    hosted: dict[str, str] = {}
    for i, d in enumerate(topo.doc.daemons):
        unit = system.units.get(d.unit)
        if not isinstance(unit, ServiceUnit):
            msg = (
                f"daemon {d.name!r} names unit {d.unit!r}, which is not a service in this topology"
            )
            out.append(topo.issue(("daemons", i, "unit"), msg))
        for j, drv in enumerate(d.drivers):
            loc = ("daemons", i, "drivers", j)
            if drv not in system.drivers:
                out.append(topo.issue(loc, f"unknown driver {drv!r} (not in the catalog)"))
            elif drv in hosted:
                msg = f"driver {drv!r} is already hosted by daemon {hosted[drv]!r}"
                out.append(topo.issue(loc, msg))
            hosted.setdefault(drv, d.name)
        for j, server in enumerate(d.servers):
            for k, sock in enumerate(server.sockets):
                sloc: tuple[Any, ...] = ("daemons", i, "servers", j, "sockets", k)
                su = system.units.get(sock)
                if not isinstance(su, SocketUnit):
                    out.append(topo.issue(sloc, f"{sock!r} is not a socket unit of this topology"))
                elif su.service != d.unit:
                    msg = f"socket {sock!r} activates {su.service!r}, not this daemon's {d.unit!r}"
                    out.append(topo.issue(sloc, msg))
        if d.driver_caps is not None:
            for drv in d.driver_caps.max_busy:
                if drv not in system.drivers:
                    cloc: tuple[Any, ...] = ("daemons", i, "driver_caps", "max_busy", drv)
                    out.append(topo.issue(cloc, f"unknown driver {drv!r} (not in the catalog)"))
    used = {p.driver for p in system.catalog.doc.procedures}
    for drv in sorted(used - set(hosted)):
        i = next(i for i, d in enumerate(system.catalog.doc.drivers) if d.name == drv)
        msg = f"driver {drv!r} has procedures but no daemon of topology {system.name!r} hosts it"
        out.append(system.catalog.issue(("drivers", i, "name"), msg))
    return out


def _check_routes(system: System) -> list[ConfigIssue]:
    topo = system.topology
    out = []
    paths: dict[str, str] = {}
    for i, u in enumerate(topo.doc.units):
        if isinstance(u, SocketUnit):
            for j, lst in enumerate(u.listen):
                if lst.path in paths:
                    msg = f"path {lst.path!r} is already listened on by {paths[lst.path]!r}"
                    out.append(topo.issue(("units", i, "listen", j, "path"), msg))
                paths.setdefault(lst.path, u.name)
    uris = set()
    for i, r in enumerate(topo.doc.routes):
        if r.uri in uris:
            out.append(topo.issue(("routes", i, "uri"), f"duplicate route for {r.uri!r}"))
        uris.add(r.uri)
        for j, path in enumerate(r.sockets):
            if path not in paths:
                msg = f"no socket unit listens on {path!r}"
                out.append(topo.issue(("routes", i, "sockets", j), msg))
    for drv in sorted({p.driver for p in system.catalog.doc.procedures}):
        uri = system.drivers[drv].uri if drv in system.drivers else None
        if uri is not None and uri not in uris:
            msg = (
                f"driver {drv!r} is reached through {uri!r}, which has no route in {system.name!r}"
            )
            i = next(i for i, d in enumerate(system.catalog.doc.drivers) if d.name == drv)
            out.append(system.catalog.issue(("drivers", i, "uri"), msg))
    return out


def _check_preset(system: System) -> list[ConfigIssue]:
    topo = system.topology
    out = []
    for i, rule in enumerate(topo.doc.preset.rules):
        literal = not any(c in rule.pattern for c in "*?[")
        if literal and rule.pattern not in system.units:
            msg = f"preset rule names unknown unit {rule.pattern!r}"
            out.append(topo.issue(("preset", "rules", i, "pattern"), msg))
        elif not literal and not fnmatch.filter(system.units, rule.pattern):
            msg = f"preset pattern {rule.pattern!r} matches no unit"
            out.append(topo.issue(("preset", "rules", i, "pattern"), msg))
    return out


def _check_manual_start(system: System) -> list[ConfigIssue]:
    topo, out, seen = system.topology, [], set()
    for j, name in enumerate(topo.doc.manual_start):
        if name not in system.daemons:
            out.append(topo.issue(("manual_start", j), f"unknown daemon {name!r}"))
        elif name in seen:
            out.append(topo.issue(("manual_start", j), f"daemon {name!r} is listed twice"))
        seen.add(name)
    return out


def check_topology(system: System) -> list[ConfigIssue]:
    """The topology's rules: unique units, unit references and ordering, daemons, routes, preset,
    manual start and a known boot target.
    """
    out = _duplicates(system.topology, "units", system.topology.doc.units)
    out += _check_unit_refs(system)
    out += _check_ordering(system)
    out += _check_daemons(system)
    out += _check_routes(system)
    out += _check_preset(system)
    out += _check_manual_start(system)
    if system.topology.doc.boot_target not in system.units:
        msg = f"unknown unit {system.topology.doc.boot_target!r}"
        out.append(system.topology.issue(("boot_target",), msg))
    return out


def _check_refs(
    model: WorkloadModel, loc: tuple[Any, ...], refs: dict[str, list[str]]
) -> list[ConfigIssue]:
    wl, kinds = model.workload, {k.name for k in model.catalog.doc.object_kinds}
    out = []
    for kind, names in refs.items():
        if kind not in kinds:
            out.append(wl.issue((*loc, kind), f"unknown object kind {kind!r}"))
            continue
        for j, name in enumerate(names):
            obj = model.objects.get(name)
            if obj is None or obj.kind != kind:
                out.append(wl.issue((*loc, kind, j), f"no {kind} object named {name!r}"))
    return out


def _check_population(wl: Loaded[Any]) -> list[ConfigIssue]:
    """At most MAX_POPULATION guests and objects in all (checked before expanding them)."""
    out = []
    for what in ("guests", "objects"):
        total = sum(decl.count for decl in getattr(wl.doc, what))
        if total > MAX_POPULATION:
            msg = f"the workload declares {total} {what}, more than {MAX_POPULATION}"
            out.append(wl.issue((what,), msg))
    return out


def check_workload(model: WorkloadModel) -> list[ConfigIssue]:
    """The workload's rules against its catalog and imports.

    A population over the limit is reported alone (nothing else is checked).  Otherwise: unique
    names, known object kinds, guest drivers that host guests, client profiles, commands and
    callable (not internal) procedures in every call and in the probe.
    """
    wl, cat = model.workload, model.catalog.doc
    too_many = _check_population(wl)
    if too_many:
        return too_many
    drivers = {d.name: d for d in cat.drivers}
    procs = {p.name: p for p in cat.procedures}
    kinds = {k.name for k in cat.object_kinds}
    out = _duplicates(wl, "objects", wl.doc.objects) + _duplicates(wl, "guests", wl.doc.guests)
    out += _duplicates(wl, "clients", wl.doc.clients)
    for i, o in enumerate(wl.doc.objects):
        if o.kind not in kinds:
            out.append(wl.issue(("objects", i, "kind"), f"unknown object kind {o.kind!r}"))
        out += _check_refs(model, ("objects", i, "refs"), o.refs)
    for i, g in enumerate(wl.doc.guests):
        drv = drivers.get(g.driver)
        if drv is None or not drv.hosts_guests:
            msg = f"driver {g.driver!r} is not a catalog driver that hosts guests"
            out.append(wl.issue(("guests", i, "driver"), msg))
        out += _check_refs(model, ("guests", i, "refs"), g.refs)
    for i, c in enumerate(wl.doc.clients):
        if c.profile not in model.profiles:
            out.append(wl.issue(("clients", i, "profile"), f"unknown client profile {c.profile!r}"))
    for i, p in enumerate(wl.doc.profiles):
        out += _check_calls(model, wl, ("profiles", i), p.calls, procs)
    for imp in model.imports:
        for i, p in enumerate(imp.doc.profiles):
            out += _check_calls(model, imp, ("profiles", i), p.calls, procs)
    for field, names in (("before", wl.doc.probe.before), ("procedure", [wl.doc.probe.procedure])):
        for name in names:
            probe = procs.get(name)
            if probe is None or probe.internal:
                msg = f"unknown or internal procedure {name!r}"
                out.append(wl.issue(("probe", field), msg))
    return out


def _check_calls(
    model: WorkloadModel, doc: Loaded[Any], loc: tuple[Any, ...], calls: list[Any], procs: Any
) -> list[ConfigIssue]:
    out = []
    for j, call in enumerate(calls):
        here = (*loc, "calls", j)
        if call.command is not None:
            cmd = model.commands.get(call.command)
            if cmd is None:
                out.append(doc.issue((*here, "command"), f"unknown command {call.command!r}"))
            steps = [] if cmd is None else cmd.steps
        else:
            steps = [*call.before, call.procedure]
        for k, name in enumerate(steps):
            proc = procs.get(name)
            if proc is None or proc.internal:
                field = "procedure" if call.command is None and k == len(steps) - 1 else "command"
                if call.command is None and k < len(steps) - 1:
                    field = "before"
                msg = f"unknown or internal procedure {name!r}"
                out.append(doc.issue((*here, field), msg))
        if call.object is not None and call.object not in model.objects:
            out.append(doc.issue((*here, "object"), f"unknown object {call.object!r}"))
        if call.group is not None and call.group not in {g.name for g in model.workload.doc.guests}:
            out.append(doc.issue((*here, "group"), f"unknown guest group {call.group!r}"))
        if call.object_kind is not None and not model.objects_of_kind(call.object_kind):
            msg = f"no object of kind {call.object_kind!r} in the workload"
            out.append(doc.issue((*here, "object_kind"), msg))
    return out


def resolve_target(system: System, model: WorkloadModel, key: str, value: str) -> list[str]:
    """Names a fault target resolves to in one topology (daemons, units, objects ...)."""
    if key == "daemon":
        return [value] if value in system.daemons else []
    if key == "unit":
        return [value] if value in system.units else []
    if key == "driver":
        return [system.host_of[value]] if value in system.host_of else []
    if key == "role":
        return system.daemons_with_role(value)
    if key == "procedure":
        proc = system.procedures.get(value)
        return [system.host_of[proc.driver]] if proc and proc.driver in system.host_of else []
    if key == "object":
        return [value] if value in model.objects else []
    if key == "guest":
        return [value] if any(g.name == value for g in model.guests) else []
    if key == "group":
        return [g.name for g in model.guests if g.group == value]
    raise AssertionError(key)


def check_experiment(model: ExperimentModel) -> list[ConfigIssue]:
    """The experiment's rules across its topologies, workload and expanded scenarios.

    Unique topology and scenario names; every URI the workload calls has a route, and every guest's
    object kinds a hosting daemon, in every topology; every fault and action target resolves in
    every topology; scenario clients, overrides and hypotheses name what exists.
    """
    exp, wl = model.experiment, model.workload
    out = []
    names = [s.name for s in model.systems]
    for i, name in enumerate(names):
        if names.index(name) != i:
            out.append(exp.issue(("topologies", i), f"two topologies are named {name!r}"))
    out += _duplicates(exp, "scenarios", exp.doc.scenarios)
    where = _scenario_locs(model)
    uris: list[tuple[Loaded[Any], tuple[Any, ...], str]] = [
        (wl.workload, ("probe", "uri"), wl.probe.uri)
    ]
    docs: list[Loaded[Any]] = [wl.workload, *wl.imports]
    for doc in docs:
        for i, p in enumerate(doc.doc.profiles):
            uris += [
                (doc, ("profiles", i, "calls", j, "uri"), c.uri) for j, c in enumerate(p.calls)
            ]
    for system in model.systems:
        for doc, loc, uri in uris:
            if uri not in system.routes:
                msg = f"uri {uri!r} has no route in topology {system.name!r}"
                out.append(doc.issue(loc, msg))
        for i, g in enumerate(wl.workload.doc.guests):
            for kind in g.refs:
                owner = system.object_kinds.get(kind)
                if owner is not None and owner.driver not in system.host_of:
                    msg = (
                        f"{kind} objects need driver {owner.driver!r}, "
                        f"hosted by no daemon of {system.name!r}"
                    )
                    out.append(wl.workload.issue(("guests", i, "refs", kind), msg))
        for sc in model.scenarios:
            base = where[sc.name]
            targeted: list[tuple[str, list[Any]]] = [
                ("faults", list(sc.faults)),
                ("actions", list(sc.actions)),
            ]
            for kind, items in targeted:
                for j, item in enumerate(items):
                    key, value = item.target.key
                    if not resolve_target(system, wl, key, value):
                        msg = f"target {key} {value!r} does not resolve in topology {system.name!r}"
                        loc = (*base, kind, j, "target") if base[0] == "scenarios" else base
                        if base[0] != "scenarios":
                            msg = f"scenario {sc.name!r}: {msg}"
                        out.append(exp.issue(loc, msg))
    for sc in model.scenarios:
        base = where[sc.name]
        for j, c in enumerate(sc.clients):
            if c.profile not in wl.profiles:
                msg = f"unknown client profile {c.profile!r}"
                loc = (*base, "clients", j, "profile") if base[0] == "scenarios" else base
                if base[0] != "scenarios":
                    msg = f"scenario {sc.name!r}: {msg}"
                out.append(exp.issue(loc, msg))
        out += _check_overrides(model, sc, base)
    scenarios = {s.name for s in model.scenarios}
    for i, h in enumerate(exp.doc.hypotheses):
        if h.topology is not None and h.topology not in names:
            out.append(exp.issue(("hypotheses", i, "topology"), f"unknown topology {h.topology!r}"))
        if h.scenario is not None and h.scenario not in scenarios:
            out.append(exp.issue(("hypotheses", i, "scenario"), f"unknown scenario {h.scenario!r}"))
    return out


def _scenario_locs(model: ExperimentModel) -> dict[str, tuple[Any, ...]]:
    """Where each (expanded) scenario is written: its entry, the matrix, or its sweep."""
    exp = model.experiment.doc
    where: dict[str, tuple[Any, ...]] = {}
    for i, sc in enumerate(exp.scenarios):
        where[sc.name] = ("scenarios", i)
    for i, sweep in enumerate(exp.sweeps):
        for sc in model.scenarios:
            if sc.name.startswith(f"{sweep.name}.") and sc.name not in where:
                where[sc.name] = ("sweeps", i, "template")
    for sc in model.scenarios:
        where.setdefault(sc.name, ("matrix",))
    return where


def _check_overrides(model: ExperimentModel, sc: Any, base: tuple[Any, ...]) -> list[ConfigIssue]:
    exp, wl = model.experiment, model.workload
    counted = {g.name for g in wl.workload.doc.guests} | {o.name for o in wl.workload.doc.objects}
    out = []
    for name in sc.overrides.counts:
        if name not in counted:
            loc = (*base, "overrides", "counts", name) if base[0] == "scenarios" else base
            msg = f"scenario {sc.name!r}: no guest group or object named {name!r}"
            out.append(exp.issue(loc, msg))
    if out or not sc.overrides.counts:
        return out
    from sim.model.resolved import apply_workload

    for issue in check_workload(apply_workload(wl, sc.overrides)):
        msg = f"scenario {sc.name!r}: with its counts, {issue.message}"
        out.append(exp.issue(base, msg))
    return out
