"""Management clients and per-guest probes (DESIGN 3 "workloads", 4).

A *persistent* client keeps one connection per URI and makes each kind of call from its own
thread: the next call waits for the previous one (a blocked call blocks that thread).  A
*per-call* client (virsh, a scraper) opens a connection for each call and closes it when the
call ends or times out: nothing stops such calls from piling up on a stuck daemon.

A timeout abandons the call on the client side only; the daemon's job runs on and keeps its
worker.  Keepalive (when the client enables it) detects a daemon whose event loop is stuck
``interval * (count + 1)`` seconds after it stopped answering (LIBVIRT-FACTS 3).

Probes are the measuring instrument: a monitoring agent calls the probe procedure for every
running guest every ``every_s``, over one connection per guest, so that one guest's stuck
calls cannot hold up the probes of another (a single shared connection would stall on its
own ``max_client_requests`` slots and measure the agent, not the daemon).  A guest is
unmanageable from the start of a probe that fails or misses the SLO until a probe succeeds
within it.  Cost: one short call per guest per period (5 calls/s for 50 guests every 10 s,
well under 1% of one worker), one connection per guest (which, like any client's, keeps an
idle daemon from exiting), and a timed-out probe keeps its worker until the daemon answers;
the agent makes no new probe of a guest while its previous one still runs in the daemon (the
guest stays unmanageable), so a stuck guest holds at most one worker through its probes.
(An agent that kept calling would fill its connection's ``max_client_requests``, be dropped
by the daemon's keepalive, reconnect and pile up more: the instrument would cause outages.)
"""

from __future__ import annotations

import random
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, cast

import simpy

from sim.engine.guests import RUNNING, STOPPED, GuestRT
from sim.engine.rpc import ConnRT, ProcRT, begin_plain, end_plain, open_conn, server_job

if TYPE_CHECKING:
    from sim.engine.simulation import Simulation
    from sim.schema.workload import CallSpec, ClientProfile


