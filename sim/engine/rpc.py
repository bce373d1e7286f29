"""Connections and calls (LIBVIRT-FACTS 3, 4.1, 10).

A *connection* first runs the catalog's handshake (an RPC served by a worker).  A *call* on
it becomes a server-side *job* in the daemon that accepted the connection: it waits for a
request slot on the connection (``max_client_requests``; with every slot taken the daemon
stops reading the client, and its keepalive drops the client if that lasts), for the event
loop (a hung process reads nothing), and for a worker (the virThreadPool rules of
:class:`~sim.engine.primitives.WorkerPool`).  Then it is *dispatched*: run in-process when
the daemon hosts the procedure's driver, otherwise *forwarded* over the daemon's own
connection to the hosting daemon (opened lazily, cached for the life of the client
connection, no timeout, no client keepalive), holding the local worker until the answer
comes; the forwarded job has the procedure's own priority.  Executing a procedure takes
its locks and its job on the target object (:mod:`sim.engine.jobs`), makes its nested calls
(in-process, or RPC to another daemon over a connection of their own, which may
socket-activate it), sweeps the objects it lists, and spends its service time (in the
guest's monitor for monitor work).  A client that gives up (timeout) abandons the job,
which runs on.  A daemon may carry hypothetical mitigations (not libvirt's): a timeout on
its calls to other daemons (:func:`remote`), a pool of its own for the calls it forwards,
and caps on how many of its workers run one driver's calls (:func:`server_job`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import simpy

from sim.engine.jobs import NO_HOLD, Hold, JobRules, SweepRT, begin_job, monitor, sweep
from sim.engine.primitives import Slots

if TYPE_CHECKING:
    from sim.engine.daemon import DaemonRT, ServerRT
    from sim.engine.simulation import Simulation
    from sim.schema.topology import Server

Result = tuple[bool, str]
OK: Result = (True, "")


@dataclass(slots=True, eq=False)
class NestedRT:
    """A compiled nested call of a procedure: ``for_each`` object kind to fan out over (``None``:
    the same target), and whether its failure is ignored.
    """

    proc: ProcRT
    for_each: str | None
    ignore: bool


@dataclass(slots=True, eq=False)
class ProcRT:
    """A catalog procedure compiled for the hot path."""

    name: str
    driver: str | None
    target_kind: str | None
    high: bool
    sample_s: Callable[[], float]
    lock_driver: bool
    lock_object: bool
    calls: list[NestedRT]
    guest_effect: str
    operation: str
    job: str | None = None
    monitor: bool = False
    sweep: SweepRT | None = None
    rules: JobRules | None = None
    nowait: bool = False
    on_cpu: bool = False  # its service time is work on the host's CPU (sim.engine.cpu)
    plain: bool = False  # set by :meth:`seal`

    def seal(self) -> None:
        """Mark the procedure *plain* once compiled: no nested calls, job, monitor work,
        sweep, CPU work, guest effect or driver lock.  A plain procedure's execution is
        inlined in :func:`server_job` (the same events in the same order as :func:`execute`,
        one generator frame fewer per call)."""
        self.plain = not (
            self.calls
            or self.job is not None
            or self.monitor
            or self.sweep is not None
            or self.on_cpu
            or self.guest_effect != "none"
            or self.lock_driver
        )


class ConnRT:
    """One client-side connection to one daemon process generation.

    Keepalive (LIBVIRT-FACTS 10.3) is the connection's: with ``ka_s`` (the client's
    ``interval * (count + 1)``) the connection dies after that long without a packet from
    the daemon, idle or not, which happens while the daemon's event loop is stuck.  The
    daemon's own keepalive (always on: libvirt's client library asks for it) drops a client
    whose socket it has stopped reading: at ``max_client_requests`` calls in flight it reads
    nothing more from that client, keepalive answers included.  ``waiters`` are the client
    processes waiting on a call on this connection; a dead connection interrupts them.
    """

    __slots__ = (
        "daemon",
        "forwards",
        "full_since",
        "gen",
        "is_open",
        "ka_s",
        "label",
        "opened_at",
        "owner",
        "server",
        "slots",
        "waiters",
    )

    def __init__(
        self,
        daemon: DaemonRT,
        server: ServerRT,
        label: str,
        owner: DaemonRT | None = None,
        ka_s: float | None = None,
    ) -> None:
        self.owner = owner
        if owner is not None:
            owner.outbound.add(self)
        self.daemon = daemon
        self.gen = daemon.gen
        self.server = server
        self.slots = Slots(daemon.env, server.spec.max_client_requests)
        self.forwards: dict[str, ConnRT] = {}
        self.is_open = True
        self.label = label
        self.ka_s = ka_s
        self.opened_at = daemon.env.now
        self.waiters: dict[simpy.Process, None] = {}
        self.full_since: float | None = None
        if ka_s is not None:
            daemon.ka_conns[self] = None

    @property
    def usable(self) -> bool:
        """Whether a call can be sent: the connection is open and its daemon process generation
        still alive.
        """
        d = self.daemon
        return self.is_open and d.alive and d.gen == self.gen

    def close(self) -> None:
        """Close the connection (idempotent): free its client slot in a live daemon and close the
        connections forwarded on its behalf.
        """
        if not self.is_open:
            return
        self.is_open = False
        if self.owner is not None:
            self.owner.outbound.discard(self)
        d = self.daemon
        if self.ka_s is not None:
            d.ka_conns.pop(self, None)
        if d.alive and d.gen == self.gen:
            d.closed(self.server)
        forwards, self.forwards = self.forwards, {}
        for conn in forwards.values():
            conn.close()

    def die(self, why: str) -> None:
        """A keepalive timeout: the connection closes and its waiting callers fail."""
        if not self.is_open:
            return
        self.daemon.sim.collector.emit(
            self.daemon.env.now, self.daemon.name, "connection-dropped", client=self.label, why=why
        )
        self.close()
        self.slots.flush()  # unread requests: each finds the connection closed
        waiters, self.waiters = self.waiters, {}
        for proc in waiters:
            if proc.is_alive:
                proc.interrupt(why)

    def reading_stopped(self) -> None:
        """Every request slot is taken: the daemon stops reading this client; its keepalive
        drops the client if no reply frees a slot within its timeout."""
        spec: Server = self.server.spec
        if self.full_since is not None or spec.keepalive_interval_s <= 0:
            return
        since = self.full_since = self.daemon.env.now
        timeout = spec.keepalive_interval_s * (spec.keepalive_count + 1)
        env = self.daemon.env

        def check(_: simpy.Event) -> None:
            if self.full_since != since or not self.usable:
                return
            if self.daemon.loop_block is not None:  # a stuck loop runs no timers
                self.full_since = None
                return
            self.die("keepalive")

        cast(list[Any], env.timeout(timeout).callbacks).append(check)


def open_conn(
    sim: Simulation,
    uri: str,
    label: str,
    exclude: DaemonRT | None = None,
    ka_s: float | None = None,
) -> Generator[simpy.Event, Any, ConnRT | str]:
    """Connect to the first existing socket path of ``uri``'s route; returns the connection
    or an error string (``enoent``: no path exists; ``econnrefused``; ``eof``).

    ``exclude`` is the daemon opening the connection (a daemon never connects to itself); it
    owns the connection, which closes when that daemon's process ends.  When the catalog
    declares a handshake (authentication and ``connectOpen``: RPCs served by a worker of the
    daemon, LIBVIRT-FACTS 10.3), it runs on the new connection before it is returned."""
    for sock, daemon in sim.routes[uri]:
        if daemon is not exclude and sock.path_present:
            break
    else:
        return "enoent"
    if not sock.listening:
        return "econnrefused"
    event = daemon.connect(sock)
    if event is not None:
        err = yield event
        if err:
            return str(err)
    if not daemon.alive:
        return "eof"
    conn = ConnRT(daemon, daemon.server_for(sock), label, exclude, ka_s)
    daemon.opened()
    handshake = sim.handshake
    if handshake is not None:
        try:
            ok, err = yield from server_job(sim, conn, handshake, None)
        except simpy.Interrupt:
            conn.close()
            raise
        if not ok:
            conn.close()
            return err
    return conn


def server_job(
    sim: Simulation, conn: ConnRT, proc: ProcRT, target: str | None
) -> Generator[simpy.Event, Any, Result]:
    """The daemon side of one call: slot, event loop, worker, dispatch, reply.

    An interrupt (the daemon died, or the client's keepalive gave up) may come while the job
    waits in a queue: the wait is cancelled, so nothing is granted to a job that is gone.
    """
    d = conn.daemon
    if not (conn.is_open and d.alive and d.gen == conn.gen):
        return False, "eof"
    me = cast(simpy.Process, sim.env.active_process)
    d.jobs[me] = None
    forwarded = proc.driver is not None and proc.driver not in d.drivers
    slots, pool = conn.slots, conn.server.pool
    if forwarded and d.forward_pool is not None:
        pool = d.forward_pool
    cap = d.driver_caps.get(proc.driver) if d.driver_caps and proc.driver else None
    has_slot, has_cap, kind = False, False, -1
    obj_lock: Slots | None = None
    try:
        ev = slots.acquire()
        if ev is not None:
            yield from _wait_for(ev, slots)
        has_slot = True
        if not conn.is_open:  # dropped while the request was still unread
            return False, "eof"
        if slots.used >= slots.capacity:
            conn.reading_stopped()
        if d.loop_block is not None:
            yield d.loop_block
        if cap is not None:
            ev = cap.acquire()
            if ev is not None:
                yield from _wait_for(ev, cap)
            has_cap = True
            if not conn.is_open:  # its client left while it waited for the driver's cap
                return False, "eof"
        got = pool.acquire(proc.high)
        if not isinstance(got, int):
            got = yield from _wait_for(got, pool)
        kind = got
        if forwarded:
            result = yield from remote(sim, d, proc, target, conn.forwards)
        elif not proc.plain:
            result = yield from (
                run_operation(sim, d, proc, target)
                if proc.calls
                else execute(sim, d, proc, target, NO_CONNS)
            )
        else:  # execute() inlined: hang, initialisation, object lock, service time
            if d.hung_drivers or d.pending_init:
                yield from _driver_ready(d, proc)
            if proc.lock_object and target is not None:
                lock = d.lock((proc.target_kind, target))
                ev = lock.acquire()
                if ev is not None:
                    yield from _wait_for(ev, lock)
                obj_lock = lock
            delay = proc.sample_s()
            if d.slow:
                delay *= sim.slow_factor(d, proc)
            yield sim.env.timeout(delay)
            if obj_lock is not None:
                obj_lock.release()
                obj_lock = None
            result = OK
        pool.release(kind)
        if has_cap:
            cast(Slots, cap).release()
        slots.release()
        conn.full_since = None
        has_slot, has_cap, kind = False, False, -1
        if d.loop_block is not None:
            yield d.loop_block
        if result[0] and not conn.is_open:
            return False, "eof"  # the connection closed meanwhile: the reply is lost
        return result
    except simpy.Interrupt as exc:
        return False, str(exc.cause)
    finally:
        if obj_lock is not None:
            obj_lock.release()
        if kind >= 0:
            pool.release(kind)
        if has_cap:
            cast(Slots, cap).release()
        if has_slot:
            slots.release()
        d.jobs.pop(me, None)


FAST_PATH = True
"""Whether :func:`begin_plain` may grant calls (tests turn it off to check that the fast path
changes no event, draw or record)."""

Grant = tuple[int, "Slots | None", float]


def begin_plain(conn: ConnRT, proc: ProcRT, target: str | None, me: simpy.Process) -> Grant | None:
    """The fast path of :func:`server_job` for a client that runs the job in its own process
    (no timeout, no keepalive): when ``proc`` is plain, runs in this daemon and nothing would
    make it wait (a free request slot, worker and object lock; the event loop running; no
    driver hung or initialising; no driver cap), take all of it at once and draw the service
    time, exactly as :func:`server_job` would at this instant; returns the worker kind, the
    object lock taken and the delay, to pass to :func:`end_plain` after the delay.  ``None``:
    take the general path (nothing was taken or drawn).
    """
    d = conn.daemon
    if not (FAST_PATH and proc.plain and d.loop_block is None and conn.is_open and d.alive):
        return None
    if d.gen != conn.gen or d.hung_drivers or d.pending_init:
        return None
    driver = proc.driver
    if driver is not None and (driver not in d.drivers or driver in d.driver_caps):
        return None
    slots, pool = conn.slots, conn.server.pool
    if slots.used >= slots.capacity or not (pool.idle_normal or (proc.high and pool.idle_prio)):
        return None
    lock = None
    if proc.lock_object and target is not None:
        lock = d.lock((proc.target_kind, target))
        if lock.used:
            return None
    d.jobs[me] = None
    slots.used += 1
    if slots.used >= slots.capacity:
        conn.reading_stopped()
    kind: int = pool.acquire(proc.high)  # type: ignore[assignment]  # granted: checked above
    if lock is not None:
        lock.acquire()  # free: checked above
    delay = proc.sample_s()
    if d.slow:
        delay *= d.sim.slow_factor(d, proc)
    return kind, lock, delay


def end_plain(conn: ConnRT, grant: Grant) -> None:
    """Release what :func:`begin_plain` took, in :func:`server_job`'s order (the caller
    still waits for a stuck event loop before the reply, then leaves ``daemon.jobs``)."""
    kind, lock, _ = grant
    if lock is not None:
        lock.release()
    conn.server.pool.release(kind)
    conn.slots.release()
    conn.full_since = None


def _wait_for(event: simpy.Event, queue: Any) -> Generator[simpy.Event, Any, Any]:
    """Wait for a queued grant; on an interrupt, give the place (or the grant) back."""
    try:
        return (yield event)
    except simpy.Interrupt:
        queue.cancel(event)
        raise


def dispatch(
    sim: Simulation, d: DaemonRT, proc: ProcRT, target: str | None, conns: dict[str, ConnRT]
) -> Generator[simpy.Event, Any, Result]:
    """Run ``proc`` for ``target`` in daemon ``d``: locally when it hosts the procedure's driver,
    else forwarded (:func:`remote`); returns ``(ok, error)``.
    """
    if proc.driver is None or proc.driver in d.drivers:
        return (yield from execute(sim, d, proc, target, conns))
    return (yield from remote(sim, d, proc, target, conns))


def remote(
    sim: Simulation, d: DaemonRT, proc: ProcRT, target: str | None, conns: dict[str, ConnRT]
) -> Generator[simpy.Event, Any, Result]:
    """Forward ``proc`` from daemon ``d`` to the daemon hosting its driver, over ``d``'s
    cached connection for that driver's URI (opened on first use).

    With a forward timeout (a hypothetical mitigation) the call runs in a process of its
    own, which the calling worker leaves after the timeout (``forward-timeout``); the call
    runs on in the other daemon, as a client's abandoned call does."""
    limit = d.forward_timeout_s
    if limit is None:
        return (yield from _remote(sim, d, proc, target, conns))
    env = sim.env
    attempt = env.process(_bounded(sim, d, proc, target, conns))
    try:
        yield attempt | env.timeout(limit)
    except simpy.Interrupt:
        if attempt.is_alive:
            attempt.interrupt("eof")
        raise
    if attempt.triggered:
        return cast(Result, attempt.value)
    sim.collector.emit(env.now, d.name, "forward-timeout", procedure=proc.name)
    return False, "forward-timeout"


