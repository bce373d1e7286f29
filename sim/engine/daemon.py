"""Daemon processes: spawn, initialise, notify, accept, idle exit, die, hang (LIBVIRT-FACTS 3).

A daemon's process has a *generation*: every spawn starts a new one, and every piece of
in-process state (worker pools, locks, accepted connections, running jobs) belongs to it.
When the process dies, its jobs are interrupted, its connections report EOF, and the guests
of the drivers it hosts keep running (their reconnect happens at the next start) unless they
are in the daemon's cgroup and its unit's ``KillMode=`` kills them (:mod:`sim.engine.systemd`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from sim.engine.primitives import JobSlot, Lock, Slots, WorkerPool
from sim.engine.systemd import ACTIVATING, ServiceRT, SocketRT

if TYPE_CHECKING:
    from sim.engine.simulation import Simulation
    from sim.schema.topology import Daemon, Server


KEEPALIVE_SWEEP_S = 1.0
"""Resolution (simulated s) of keepalive detection while a daemon's event loop is stuck."""


class ServerRT:
    """One RPC server of one daemon process generation: its worker pool and client count."""

    __slots__ = ("clients", "pool", "spec")

    def __init__(self, daemon: DaemonRT, spec: Server) -> None:
        sim, name = daemon.sim, f"{daemon.name}:{spec.name}"
        collector = sim.collector
        on_spawn = None
        if collector.keep_trace:

            def on_spawn(workers: int) -> None:
                collector.emit(daemon.env.now, name, "worker-spawned", workers=workers)

        self.spec: Server = spec
        self.pool = WorkerPool(
            daemon.env,
            spec.max_workers,
            spec.prio_workers,
            min_normal=spec.min_workers,
            spawn_s=spec.worker_spawn_ms / 1000.0,
            rng=sim.streams.get(f"pool:{name}"),
            race_normal=spec.race_normal,
            on_spawn=on_spawn,
        )
        self.clients = 0