class Session:
    """The connections of one client (or of the probe agent), by URI.

    A *command* is an ordered list of calls on one connection (a ``virsh`` command: the
    handshake on a new connection, a lookup, the call): the first failure or timeout ends
    it, and the timeout bounds the whole command.  A command that ends early records its
    last call as failed too (the operation the user asked for did not happen).
    """

    def __init__(
        self,
        sim: Simulation,
        label: str,
        profile_timeout: float | None,
        keepalive_s: float | None,
        reconnect_s: float = 0.0,
    ) -> None:
        self.sim = sim
        self.env = sim.env
        self.label = label
        self.timeout = profile_timeout
        self.keepalive_s = keepalive_s
        self.reconnect_s = reconnect_s
        self.inline = profile_timeout is None and keepalive_s is None
        self.last_job: simpy.Process | None = None
        self.conns: dict[str, ConnRT] = {}
        self.retry_at: dict[str, float] = {}

    def _wait(self, job: simpy.Process, t0: float) -> Generator[simpy.Event, Any, str]:
        """Wait for ``job`` until the timeout (if any): ``""`` once it finished (its value is
        ``job.value``), else why the client gave up (``timeout``, or an interrupt's cause)."""
        env = self.env
        done = env.event()

        def fire(_: simpy.Event) -> None:
            if not done.triggered:
                done.succeed()

        cast(list[Any], job.callbacks).append(fire)
        if self.timeout is not None:
            timer = env.timeout(max(t0 + self.timeout - env.now, 0.0))
            cast(list[Any], timer.callbacks).append(fire)
        try:
            yield done
        except simpy.Interrupt as exc:
            return str(exc.cause)
        return "" if job.triggered else "timeout"

    def _connect(self, uri: str, t0: float) -> Generator[simpy.Event, Any, ConnRT | str]:
        opening = open_conn(self.sim, uri, self.label, ka_s=self.keepalive_s)
        if self.timeout is None:
            return (yield from opening)
        opener = self.env.process(opening)
        why = yield from self._wait(opener, t0)
        if why:
            cast(list[Any], opener.callbacks).append(_close_late)
            return why
        return cast(ConnRT | str, opener.value)

    def _conn(
        self, uri: str, per_call: bool, t0: float
    ) -> Generator[simpy.Event, Any, ConnRT | str | None]:
        """The connection for a command: cached, or opened now; ``None`` while the client
        waits to reconnect."""
        conn = None if per_call else self.conns.get(uri)
        if conn is not None and conn.usable:
            return conn
        if conn is not None:
            conn.close()
            del self.conns[uri]
            self.sim.collector.emit(t0, self.label, "disconnected", uri=uri)
        if self.env.now < self.retry_at.get(uri, 0.0):
            return None
        opened = yield from self._connect(uri, t0)
        if isinstance(opened, str):
            self.retry_at[uri] = self.env.now + self.reconnect_s
            return f"connect: {opened}"
        if not per_call:
            self.conns[uri] = opened
        return opened

    def _watched(
        self, conn: ConnRT, proc: ProcRT, target: str | None
    ) -> Generator[simpy.Event, Any, tuple[bool, str]]:
        """A call with keepalive and no timeout: the daemon's job in a process of its own
        (so that it runs on when the connection dies), the client waiting on it alone."""
        env = self.env
        me = cast(simpy.Process, env.active_process)
        job = self.last_job = env.process(server_job(self.sim, conn, proc, target))
        conn.waiters[me] = None
        try:
            return cast(tuple[bool, str], (yield job))
        except simpy.Interrupt as exc:
            return False, str(exc.cause)
        finally:
            conn.waiters.pop(me, None)

    def _on(
        self, conn: ConnRT, proc: ProcRT, target: str | None, t0: float
    ) -> Generator[simpy.Event, Any, tuple[bool, str]]:
        """One call on ``conn`` in a job process of its own, which the client abandons at
        its timeout (or when the connection dies) while the job runs on."""
        env = self.env
        me = cast(simpy.Process, env.active_process)
        job = self.last_job = env.process(server_job(self.sim, conn, proc, target))
        conn.waiters[me] = None
        try:
            why = yield from self._wait(job, t0)
        finally:
            conn.waiters.pop(me, None)
        return (False, why) if why else cast(tuple[bool, str], job.value)

    def command(
        self, uri: str, procs: list[ProcRT], target: str | None, per_call: bool
    ) -> Generator[simpy.Event, Any, tuple[bool, str] | None]:
        """Run ``procs`` in order on one connection; ``None`` if skipped because the client
        waits to reconnect."""
        t0 = self.env.now
        conn = None if per_call else self.conns.get(uri)
        if conn is None or not conn.usable:
            got = yield from self._conn(uri, per_call, t0)
            if got is None:
                return None
            if isinstance(got, str):
                self.sim.record_call(t0, self.label, procs[-1], False, got)
                return False, got
            conn = got
        ok, err = True, ""
        t_call = t0
        for i, proc in enumerate(procs):
            grant = None
            if self.inline:
                me: simpy.Process = self.env.active_process  # type: ignore[assignment]
                grant = begin_plain(conn, proc, target, me)
            if grant is not None:
                # server_job's fast path, in this process: nothing waits but the service
                d = conn.daemon
                try:
                    yield self.env.timeout(grant[2])
                    end_plain(conn, grant)
                    grant = None
                    if d.loop_block is not None:
                        yield d.loop_block
                    ok, err = (True, "") if conn.is_open else (False, "eof")
                except simpy.Interrupt as exc:
                    if grant is not None:
                        end_plain(conn, grant)
                    ok, err = False, str(exc.cause)
                finally:
                    d.jobs.pop(me, None)
                if ok:
                    self.sim.record_call(t_call, self.label, proc, True, "")
                    t_call = self.env.now
                    continue
            elif self.inline:
                # no timeout, no keepalive: the client never leaves the call, so the daemon's
                # job runs in the client's own process (it saves a process per call); if the
                # daemon drops the connection, an unread request fails at once and a
                # dispatched one when its job ends (its reply is lost)
                ok, err = yield from server_job(self.sim, conn, proc, target)
            elif self.timeout is None:
                ok, err = yield from self._watched(conn, proc, target)
            else:
                ok, err = yield from self._on(conn, proc, target, t0)
            self.sim.record_call(t_call, self.label, proc, ok, err)
            t_call = self.env.now
            if not ok:
                if i < len(procs) - 1:
                    err = f"{proc.name}: {err}"
                    self.sim.record_call(t0, self.label, procs[-1], False, err)
                break
        if per_call or err == "keepalive":
            conn.close()
        return ok, err

    def call(
        self, uri: str, proc: ProcRT, target: str | None, per_call: bool
    ) -> Generator[simpy.Event, Any, tuple[bool, str] | None]:
        """One call: a command of one step."""
        return (yield from self.command(uri, [proc], target, per_call))


def _close_late(event: simpy.Event) -> None:
    """A connection that completes after its client gave up is closed at once."""
    if isinstance(event.value, ConnRT):
        event.value.close()