def _bounded(
    sim: Simulation, d: DaemonRT, proc: ProcRT, target: str | None, conns: dict[str, ConnRT]
) -> Generator[simpy.Event, Any, Result]:
    """A forwarded call its caller may leave: a dead caller (its daemon died) ends it."""
    try:
        return (yield from _remote(sim, d, proc, target, conns))
    except simpy.Interrupt:
        return False, "eof"


def _remote(
    sim: Simulation, d: DaemonRT, proc: ProcRT, target: str | None, conns: dict[str, ConnRT]
) -> Generator[simpy.Event, Any, Result]:
    assert proc.driver is not None
    uri = sim.driver_uri[proc.driver]
    conn = conns.get(uri)
    if conn is None or not conn.usable:
        if conn is not None:
            # a dead cached connection is not reopened: libvirt has no reconnect logic
            # there (LIBVIRT-FACTS 4.1); the caller sees the error until it reconnects
            return False, "eof"
        opened = yield from open_conn(sim, uri, d.name, exclude=d)
        if isinstance(opened, str):
            return False, opened
        conn = conns[uri] = opened
    # the forwarding worker waits on the connection: if the other daemon drops it, the
    # call fails at once (the job there runs on)
    me = cast(simpy.Process, sim.env.active_process)
    conn.waiters[me] = None
    try:
        result: Result = yield sim.env.process(server_job(sim, conn, proc, target))
    finally:
        conn.waiters.pop(me, None)
    return result


