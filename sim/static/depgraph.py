"""The static dependency graph of one system under one workload.

One :class:`networkx.DiGraph` whose edges read "depends on".  Every node and edge is derived
from model data (the topology, its catalog and the workload); nothing here knows a daemon,
driver or unit by name.

Node ids (attribute ``kind`` in brackets)::

    unit:<unit>              [unit]    a systemd unit (service, socket, target; ``external``)
    daemon:<daemon>          [daemon]  a daemon process
    server:<daemon>/<server> [server]  an RPC server: one worker pool of that process
    driver:<driver>          [driver]
    proc:<procedure>         [proc]
    object:<object>          [object]  a workload object some call acts on
    guest:<guest>            [guest]
    guest:<guest>:<op>       [op]      op in OPS: start, stop, manage, reconnect
    client:<client>          [client]  a workload client (every call of its profile)

Edge attributes: ``rel`` (what the dependency is: ``calls``, ``route``, ``rpc``,
``forward``, ``hosted-by``, ``requires`` ...), ``strength`` (``hard`` or ``soft``) and
``blocking``.  A hard edge is a requirement: if the dependency fails, so does the dependent.
A soft edge is either a nested call made with ``on_error: ignore`` (its failure is ignored,
but while it hangs the caller waits: ``blocking``) or a unit's ``Wants=`` (never propagates).

Calls are expanded per *context* (a guest operation or a client) and flattened onto the
context node: a context depends on every procedure it runs, nested calls included (expanded
with the refs of the object they act on), and on the socket and server of every RPC hop.
Each RPC hop also yields a :class:`Hold`: the server's worker is held while the rest of the
call runs, which is what lets a hang exhaust a pool (see :mod:`sim.static.analysis`).  A hold
names its *source*, the caller that makes such calls, and ``graph.graph["sources"]`` bounds
how many calls each source can have in flight at once (``None``: no bound):

- a persistent client: one call at a time per call kind (each kind has its own thread), so
  ``count x len(calls)``; a per-call client opens a connection per call: unbounded;
- the probe agent: one connection per guest; a probe that times out stays in flight, so
  each guest can have up to ``max_client_requests`` probes in flight (``per_context``);
- the engine's own operations run without a worker where they start (autostart at boot,
  reconnect at daemon start); their nested RPCs hold remote workers, one per guest.

Guest start and stop have no source of their own: a client that starts or stops guests is
already a client context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from sim.model.resolved import GuestSpec, System, WorkloadModel
from sim.model.routing import Hop, live_units, resolve_route, server_id
from sim.schema.catalog import Procedure
from sim.schema.topology import ServiceUnit, SocketUnit
from sim.schema.workload import CallSpec

OPS = ("start", "stop", "manage", "reconnect")
"""Guest operations, in display order."""

Refs = dict[str, tuple[str, ...]]


def unit_id(name: str) -> str:
    """Graph node id of a unit."""
    return f"unit:{name}"


def daemon_id(name: str) -> str:
    """Graph node id of a daemon."""
    return f"daemon:{name}"


def driver_id(name: str) -> str:
    """Graph node id of a driver."""
    return f"driver:{name}"


def proc_id(name: str) -> str:
    """Graph node id of a procedure."""
    return f"proc:{name}"


def object_id(name: str) -> str:
    """Graph node id of a workload object."""
    return f"object:{name}"


def guest_id(name: str) -> str:
    """Graph node id of a guest."""
    return f"guest:{name}"


def op_id(guest: str, op: str) -> str:
    """Graph node id of one operation (:data:`OPS`) of a guest."""
    return f"guest:{guest}:{op}"


def client_id(name: str) -> str:
    """Graph node id of a workload client."""
    return f"client:{name}"


@dataclass(frozen=True)
class Hold:
    """A worker of ``server`` held by ``ctx``'s call, made by ``source``, while it waits on
    ``waits`` (node ids)."""

    server: str
    ctx: str
    source: str
    waits: frozenset[str]


PROBE = "probe"
AUTOSTART = "internal:autostart"
RECONNECT = "internal:reconnect"


@dataclass
class _Ctx:
    """Edges and holds collected for one context node while its calls are expanded."""

    node: str
    edges: dict[str, tuple[str, bool]] = field(default_factory=dict)
    holds: set[tuple[str, frozenset[str]]] = field(default_factory=set)

    def dep(self, target: str, rel: str, soft: bool) -> None:
        old = self.edges.get(target)
        if old is None or (old[1] and not soft):
            self.edges[target] = (rel, soft)


class _Builder:
    def __init__(self, system: System, workload: WorkloadModel) -> None:
        self.system = system
        self.workload = workload
        self.live = live_units(system)
        self.graph: nx.DiGraph = nx.DiGraph(system=system.name, workload=workload.name)
        self.holds: list[Hold] = []
        self.notes: set[str] = set()
        self.per_context: dict[str, int] = {}

    # -- infrastructure -----------------------------------------------------------------
    def node(self, node: str, kind: str, name: str, **attrs: object) -> None:
        if node not in self.graph:
            self.graph.add_node(node, kind=kind, name=name, **attrs)

    def edge(self, a: str, b: str, rel: str, strength: str = "hard", blocking: bool = True) -> None:
        self.graph.add_edge(a, b, rel=rel, strength=strength, blocking=blocking)

    def unit_node(self, name: str) -> str:
        unit = self.system.units.get(name)
        utype = unit.type if unit is not None else "external"
        self.node(unit_id(name), "unit", name, utype=utype, external=unit is None)
        return unit_id(name)

    def units(self) -> None:
        """Unit nodes and edges; a service depends on the live sockets that activate it.
        Without a supervisor (``supervisor: none``) no Requires=/BindsTo=/Wants= edge exists:
        nothing propagates a stop or a failure between units."""
        supervised = self.system.topology.doc.supervisor == "systemd"
        for unit in self.system.topology.doc.units:
            self.unit_node(unit.name)
        for unit in self.system.topology.doc.units:
            me = unit_id(unit.name)
            for rel, names in (("requires", unit.requires), ("binds-to", unit.binds_to)):
                for other in names if supervised else []:
                    self.edge(me, self.unit_node(other), rel)
            for other in unit.wants if supervised else []:
                self.edge(me, self.unit_node(other), "wants", "soft", blocking=False)
            activates = isinstance(self.system.units.get(getattr(unit, "service", "")), ServiceUnit)
            if isinstance(unit, SocketUnit) and activates and unit.name in self.live:
                self.edge(unit_id(unit.service), me, "activated-by")

    def daemons(self) -> None:
        for d in self.system.topology.doc.daemons:
            me = daemon_id(d.name)
            self.node(me, "daemon", d.name, roles=",".join(d.roles))
            self.edge(me, self.unit_node(d.unit), "run-by")
            for s in d.servers:
                sid = server_id(d.name, s.name)
                self.node(sid, "server", s.name, daemon=d.name, max_workers=s.max_workers)
                self.edge(sid, me, "part-of")
            for drv in d.drivers:
                self.node(driver_id(drv), "driver", drv, daemon=d.name)
                self.edge(driver_id(drv), me, "hosted-by")
        for proc in self.system.catalog.doc.procedures:
            if proc.driver in self.system.host_of:
                self.node(proc_id(proc.name), "proc", proc.name, driver=proc.driver)
                self.edge(proc_id(proc.name), driver_id(proc.driver), "implemented-by")

    def object_node(self, name: str) -> str:
        obj = self.workload.objects[name]
        owner = self.system.object_kinds.get(obj.kind)
        self.node(object_id(name), "object", name, object_kind=obj.kind)
        if owner is not None and owner.driver in self.system.host_of:
            self.edge(object_id(name), driver_id(owner.driver), "owned-by")
        return object_id(name)

    # -- calls --------------------------------------------------------------------------
    def route(self, uri: str) -> Hop | None:
        hop = resolve_route(self.system, uri, self.live)
        if hop is None:
            self.notes.add(f"uri {uri!r} has no live socket in topology {self.system.name!r}")
        elif hop.server is None:
            self.notes.add(f"socket {hop.socket!r} is served by no server of {hop.daemon!r}")
        return hop

    def enter(self, ctx: _Ctx, hop: Hop, rel: str, soft: bool) -> set[str]:
        ctx.dep(unit_id(hop.socket), "route", soft)
        waits = {unit_id(hop.socket)}
        if hop.server_node is not None:
            ctx.dep(hop.server_node, rel, soft)
            waits.add(hop.server_node)
        return waits

    def call(
        self, ctx: _Ctx, name: str, refs: Refs, caller: str | None, soft: bool, rel: str = "rpc"
    ) -> set[str]:
        """Expand one call of ``name`` made from daemon ``caller``; return what it waits on.

        When ``caller`` does not host the procedure's driver, the call is an RPC over the
        driver's URI (``rel`` is ``forward`` when the caller only relays a client's call).
        """
        proc = self.system.procedures[name]
        host = self.system.host_of.get(proc.driver)
        if host is None:
            self.notes.add(f"procedure {name!r}: driver {proc.driver!r} is hosted nowhere")
            return set()
        ctx.dep(proc_id(name), "calls-ignore" if soft else "calls", soft)
        waits = {proc_id(name)}
        hop: Hop | None = None
        if caller != host:
            hop = self.route(self.system.drivers[proc.driver].uri)
            if hop is not None and hop.daemon != host:
                self.notes.add(
                    f"driver {proc.driver!r} is hosted by {host!r}, its uri reaches {hop.daemon!r}"
                )
                hop = None
            if hop is not None:
                waits |= self.enter(ctx, hop, rel, soft)
        inner = self.nested(ctx, proc, refs, host, soft)
        if hop is not None and hop.server_node is not None:
            ctx.holds.add((hop.server_node, frozenset({proc_id(name)} | inner)))
        return waits | inner

    def nested(self, ctx: _Ctx, proc: Procedure, refs: Refs, host: str, soft: bool) -> set[str]:
        waits: set[str] = set()
        for nc in proc.calls:
            soft_here = soft or nc.on_error == "ignore"
            if nc.for_each is None:
                waits |= self.call(ctx, nc.procedure, refs, host, soft_here)
                continue
            for obj in refs.get(nc.for_each, ()):
                if obj not in self.workload.objects:
                    continue
                oid = self.object_node(obj)
                ctx.dep(oid, "acts-on", soft_here)
                waits.add(oid)
                obj_refs = self.workload.objects[obj].refs
                waits |= self.call(ctx, nc.procedure, obj_refs, host, soft_here)
        return waits

    def entry_call(self, ctx: _Ctx, name: str, uri: str, refs: Refs) -> None:
        """A call a client makes on ``uri``: it enters the daemon the route reaches."""
        hop = self.route(uri)
        if hop is None:
            self.call(ctx, name, refs, None, False)
            return
        self.enter(ctx, hop, "rpc", False)
        waits = self.call(ctx, name, refs, hop.daemon, False, rel="forward")
        if hop.server_node is not None:
            ctx.holds.add((hop.server_node, frozenset(waits)))

    def internal_call(self, ctx: _Ctx, name: str, refs: Refs) -> None:
        """A call the engine runs inside the daemon hosting the procedure's driver."""
        proc = self.system.procedures[name]
        self.call(ctx, name, refs, self.system.host_of.get(proc.driver), False)

    def flush(self, ctx: _Ctx, source: str | None) -> None:
        """Add the context's edges, and its holds when ``source`` makes its calls."""
        for target, (rel, soft) in sorted(ctx.edges.items()):
            self.edge(ctx.node, target, rel, "soft" if soft else "hard", blocking=True)
        if source is not None:
            self.add_holds(ctx, source)

    def add_holds(self, ctx: _Ctx, source: str) -> None:
        for server, waits in sorted(ctx.holds, key=lambda h: (h[0], sorted(h[1]))):
            self.holds.append(Hold(server, ctx.node, source, waits))

    def autostart_holds(self, g: GuestSpec) -> None:
        """Holds of the engine's autostart of ``g``: the start runs without a local worker."""
        ctx = _Ctx(op_id(g.name, "start"))
        self.internal_call(ctx, self.system.catalog.doc.lifecycle.start, g.refs)
        self.add_holds(ctx, AUTOSTART)

    # -- contexts -----------------------------------------------------------------------
    def guest(self, g: GuestSpec) -> None:
        gid = guest_id(g.name)
        self.node(gid, "guest", g.name, group=g.group, running=g.running)
        life = self.system.catalog.doc.lifecycle
        driver = self.system.drivers[g.driver]
        for op in OPS:
            ctx = _Ctx(op_id(g.name, op))
            self.node(ctx.node, "op", f"{g.name}:{op}", guest=g.name, group=g.group, op=op)
            if op in ("start", "stop"):
                self.entry_call(ctx, getattr(life, op), driver.uri, g.refs)
            elif op == "manage":
                probe = self.workload.probe
                self.entry_call(ctx, probe.procedure, probe.uri, g.refs)
            elif driver.reconnect_procedure is not None:
                self.internal_call(ctx, driver.reconnect_procedure, g.refs)
            elif driver.name in self.system.host_of:
                ctx.dep(driver_id(driver.name), "reattach", False)
            if op != "start":
                ctx.dep(gid, "acts-on", False)
            self.flush(ctx, {"manage": PROBE, "reconnect": RECONNECT}.get(op))
        if g.autostart:
            self.autostart_holds(g)

    def sweeps(self) -> None:
        """A procedure that visits every object of a kind waits on each of them (a soft,
        blocking edge: a hung object stalls the sweep; a failed one does not fail it)."""
        guest_kinds = {
            k.name for k in self.system.catalog.doc.object_kinds
            if self.system.drivers[k.driver].hosts_guests
        }  # fmt: skip
        for proc in self.system.catalog.doc.procedures:
            each = proc.each
            if each is None or proc_id(proc.name) not in self.graph:
                continue
            if each.kind in guest_kinds:
                owner = self.system.object_kinds[each.kind].driver
                targets = [guest_id(g.name) for g in self.workload.guests if g.driver == owner]
            else:
                targets = [self.object_node(n) for n in self.workload.objects_of_kind(each.kind)]
            for node in targets:
                self.edge(proc_id(proc.name), node, "sweeps", "soft", blocking=True)

    def client(self, name: str, profile: str) -> None:
        ctx = _Ctx(client_id(name))
        self.node(ctx.node, "client", name, profile=profile)
        for spec in self.workload.profiles[profile].calls:
            for refs, obj in self.call_targets(spec):
                if obj is not None:
                    ctx.dep(self.object_node(obj), "acts-on", False)
                for step in [*spec.before, spec.procedure]:
                    if step is not None:
                        self.entry_call(ctx, step, spec.uri, refs)
        self.flush(ctx, ctx.node)

    def call_targets(self, spec: CallSpec) -> list[tuple[Refs, str | None]]:
        """Distinct (refs, object) a client call can act on; guests of one config collapse."""
        wl = self.workload
        if spec.target in ("each-guest", "one-guest"):
            guests = [g for g in wl.guests if spec.group in (None, g.group)]
            out = {tuple(sorted(g.refs.items())): (g.refs, None) for g in guests}
            return [out[k] for k in sorted(out)]
        if spec.target == "object":
            names = [spec.object] if spec.object else wl.objects_of_kind(spec.object_kind or "")
            return [(wl.objects[n].refs, n) for n in names if n is not None and n in wl.objects]
        return [({}, None)]

    def sources(self) -> dict[str, int | None]:
        """How many calls each hold source can have in flight at once (None: unbounded)."""
        wl, guests = self.workload, self.workload.guests
        out: dict[str, int | None] = {
            AUTOSTART: sum(1 for g in guests if g.autostart),
            RECONNECT: len(guests),
        }
        # the probe agent makes no new probe of a guest while one still runs in the daemon
        out[PROBE] = len(guests)
        self.per_context[PROBE] = 1
        for c in wl.workload.doc.clients:
            profile = wl.profiles.get(c.profile)
            if profile is not None:
                persistent = profile.connection == "persistent"
                out[client_id(c.name)] = c.count * len(profile.calls) if persistent else None
        return out

    def build(self) -> nx.DiGraph:
        self.units()
        self.daemons()
        for g in self.workload.guests:
            self.guest(g)
        for c in sorted(self.workload.workload.doc.clients, key=lambda c: c.name):
            if c.profile in self.workload.profiles:
                self.client(c.name, c.profile)
        self.sweeps()
        self.graph.graph["holds"] = tuple(self.holds)
        self.graph.graph["sources"] = self.sources()
        self.graph.graph["per_context"] = dict(self.per_context)
        self.graph.graph["notes"] = tuple(sorted(self.notes))
        self.graph.graph["live_units"] = tuple(sorted(self.live))
        return self.graph


def build_graph(system: System, workload: WorkloadModel) -> nx.DiGraph:
    """The dependency graph of ``system`` running ``workload`` (see the module docstring).

    ``graph.graph`` carries ``holds`` (every :class:`Hold`), ``sources`` (how many calls each
    hold source can have in flight, ``None`` for no bound), ``notes`` (model oddities such
    as an unroutable URI) and ``live_units``.
    """
    return _Builder(system, workload).build()


def holds_of(graph: nx.DiGraph) -> tuple[Hold, ...]:
    """The graph's worker holds (empty for a graph not made by :func:`build_graph`)."""
    holds: tuple[Hold, ...] = graph.graph.get("holds", ())
    return holds


def sources_of(graph: nx.DiGraph) -> dict[str, int | None]:
    """Calls each hold source can have in flight at once (``None``: no bound)."""
    sources: dict[str, int | None] = graph.graph.get("sources", {})
    return sources


def per_context_of(graph: nx.DiGraph) -> dict[str, int]:
    """Calls one guest-operation context of a source can have in flight (default 1)."""
    per: dict[str, int] = graph.graph.get("per_context", {})
    return per
