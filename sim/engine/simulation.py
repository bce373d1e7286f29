"""One replication: the state object that owns everything (CONVENTIONS 2)."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import simpy

from sim.engine.clients import Client, Probes, Session
from sim.engine.cpu import CPU
from sim.engine.daemon import DaemonRT
from sim.engine.faults import schedule
from sim.engine.guests import RUNNING, STOPPED, Guests
from sim.engine.jobs import JobRules, SweepRT
from sim.engine.rng import Streams
from sim.engine.rpc import NestedRT, ProcRT
from sim.engine.systemd import Manager, SocketRT
from sim.engine.trace import Collector

if TYPE_CHECKING:
    from sim.model.resolved import System, WorkloadModel
    from sim.schema.catalog import Procedure
    from sim.schema.common import Distribution
    from sim.schema.experiment import Scenario
    from sim.schema.workload import CallSpec, ClientDecl, ClientProfile


def sampler(d: Distribution, rng: random.Random) -> Callable[[], float]:
    """A function drawing a service time in seconds from ``d`` (milliseconds)."""
    if d.dist == "constant":
        value = d.value_ms / 1000.0
        return lambda: value
    if d.dist == "exponential":
        rate = 1000.0 / d.mean_ms
        return partial(rng.expovariate, rate)
    if d.dist == "uniform":
        lo, hi = d.low_ms / 1000.0, d.high_ms / 1000.0
        return partial(rng.uniform, lo, hi)
    mu, sigma = math.log(d.median_ms / 1000.0), d.sigma
    return partial(rng.lognormvariate, mu, sigma)


def _profile(workload: WorkloadModel, decl: ClientDecl) -> ClientProfile:
    profile = workload.profiles[decl.profile]
    if decl.timeout_s is None:
        return profile
    timeout = None if decl.timeout_s == "none" else decl.timeout_s
    return profile.model_copy(update={"timeout_s": timeout})


class Simulation:
    """All state of one replication of one scenario in one topology."""

    def __init__(
        self,
        system: System,
        workload: WorkloadModel,
        scenario: Scenario | None,
        seed: int,
        replication: int,
        start: str = "steady",
        keep_trace: bool = False,
        sample_every_s: float | None = None,
    ) -> None:
        self.system = system
        self.workload = workload
        self.scenario = scenario
        self.env = simpy.Environment()
        self.streams = Streams(seed, replication)
        self.collector = Collector(keep_trace=keep_trace)
        self.sample_every_s = sample_every_s
        self.start_mode = start
        host = workload.workload.doc.host
        self.cpu = CPU(self.env, host.cores if host is not None else None)
        self._compile_catalog()
        self.manager = Manager(self)
        self.daemons = {
            d.name: DaemonRT(self, d, self.manager.service(d.unit))
            for d in system.topology.doc.daemons
        }
        self.daemon_of_service = {d.spec.unit: d for d in self.daemons.values()}
        self.host = {drv: self.daemons[name] for drv, name in system.host_of.items()}
        self.routes = self._compile_routes()
        self.guests = Guests(self, steady=start == "steady")
        self.probes = Probes(self)
        self.operator = Session(self, "operator", None, None, reconnect_s=0.0)
        decls = list(workload.workload.doc.clients) + (scenario.clients if scenario else [])
        self.clients = [
            Client(self, name, _profile(workload, c), c.start_s)
            for c in decls
            for name in ([c.name] if c.count == 1 else [f"{c.name}-{i}" for i in range(c.count)])
        ]

    # ----------------------------------------------------------------- compile
    def _compile_catalog(self) -> None:
        cat = self.system.catalog.doc
        self.driver_uri = {d.name: d.uri for d in cat.drivers}
        self.guest_drivers = sorted(d.name for d in cat.drivers if d.hosts_guests)
        self.inhibiting_drivers = frozenset(
            d.name for d in cat.drivers if d.hosts_guests and d.inhibits_idle_exit
        )
        kinds = {k.driver: k.name for k in cat.object_kinds}
        self.guest_kind = kinds.get(self.guest_drivers[0], "") if self.guest_drivers else ""
        self.kind_driver = {k.name: k.driver for k in cat.object_kinds}
        rules = {d.name: JobRules(d.job_wait_s, d.max_queued_jobs) for d in cat.drivers}
        self.procs: dict[str, ProcRT] = {}
        for p in cat.procedures:
            rng = self.streams.get(f"service:{p.name}")
            self.procs[p.name] = ProcRT(
                p.name, p.driver, p.target, p.priority == "high", sampler(p.service, rng),
                "driver" in p.locks, "object" in p.locks, [], p.guest_effect, p.operation,
                job=None if p.job == "none" else p.job, monitor=p.monitor,
                sweep=self._sweep(p), rules=rules.get(p.driver),
            )  # fmt: skip
        for p in cat.procedures:
            self.procs[p.name].calls = [
                NestedRT(self.procs[c.procedure], c.for_each, c.on_error == "ignore")
                for c in p.calls
            ]
        hs = cat.handshake
        self.handshake = None
        if hs is not None:
            sample = sampler(hs.service, self.streams.get(f"service:{hs.name}"))
            self.handshake = ProcRT(
                hs.name, None, None, hs.priority == "high", sample, False, False, [], "none",
                "connect",
            )  # fmt: skip
        self.start_proc = self.procs[cat.lifecycle.start]
        self.reconnect_proc = {
            d.name: self.procs[d.reconnect_procedure]
            for d in cat.drivers
            if d.reconnect_procedure is not None
        }
        if self.cpu.cores is not None:  # guest starts and reconnects are CPU work (issue 16)
            for proc in [self.start_proc, *self.reconnect_proc.values()]:
                proc.on_cpu = True
        for proc in [*self.procs.values(), *([self.handshake] if self.handshake else [])]:
            proc.seal()
        self.per_object_ms = {d.name: d.init_cpu_ms_per_object for d in cat.drivers}
        self.init_ms = {d.name: d.init_cpu_ms for d in cat.drivers}
        self.init_later = frozenset(d.name for d in cat.drivers if d.init_in_background)

    def _sweep(self, p: Procedure) -> SweepRT | None:
        each = p.each
        if each is None:
            return None
        rng = self.streams.get(f"service:{p.name}:each")
        sample = None if each.service is None else sampler(each.service, rng)
        job = None if each.job == "none" else each.job
        return SweepRT(each.kind, each.lock, job, each.monitor, sample)

    def proc_for(self, name: str, nowait: bool = False) -> ProcRT:
        """The compiled procedure; with ``nowait``, a copy that does not wait for jobs."""
        proc = self.procs[name]
        if not nowait:
            return proc
        key = f"{name}+nowait"
        variant = self.procs.get(key)
        if variant is None:
            variant = self.procs[key] = dataclasses.replace(proc, nowait=True)
        return variant

    def objects_in(self, d: DaemonRT, kind: str) -> list[str]:
        """The objects of ``kind`` that daemon ``d`` holds, by name: its running guests for
        a guest kind, else the workload's objects, when ``d`` hosts the kind's driver."""
        driver = self.kind_driver.get(kind)
        if driver not in d.drivers:
            return []
        if driver in self.guest_drivers:
            return [g.name for g in self.guests.all if g.spec.driver == driver and g.alive]
        return self.workload.objects_of_kind(kind)

    def _compile_routes(self) -> dict[str, list[tuple[SocketRT, DaemonRT]]]:
        routes = {}
        for uri, paths in self.system.routes.items():
            entries = []
            for path in paths:
                sock = self.manager.units[self.system.socket_of_path[path]]
                assert isinstance(sock, SocketRT)
                daemon = self.daemon_of_service.get(sock.spec.service)
                if daemon is not None:
                    entries.append((sock, daemon))
            routes[uri] = entries
        return routes

    # ----------------------------------------------------------------- queries
    def driver_init_ms(self, driver: str) -> float:
        """CPU time (ms) of ``driver``'s initialisation: its base cost plus its per-object cost
        times the workload's objects of each kind (guests are not objects).
        """
        cost = self.init_ms.get(driver, 0.0)
        for kind, per in self.per_object_ms.get(driver, {}).items():
            cost += per * len(self.workload.objects_of_kind(kind))
        return cost

    def background_init_ms(self, driver: str) -> float:
        """The per-object part of ``driver``'s init when it runs after the daemon is ready."""
        if driver not in self.init_later:
            return 0.0
        return self.driver_init_ms(driver) - self.init_ms.get(driver, 0.0)

    def refs(self, target: str | None, kind: str) -> list[str]:
        """The objects of ``kind`` that ``target`` (a guest or an object) refers to; empty when
        it names none.
        """
        if target is None:
            return []
        guest = self.guests.by_name.get(target)
        if guest is not None:
            return list(guest.spec.refs.get(kind, ()))
        obj = self.workload.objects.get(target)
        return list(obj.refs.get(kind, ())) if obj is not None else []

    def slow_factor(self, d: DaemonRT, proc: ProcRT) -> float:
        """The service-time multiplier for ``proc`` in ``d``: the largest of its slow faults on
        the whole process (``*``), its driver and the procedure.
        """
        slow = d.slow
        return max(slow.get("*", 1.0), slow.get(proc.driver or "", 1.0), slow.get(proc.name, 1.0))

    def pick_targets(self, spec: CallSpec, proc: ProcRT, rng: random.Random) -> list[str | None]:
        """The targets of one tick of a client call.

        ``none``: ``[None]``; ``object``: the named object or a random one of its kind; a guest
        target picks among the guests in the state the procedure needs (stopped for a start, else
        running), in ``group`` if given: all of them for ``each-guest``, else one at random.  Empty
        when there is nothing to pick.
        """
        if spec.target == "none":
            return [None]
        if spec.target == "object":
            if spec.object is not None:
                return [spec.object]
            names = self.workload.objects_of_kind(spec.object_kind or "")
            return [rng.choice(names)] if names else []
        want = STOPPED if proc.guest_effect == "start" else RUNNING
        guests = [
            g.name
            for g in self.guests.all
            if g.state == want and (spec.group is None or g.spec.group == spec.group)
        ]
        if spec.target == "each-guest":
            return list(guests)
        return [rng.choice(guests)] if guests else []

    # ----------------------------------------------------------------- records
    def record_call(self, t0: float, client: str, proc: ProcRT, ok: bool, err: str) -> None:
        """Record a finished client call that started at ``t0`` (s) and ends now."""
        calls = self.collector.calls
        if ok:  # the common case, looked up by (client, procedure) alone
            kind = calls.ok_kinds.get((client, proc.name))
            if kind is None:
                kind = calls.ok_kinds[(client, proc.name)] = self.call_kind(client, proc, ok, err)
        else:
            kind = self.call_kind(client, proc, ok, err)
        calls.add_kind(t0, self.env.now, kind)

    def call_kind(self, client: str, proc: ProcRT, ok: bool, err: str) -> int:
        """The call log's kind for a call of ``proc`` by ``client`` with this outcome."""
        return self.collector.calls.kind_of(
            client, proc.name, proc.driver or "", proc.operation, ok, err
        )

    # ----------------------------------------------------------------- run
    def run(
        self, until: float, snapshot_at: float | None = None, snapshots: Sequence[float] = ()
    ) -> Collector:
        """Boot, run to ``until``; ``snapshot_at`` records which guests run at that time,
        ``snapshots`` which daemons run at those times."""
        self.running_at_snapshot: list[str] = []
        self.daemons_at: dict[float, list[str]] = {}
        if snapshot_at is not None:
            self.env.process(self._snapshot(snapshot_at))
        for t in snapshots:
            self.env.process(self._daemon_snapshot(t))
        self.manager.boot()
        self.probes.start()
        if self.scenario is not None:
            schedule(self, self.scenario.faults, self.scenario.actions)
        if self.sample_every_s:
            self.env.process(self._sampler(self.sample_every_s))
        self.env.run(until=until)
        self.probes.finish(until)
        return self.collector

    def boot_metrics(self) -> dict[str, float]:
        """Daemon initialisation CPU over the run and the daemons running at its end; from a
        power-on start also the time until every daemon the boot started was ready
        (``time_to_ready_s``), until every autostart guest ran (``time_to_autostart_s``) and,
        after a restart of a daemon with running guests, the longest time from its readiness
        to the end of its last guest reconnect (``time_to_reconnect_s``)."""
        out = {
            "daemon_init_cpu_ms": sum(d.cpu_ms for d in self.daemons.values()),
            "daemons_running": float(sum(d.alive for d in self.daemons.values())),
        }
        for t, names in sorted(self.daemons_at.items()):
            out[f"daemons_running.t{t:g}"] = float(len(names))
        if self.start_mode == "boot":
            services = self.manager.boot_services
            booted = [self.daemon_of_service[u] for u in services if u in self.daemon_of_service]
            if booted:
                out["time_to_ready_s"] = max(
                    self.env.now if d.first_ready is None else d.first_ready for d in booted
                )
            spans = self.guests.reconnect_span.values()
            if spans:  # a hypervisor daemon restarted with guests running
                out["time_to_reconnect_s"] = max(end - ready for ready, end in spans)
            wanted = [g.name for g in self.guests.all if g.spec.autostart]
            done = self.guests.autostart_done
            if wanted:
                out["autostart_done"] = float(sum(n in done for n in wanted))
                out["time_to_autostart_s"] = max(done.get(n, self.env.now) for n in wanted)
        return out

    def _daemon_snapshot(self, at: float) -> Any:
        yield self.env.timeout(at)
        self.daemons_at[at] = sorted(n for n, d in self.daemons.items() if d.alive)

    def _snapshot(self, at: float) -> Any:
        yield self.env.timeout(at)
        self.running_at_snapshot = [g.name for g in self.guests.all if g.alive]

    def _sampler(self, every: float) -> Any:
        while True:
            for name in sorted(self.daemons):
                d = self.daemons[name]
                busy = sum(s.pool.busy for s in d.servers.values()) if d.alive else 0
                state = "hung" if d.loop_block is not None else d.service.state
                self.collector.samples.append((self.env.now, name, busy, state))
            yield self.env.timeout(every)