def execute(
    sim: Simulation, d: DaemonRT, proc: ProcRT, target: str | None, conns: dict[str, ConnRT]
) -> Generator[simpy.Event, Any, Result]:
    """Run ``proc`` inside daemon ``d``: driver hang, driver lock, object lock, job, nested
    calls (under the object's lock and job), sweep, own work (monitor work lets go of the
    object's lock).  A stop kills the guest's process first, then takes its job (libvirt's
    ``qemuProcessBeginStopJob``), so a call stuck in that guest's monitor ends."""
    if d.hung_drivers or d.pending_init:
        yield from _driver_ready(d, proc)
    driver_lock = obj_lock = None
    hold, slot = NO_HOLD, None
    try:
        if proc.lock_driver:
            lock = d.lock(proc.driver)
            ev = lock.acquire()
            if ev is not None:
                yield from _wait_for(ev, lock)
            driver_lock = lock
        effect = proc.guest_effect
        if target is not None and (proc.lock_object or proc.job is not None):
            key = (proc.target_kind, target)
            if proc.lock_object:
                lock = d.lock(key)
                ev = lock.acquire()
                if ev is not None:
                    yield from _wait_for(ev, lock)
                if proc.job is None and not proc.monitor:
                    obj_lock = lock  # held to the end: no need to track letting go
                else:
                    hold = Hold(lock)
                    hold.held = True
            if effect == "stop":
                sim.guests.kill_process(target)
            if proc.job is not None:
                assert proc.rules is not None
                job_slot = d.job_slot(key)
                err = yield from begin_job(sim, job_slot, proc.job, proc.rules, hold, proc.nowait)
                if err:
                    return False, err
                slot = job_slot
        if effect == "start" and not sim.guests.begin_start(target, d):
            return False, "invalid-state"
        result = (yield from nested(sim, d, proc, target, conns)) if proc.calls else OK
        if result[0]:
            if proc.sweep is not None:
                assert proc.rules is not None
                yield from sweep(sim, d, proc.sweep, proc.rules, proc.nowait)
            delay = proc.sample_s()
            if d.slow:
                delay *= sim.slow_factor(d, proc)
            if proc.monitor and target is not None:
                err = yield from monitor(sim, target, delay, hold, proc.on_cpu)
                if err:
                    result = False, err
            elif proc.on_cpu:
                yield from sim.cpu.run(delay)
            else:
                yield sim.env.timeout(delay)
        if effect != "none" and not sim.guests.end_effect(effect, target, result[0], d):
            result = False, "eof"  # the guest's process was killed during its start
        return result
    finally:
        if slot is not None:
            slot.release(str(proc.job))
        if obj_lock is not None:
            obj_lock.release()
        hold.drop()
        if driver_lock is not None:
            driver_lock.release()