class Client:
    """One instance of a client profile."""

    def __init__(self, sim: Simulation, name: str, profile: ClientProfile, start_s: float) -> None:
        self.sim = sim
        self.name = name
        self.profile = profile
        ka = profile.keepalive
        self.session = Session(
            sim,
            name,
            profile.timeout_s,
            None if ka is None else ka.interval_s * (ka.count + 1),
            reconnect_s=profile.reconnect.delay_s,
        )
        self.rng = sim.streams.get(f"client:{name}")
        self.per_call = profile.connection == "per-call"
        for i, spec in enumerate(profile.calls):
            sim.env.process(self._loop(spec, i, start_s))

    def _loop(self, spec: CallSpec, i: int, start_s: float) -> Generator[simpy.Event, Any, None]:
        env, rng = self.sim.env, self.rng
        assert spec.procedure is not None  # commands are expanded by the workload model
        steps = [self.sim.proc_for(n, spec.nowait) for n in [*spec.before, spec.procedure]]
        period = spec.every_s
        if not spec.jitter:
            first = start_s
        elif period:
            first = start_s + rng.uniform(0, period)
        else:
            first = start_s + rng.expovariate(spec.rate_per_s)  # type: ignore[arg-type]
        yield env.timeout(first)
        while True:
            if self.per_call:
                env.process(self._tick(spec, steps, rng))
            else:
                yield from self._tick(spec, steps, rng)
            gap = period if period else rng.expovariate(spec.rate_per_s)  # type: ignore[arg-type]
            yield env.timeout(gap)

    def _tick(
        self, spec: CallSpec, steps: list[ProcRT], rng: random.Random
    ) -> Generator[simpy.Event, Any, None]:
        for target in self.sim.pick_targets(spec, steps[-1], rng):
            result = yield from self.session.command(spec.uri, steps, target, self.per_call)
            if result is None:
                return


class Probes:
    """The monitoring agent: per-guest manageability from probe outcomes."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.env = sim.env
        spec = sim.workload.probe
        self.spec = spec
        self.steps = [sim.procs[n] for n in [*spec.before, spec.procedure]]
        self.slo_s = spec.slo_ms / 1000.0
        self.sessions = {
            g.name: Session(sim, "probe", spec.timeout_s, None, reconnect_s=spec.reconnect.delay_s)
            for g in sim.guests.all
        }
        self.open_since: dict[str, float] = {}
        self.loops: dict[str, simpy.Process] = {}
        self.rng = sim.streams.get("probe")
        self.phase = {g.name: self.rng.uniform(0, spec.every_s) for g in sim.guests.all}

    def start(self) -> None:
        """Start a probe loop for every guest already running."""
        for guest in self.sim.guests.all:
            self.guest_changed(guest)

    def guest_changed(self, guest: GuestRT) -> None:
        """Follow a guest's state: a running guest gets a probe loop; a stopped or dead one has
        its open unmanageable interval closed now.
        """
        if guest.state == RUNNING and guest.name not in self.loops:
            self.loops[guest.name] = self.env.process(self._loop(guest))
        elif guest.state in (STOPPED, "dead"):
            self._close(guest.name, self.env.now)

    def _loop(self, guest: GuestRT) -> Generator[simpy.Event, Any, None]:
        env, every = self.env, self.spec.every_s
        yield env.timeout(self.phase[guest.name])
        session = self.sessions[guest.name]
        while guest.state == RUNNING:
            t0 = env.now
            stuck = session.last_job
            if stuck is not None and stuck.is_alive:
                # the previous probe of this guest is still running in the daemon: the
                # agent does not pile another on it; the guest stays unmanageable
                good = False
            else:
                result = yield from session.command(self.spec.uri, self.steps, guest.name, False)
                good = result is not None and result[0] and env.now - t0 <= self.slo_s
            if guest.state != RUNNING:
                break
            if not good and guest.name not in self.open_since:
                self.open_since[guest.name] = t0
                self.sim.collector.probe_failures.setdefault(guest.name, []).append(t0)
            elif good:
                self._close(guest.name, env.now)
            yield env.timeout(max(0.0, t0 + every - env.now))
        del self.loops[guest.name]

    def _close(self, name: str, t: float) -> None:
        since = self.open_since.pop(name, None)
        if since is not None:
            self.sim.collector.unmanageable.setdefault(name, []).append([since, t])

    def finish(self, t: float) -> None:
        """Censoring: intervals still open at the end of the run are closed there."""
        for name in sorted(self.open_since):
            self.sim.collector.unmanageable.setdefault(name, []).append([self.open_since[name], t])
        self.open_since.clear()