class DaemonRT:
    """The runtime of one daemon (across its restarts)."""

    def __init__(self, sim: Simulation, spec: Daemon, service: ServiceRT) -> None:
        self.sim = sim
        self.env = sim.env
        self.spec = spec
        self.name = spec.name
        self.service = service
        self.drivers = frozenset(spec.drivers)
        self.gen = 0
        self.alive = False
        self.ready = False
        self.servers: dict[str, ServerRT] = {}
        self.server_of_socket = {s: srv.name for srv in spec.servers for s in srv.sockets}
        self.locks: dict[Any, Lock] = {}
        self.job_slots: dict[Any, JobSlot] = {}
        self.jobs: dict[simpy.Process, None] = {}  # insertion-ordered: deterministic
        self.connections = 0
        self.idle_token = 0
        self.loop_block: simpy.Event | None = None
        self.loop_blocked_since = 0.0
        self.hung_drivers: dict[str, simpy.Event] = {}
        self.pending_init: dict[str, simpy.Event] = {}
        self.slow: dict[str, float] = {}
        self.crash_on_start = 0
        self.crash_after_s = 0.0
        self.cpu_ms = 0.0
        self.first_ready: float | None = None
        self.death: simpy.Event = sim.env.event()
        self.ka_conns: dict[Any, None] = {}  # connections with client keepalive, by age
        self.outbound: set[Any] = set()
        self.stuck_objects: set[Any] = set()
        self.stuck_held: dict[Any, int] = {}
        fwd = spec.forward_timeout
        self.forward_timeout_s: float | None = None if fwd is None else fwd.timeout_s
        self.forward_pool: WorkerPool | None = None
        self.driver_caps: dict[str, Slots] = {}

    # ------------------------------------------------------------------ lifecycle
    def spawn(self) -> None:
        """systemd forks the daemon: a new process generation starts initialising."""
        self.gen += 1
        self.alive = True
        self.ready = False
        self.servers = {s.name: ServerRT(self, s) for s in self.spec.servers}
        self.forward_pool = self._forward_pool()
        caps = self.spec.driver_caps
        self.driver_caps = {} if caps is None else {
            drv: Slots(self.env, n) for drv, n in sorted(caps.max_busy.items())
        }  # fmt: skip
        self.locks = {}
        self.job_slots = {}
        for key in sorted(self.stuck_objects, key=repr):
            self.lock(key).held = True
            self.stuck_held[key] = self.gen
        self.jobs = {}
        self.ka_conns = {}
        self.connections = 0
        self.loop_block = None
        self.hung_drivers = {}
        self.pending_init = {}
        self.slow = {}
        self.death = self.env.event()
        self.sim.collector.emit(self.env.now, self.name, "spawned", gen=self.gen)
        self.env.process(self._init(self.gen))

    def _forward_pool(self) -> WorkerPool | None:
        """The pool of forwarded calls (a hypothetical mitigation), all workers started."""
        spec = self.spec.forward_pool
        if spec is None:
            return None
        return WorkerPool(
            self.env,
            spec.max_workers,
            spec.prio_workers,
            rng=self.sim.streams.get(f"pool:{self.name}:forward"),
        )

    def _init(self, gen: int) -> Generator[simpy.Event, Any, None]:
        sim = self.sim
        later = {d: sim.background_init_ms(d) for d in sorted(self.drivers)}
        later = {d: ms for d, ms in later.items() if ms > 0}
        cost_ms = self.spec.start_cpu_ms + sum(
            sim.driver_init_ms(drv) - later.get(drv, 0.0) for drv in sorted(self.drivers)
        )
        self.cpu_ms += cost_ms + sum(later.values())
        self.sim.collector.add(f"init_cpu_ms:{self.name}", cost_ms)
        if self.crash_on_start > 0:
            self.crash_on_start -= 1
            yield self.env.timeout(self.crash_after_s)
            if self.gen == gen and self.alive:
                self.die(1, "crash-loop")
            return
        done = yield from self.sim.cpu.run(cost_ms / 1000.0, abandon=self.death)
        if not done or self.gen != gen or not self.alive:
            return
        self.ready = True
        if self.first_ready is None:
            self.first_ready = self.env.now
        self.sim.collector.emit(self.env.now, self.name, "ready", init_ms=round(cost_ms, 3))
        for drv, ms in later.items():
            self.pending_init[drv] = self.env.event()
            self.env.process(self._init_later(gen, drv, ms))
        self.sim.manager.service_ready(self.service)
        self.sim.guests.daemon_started(self)
        self.accept_backlog()
        self.check_idle()

    def _init_later(self, gen: int, driver: str, ms: float) -> Generator[simpy.Event, Any, None]:
        """A driver's enumeration on its own thread (on the host's CPU); its calls wait until
        it is done."""
        done = yield from self.sim.cpu.run(ms / 1000.0, abandon=self.death)
        if done and self.gen == gen and self.alive:
            self.pending_init.pop(driver).succeed()
            self.sim.collector.emit(self.env.now, self.name, "driver-ready", driver=driver)

    def terminate(self, code: int, by_manager: bool, why: str) -> None:
        """A clean stop (SIGTERM from systemd, or idle exit)."""
        self._end(code, by_manager, why)

    def die(self, code: int, why: str) -> None:
        """The process dies unexpectedly (a crash)."""
        self._end(code, False, why)

    def _end(self, code: int, by_manager: bool, why: str) -> None:
        if not self.alive:
            return
        self.alive = False
        self.ready = False
        self.sim.collector.emit(self.env.now, self.name, "exited", code=code, why=why)
        self.death.succeed()
        jobs, self.jobs = self.jobs, {}
        me = self.env.active_process  # a job whose own call chain stopped the daemon
        for job in jobs:
            if job.is_alive and job is not me:
                job.interrupt("eof")
        if self.loop_block is not None and not self.loop_block.triggered:
            self.loop_block.succeed()
        for ev in [*self.hung_drivers.values(), *self.pending_init.values()]:
            if not ev.triggered:
                ev.succeed()
        for conn in sorted(self.outbound, key=lambda c: (c.daemon.name, c.gen, c.label)):
            conn.close()
        # guests in a machine scope survive their daemon; those in its cgroup meet KillMode=
        self.sim.manager.service_exited(self.service, code, by_manager)

    # ------------------------------------------------------------------ connections
    @property
    def accepting(self) -> bool:
        """Whether the process takes new connections now: it is ready and its event loop is not
        hung.
        """
        return self.ready and self.loop_block is None

    def server_for(self, sock: SocketRT) -> ServerRT:
        """The server that listens on ``sock``."""
        return self.servers[self.server_of_socket[sock.name]]

    def _admit(self, sock: SocketRT) -> bool:
        """Take a client slot on the socket's server; at ``max_clients`` the daemon stops
        accepting and connections wait in the backlog (LIBVIRT-FACTS 3)."""
        server = self.server_for(sock)
        if server.clients >= server.spec.max_clients:
            return False
        server.clients += 1
        return True

    def accept_backlog(self) -> None:
        """Admit the connections waiting in each socket's backlog, oldest first, while client
        slots last (none while not accepting).
        """
        if not self.accepting:
            return
        for sock in self.service.sockets:
            while sock.backlog and self._admit(sock):
                sock.backlog.pop(0).succeed(None)

    def connect(self, sock: SocketRT) -> simpy.Event | None:
        """A connection reaches this daemon's socket: ``None`` if accepted now (a client slot
        is taken), else an event whose value is ``None`` once accepted, or an error string."""
        if self.accepting and not sock.backlog and self._admit(sock):
            return None
        if self.alive or self.service.state == ACTIVATING:
            event = self.env.event()
            sock.backlog.append(event)
            return event
        return self.sim.manager.connection_arrived(sock)

    def opened(self) -> None:
        """A connection was accepted: count it, and cancel a pending idle exit."""
        self.connections += 1
        self.idle_token += 1

    def closed(self, server: ServerRT) -> None:
        """A connection on ``server`` closed: free its client slot, admit waiting connections,
        and start the idle timer when it was the last one.
        """
        server.clients -= 1
        self.connections -= 1
        if any(sock.backlog for sock in self.service.sockets):
            self.accept_backlog()
        if self.connections == 0:
            self.check_idle()

    # ------------------------------------------------------------------ idle exit
    def check_idle(self) -> None:
        """Start an idle-exit timer when the daemon has an idle timeout, is ready and has no
        connection.

        It exits after ``idle_timeout_s`` seconds of no connection unless its event loop is hung or
        its running guests inhibit the exit; a new connection or a newer timer cancels this one.
        """
        if self.spec.idle_timeout_s is None or not self.ready or self.connections:
            return
        self.idle_token += 1
        self.env.process(self._idle_timer(self.gen, self.idle_token))

    def _idle_timer(self, gen: int, token: int) -> Generator[simpy.Event, Any, None]:
        timeout = self.spec.idle_timeout_s
        assert timeout is not None
        while True:
            yield self.env.timeout(timeout)
            if self.gen != gen or not self.alive or self.idle_token != token:
                return
            if self.loop_block is not None:
                continue
            if not self.sim.guests.inhibits(self):
                self.sim.collector.emit(self.env.now, self.name, "idle-exit")
                self.terminate(0, by_manager=False, why="idle timeout")
                return

    # ------------------------------------------------------------------ faults
    def hang_process(self) -> None:
        """The process's event loop is stuck (the process stops answering).

        It accepts no connection, hands no new request to a worker and sends no reply until
        :meth:`unhang_process` or its death; connections with client keepalive die once silent for
        their ``ka_s`` (checked every ``KEEPALIVE_SWEEP_S``).
        """
        if self.alive and self.loop_block is None:
            self.loop_block = self.env.event()
            self.loop_blocked_since = self.env.now
            self.env.process(self._keepalive_sweep(self.loop_block))

    def _keepalive_sweep(self, block: simpy.Event) -> Generator[simpy.Event, Any, None]:
        """Connections with client keepalive die once the daemon has sent nothing for
        ``interval * (count + 1)`` s, idle ones too (their pings go unanswered while the
        loop is stuck; before that, the daemon's own pings and replies kept them alive)."""
        while self.loop_block is block:
            now = self.env.now
            for conn in list(self.ka_conns):
                silent = now - max(self.loop_blocked_since, conn.opened_at)
                if silent >= conn.ka_s - 1e-9:
                    conn.die("keepalive")
            yield self.env.timeout(KEEPALIVE_SWEEP_S)

    def unhang_process(self) -> None:
        """The event loop runs again: waiting work resumes and the backlog is admitted."""
        if self.loop_block is not None:
            block, self.loop_block = self.loop_block, None
            if not block.triggered:
                block.succeed()
            self.accept_backlog()

    def hang_driver(self, driver: str) -> None:
        """Every call into ``driver`` in this process blocks until :meth:`unhang_driver` or the
        process ends.
        """
        if self.alive and driver not in self.hung_drivers:
            self.hung_drivers[driver] = self.env.event()

    def unhang_driver(self, driver: str) -> None:
        """Calls into ``driver`` proceed again."""
        event = self.hung_drivers.pop(driver, None)
        if event is not None and not event.triggered:
            event.succeed()

    def job_slot(self, key: Any) -> JobSlot:
        """The job slot of object ``key`` in this process (created on first use)."""
        slot = self.job_slots.get(key)
        if slot is None:
            slot = self.job_slots[key] = JobSlot(self.env)
        return slot

    def lock(self, key: Any) -> Lock:
        """The lock called ``key`` in this process (a driver's or an object's; created on first
        use).
        """
        lock = self.locks.get(key)
        if lock is None:
            lock = self.locks[key] = Lock(self.env)
        return lock