def _driver_ready(d: DaemonRT, proc: ProcRT) -> Generator[simpy.Event, Any, None]:
    """Wait while ``proc``'s driver is hung in ``d``, then until its initialisation ends."""
    if proc.driver is None:
        return
    hang = d.hung_drivers.get(proc.driver)
    if hang is not None:
        yield hang
    init = d.pending_init.get(proc.driver)
    if init is not None:
        yield init


def nested(
    sim: Simulation, d: DaemonRT, proc: ProcRT, target: str | None, conns: dict[str, ConnRT]
) -> Generator[simpy.Event, Any, Result]:
    """Run ``proc``'s nested calls in order, each fanned out over ``for_each`` objects; stop at
    the first failure that is not ignored and return it prefixed with the call's name.
    """
    for call in proc.calls:
        targets = [target] if call.for_each is None else sim.refs(target, call.for_each)
        for obj in targets:
            result = yield from dispatch(sim, d, call.proc, obj, conns)
            if not result[0] and not call.ignore:
                return False, f"{call.proc.name}: {result[1]}"
    return OK


NO_CONNS: dict[str, ConnRT] = {}
"""Shared by procedures without nested calls, which never open a connection (never written)."""


def run_operation(
    sim: Simulation, d: DaemonRT, proc: ProcRT, target: str | None
) -> Generator[simpy.Event, Any, Result]:
    """Execute ``proc`` with its own connections to other daemons: a driver's nested calls
    open a connection per operation (``virGetConnectNetwork()`` and its siblings open one
    unless a test overrides the thread-local), closed when the operation ends.  Only calls
    the dispatcher forwards use the client connection's cached ones (LIBVIRT-FACTS 4.1)."""
    conns: dict[str, ConnRT] = {}
    try:
        return (yield from execute(sim, d, proc, target, conns))
    finally:
        for conn in list(conns.values()):
            conn.close()


def run_internal(
    sim: Simulation, d: DaemonRT, proc: ProcRT, target: str | None
) -> Generator[simpy.Event, Any, Result]:
    """An operation the daemon runs on its own (autostart, reconnect): no worker."""
    me = cast(simpy.Process, sim.env.active_process)
    d.jobs[me] = None
    try:
        return (yield from run_operation(sim, d, proc, target))
    except simpy.Interrupt:
        return False, "eof"
    finally:
        d.jobs.pop(me, None)
