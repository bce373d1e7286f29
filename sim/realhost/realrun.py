"""Real runs: an experiment's scenarios executed against the testbed.

Clients and the probe agent are threads with their own connections (as the engine's
sessions: persistent clients make each kind of call from one thread, per-call clients open a
connection per call, the probe agent has one connection per guest); a timeout abandons the
call on the client side only (the daemon keeps serving it).  Faults and actions run on a
schedule.  Every call is recorded (start, end, ok, error); the metrics are computed by the
engine's own :func:`sim.experiment.metrics.compute` from a collector filled with what was
observed, so the definitions are the same as in simulated runs.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sim.engine.trace import CallLog, CallRecord, Collector
from sim.experiment.metrics import Window, compute
from sim.experiment.runner import defined
from sim.realhost import testbed as tb
from sim.realhost.lv import Caller, RealHostError, connect, ensure_event_loop, error_text, library
from sim.realhost.plan import Inputs, Plan, Step, guest_groups, probe_of, workload_guests
from sim.schema.realhost import RealHost
from sim.schema.workload import CallSpec, ClientDecl, ClientProfile, Probe

POLL_S = 0.1
DRAIN_S = 20.0


@dataclass
class Call:
    """One observed call (also a line of calls.jsonl)."""

    t_start: float
    t_end: float | None
    client: str
    procedure: str
    target: str | None
    ok: bool
    error: str

    def row(self) -> dict[str, Any]:
        """The call as a line of ``calls.jsonl``, with its latency in ms (``None`` if it never
        ended).
        """
        return self.__dict__ | {
            "latency_ms": None
            if self.t_end is None
            else round((self.t_end - self.t_start) * 1000, 3)
        }


class Clock:
    """Seconds since the start of the replication, on the monotonic clock."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> float:
        """Seconds since the clock was made."""
        return time.monotonic() - self.t0

    def sleep_until(self, t: float, stop: threading.Event) -> bool:
        """Sleep until ``t``; False if the run is stopping."""
        return not stop.wait(max(0.0, t - self.now()))


@dataclass
class Run:
    """The shared state of one replication."""

    host: RealHost
    inputs: Inputs
    paths: tb.Paths
    plan: Plan
    probe: Probe
    rng: random.Random
    clock: Clock = field(default_factory=Clock)
    stop: threading.Event = field(default_factory=threading.Event)
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    unmanageable: dict[str, list[list[float | None]]] = field(default_factory=dict)
    lost: dict[str, tuple[float, str]] = field(default_factory=dict)
    control_killed: set[str] = field(default_factory=set)
    stopped_by_client: set[str] = field(default_factory=set)
    running_at_fault: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def uri(self, model_uri: str) -> str:
        """The testbed URI that serves ``model_uri`` in the topology that is up."""
        bed = self.host.topology(tb.State.read(self.paths).topology)
        return self.paths.uri(bed, model_uri)

    def record(self, call: Call) -> None:
        """Add an observed call (thread-safe)."""
        with self.lock:
            self.calls.append(call)

    def spawn(self, fn: Any, *args: Any, name: str = "") -> threading.Thread:
        """Start ``fn(*args)`` on a daemon thread of this run and keep it to join at the end."""
        t = threading.Thread(target=fn, args=args, daemon=True, name=name)
        t.start()
        self.threads.append(t)
        return t


# ------------------------------------------------------------------------------ sessions
class Session:
    """One client's connections by URI, with timeout, keepalive and reconnect delay."""

    def __init__(
        self,
        run: Run,
        label: str,
        timeout_s: float | None,
        keepalive: tuple[float, int] | None,
        reconnect_s: float,
    ) -> None:
        self.run, self.label, self.timeout_s = run, label, timeout_s
        self.keepalive, self.reconnect_s = keepalive, reconnect_s
        self.conns: dict[str, Any] = {}
        self.retry_at: dict[str, float] = {}

    def _open(self, uri: str) -> Any:
        conn = connect(self.run.uri(uri))
        if self.keepalive is not None:
            conn.setKeepAlive(int(self.keepalive[0]), self.keepalive[1])
        return conn

    def call(
        self,
        uri: str,
        proc: str,
        target: str | None,
        per_call: bool,
        before: tuple[str, ...] = (),
    ) -> tuple[bool, str] | None:
        """One command: the calls ``before`` then ``proc`` on one connection, the first
        failure ending it (as the engine's commands); None when skipped while waiting to
        reconnect."""
        run, t0 = self.run, self.run.clock.now()
        conn = None if per_call else self.conns.get(uri)
        if conn is not None and not conn.isAlive():
            self.conns.pop(uri, None)
            conn = None
        if conn is None:
            if t0 < self.retry_at.get(uri, 0.0):
                return None
            result = self._bounded(lambda: self._open(uri), t0)
            if not result[0]:
                self.retry_at[uri] = run.clock.now() + self.reconnect_s
                run.record(
                    Call(
                        t0,
                        run.clock.now(),
                        self.label,
                        proc,
                        target,
                        False,
                        f"connect: {result[1]}",
                    )
                )
                return False, f"connect: {result[1]}"
            conn = result[2]
            if not per_call:
                self.conns[uri] = conn
        caller = Caller(run.host, conn)
        ok, err, t_call = True, "", t0
        for step in (*before, proc):
            ok, err, _ = self._bounded(lambda step=step: caller.call(step, target), t0)
            run.record(Call(t_call, run.clock.now(), self.label, step, target, ok, err))
            t_call = run.clock.now()
            if not ok:
                if step != proc:
                    err = f"{step}: {err}"
                    run.record(Call(t0, t_call, self.label, proc, target, False, err))
                break
        if per_call and err != "timeout":
            _close(conn)
        return ok, err

    def _bounded(self, fn: Any, t0: float) -> tuple[bool, str, Any]:
        """Run ``fn`` in its own thread; give up after the timeout (the call runs on)."""
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["value"] = fn()
            except Exception as err:
                box["error"] = error_text(err)

        t = self.run.spawn(work, name=f"{self.label}-call")
        t.join(
            None if self.timeout_s is None else max(0.0, t0 + self.timeout_s - self.run.clock.now())
        )
        if t.is_alive():
            return False, "timeout", None
        if "error" in box:
            return False, box["error"], None
        return True, "", box.get("value")


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):
        conn.close()


# ------------------------------------------------------------------------------ clients
def _targets(run: Run, spec: CallSpec) -> list[str | None]:
    if spec.target == "none":
        return [None]
    if spec.target == "object":
        return [spec.object or spec.object_kind]
    groups = guest_groups(run.inputs.workload)
    names = [
        g
        for g in workload_guests(run.inputs.workload)
        if spec.group is None or groups[g] == spec.group
    ]
    if spec.target == "each-guest":
        return list(names)
    return [run.rng.choice(names)] if names else []


def _client_loop(
    run: Run, session: Session, spec: CallSpec, start_s: float, per_call: bool
) -> None:
    rng = random.Random(f"{session.label}:{spec.procedure}:{run.rng.random()}")
    period = spec.every_s
    first = (
        start_s
        if not spec.jitter
        else start_s
        + (rng.uniform(0, period) if period else rng.expovariate(spec.rate_per_s or 1.0))
    )
    if not run.clock.sleep_until(first, run.stop):
        return
    while not run.stop.is_set():
        if per_call:
            run.spawn(_tick, run, session, spec, True, name=f"{session.label}-tick")
        else:
            _tick(run, session, spec, False)
        gap = period if period else rng.expovariate(spec.rate_per_s or 1.0)
        if run.stop.wait(gap):
            return


def _tick(run: Run, session: Session, spec: CallSpec, per_call: bool) -> None:
    for target in _targets(run, spec):
        if run.stop.is_set() or spec.procedure is None:
            return
        if session.call(spec.uri, spec.procedure, target, per_call, tuple(spec.before)) is None:
            return


def start_clients(run: Run, decls: list[ClientDecl]) -> None:
    """Start one thread per call of each client in ``decls``; RealHostError for an unknown
    profile.
    """
    for decl in decls:
        profile = run.inputs.profiles.get(decl.profile)
        if profile is None:
            raise RealHostError(f"client {decl.name}: no profile {decl.profile!r}")
        for i in range(decl.count):
            label = decl.name if decl.count == 1 else f"{decl.name}-{i}"
            session = _session(run, label, profile, decl)
            for spec in profile.calls:
                run.spawn(
                    _client_loop,
                    run,
                    session,
                    spec,
                    decl.start_s,
                    profile.connection == "per-call",
                    name=label,
                )


def _session(run: Run, label: str, profile: ClientProfile, decl: ClientDecl) -> Session:
    timeout = (
        profile.timeout_s
        if decl.timeout_s is None
        else (None if decl.timeout_s == "none" else decl.timeout_s)
    )
    ka = profile.keepalive
    return Session(
        run,
        label,
        timeout,
        None if ka is None else (ka.interval_s, ka.count),
        profile.reconnect.delay_s,
    )


# ------------------------------------------------------------------------------ probes
def _probe_loop(run: Run, guest: str, phase: float, is_running: Any) -> None:
    spec = run.probe
    session = Session(run, "probe", spec.timeout_s, None, spec.reconnect.delay_s)
    opened: float | None = None
    if not run.clock.sleep_until(phase, run.stop):
        return
    while not run.stop.is_set():
        if not is_running(guest):
            break
        t0 = run.clock.now()
        result = session.call(spec.uri, spec.procedure, guest, False)
        good = result is not None and result[0] and run.clock.now() - t0 <= spec.slo_ms / 1000
        if not good and opened is None:
            opened = t0
        elif good and opened is not None:
            run.unmanageable.setdefault(guest, []).append([opened, run.clock.now()])
            opened = None
        if run.stop.wait(max(0.0, t0 + spec.every_s - run.clock.now())):
            break
    if opened is not None:
        run.unmanageable.setdefault(guest, []).append(
            [opened, min(run.clock.now(), run.inputs.exp.duration_s)]
        )


# ------------------------------------------------------------------------------ faults
def _daemon(run: Run, name: str) -> Any:
    bed = run.host.topology(tb.State.read(run.paths).topology)
    return bed, next(d for d in bed.daemons if d.name == name)


def do_step(run: Run, step: Step) -> None:
    """Carry out one planned step now: a signal to a daemon or guest, a pool block or unblock, a
    daemon stop or start, or an operator's lifecycle call.
    """
    paths = run.paths
    if step.what == "signal":
        _, d = _daemon(run, step.on)
        pid = tb.daemon_pid(paths, d)
        if pid is None:
            run.notes.append(f"{step.at_s:g} s: {step.on} not running for {step.arg}")
            return
        tb.signal_pid(pid, signal.Signals[step.arg])
    elif step.what == "guest-signal":
        pid = tb.guest_pid(run.host, paths, step.on)
        if pid is not None:
            if step.control_kill:
                run.control_killed.add(step.on)
            tb.signal_pid(pid, signal.Signals[step.arg])
    elif step.what in ("block", "unblock"):
        tb.set_blocked(paths, step.what == "block")
    elif step.what == "daemon-stop":
        _, d = _daemon(run, step.on)
        tb.stop_daemon(paths, d)
    elif step.what == "daemon-start":
        bed, d = _daemon(run, step.on)
        run.spawn(_start_daemon, run, bed, d, name="start")
    elif step.what == "guest-call":
        if step.arg == run.inputs.catalog.lifecycle.stop:
            run.stopped_by_client.add(step.on)
        session = Session(run, "operator", None, None, 0.0)
        run.spawn(
            session.call, step.note or run.probe.uri, step.arg, step.on, True, name="operator"
        )


def _start_daemon(run: Run, bed: Any, d: Any) -> None:
    try:
        tb.start_daemon(run.host, run.paths, bed, d)
    except RealHostError as err:
        run.notes.append(f"start {d.name}: {err}")


def _scheduler(run: Run) -> None:
    for step in run.plan.steps:
        if not run.clock.sleep_until(step.at_s, run.stop):
            return
        do_step(run, step)


def _watcher(run: Run, alive: dict[str, bool]) -> None:
    fault_at = run.plan.fault_at if run.plan.fault_at is not None else run.inputs.exp.warmup_s
    snap = False
    while not run.stop.is_set():
        now = run.clock.now()
        for g in list(alive):
            up = tb.guest_pid(run.host, run.paths, g) is not None
            if (
                alive[g]
                and not up
                and g not in run.control_killed
                and g not in run.stopped_by_client
            ):
                run.lost[g] = (now, "guest process gone")
            alive[g] = up
        if not snap and now >= fault_at:
            run.running_at_fault = sorted(g for g, up in alive.items() if up)
            snap = True
        run.stop.wait(POLL_S)


# ------------------------------------------------------------------------------ replication
def reset(host: RealHost, paths: tb.Paths, guests: list[str]) -> None:
    """Back to the steady state: faults lifted, daemons up, the workload's guests running."""
    tb.set_blocked(paths, False)
    bed = host.topology(tb.State.read(paths).topology)
    for d in bed.daemons:
        pid = tb.daemon_pid(paths, d)
        if pid is not None:
            tb.signal_pid(pid, signal.SIGCONT)
    for g in guests:
        pid = tb.guest_pid(host, paths, g)
        if pid is not None:
            tb.signal_pid(pid, signal.SIGCONT)
    for d in bed.daemons:
        tb.start_daemon(host, paths, bed, d)
    lib = library()
    conn = connect(paths.uri(bed, next(iter(bed.uris))))
    try:
        for g in guests:
            try:
                dom = conn.lookupByName(g)
            except lib.libvirtError:
                raise RealHostError(
                    f"the testbed has no guest {g}: run `testbed up --guests N`"
                ) from None
            if not dom.isActive():
                dom.create()
    finally:
        conn.close()


def categories(calls: list[Call], catalog: Any) -> list[CallRecord]:
    """The finished calls as the engine's call records, with the procedure's driver and operation
    from the catalog.
    """
    procs = {p.name: p for p in catalog.procedures}
    out = []
    for c in calls:
        if c.t_end is None:
            continue
        p = procs.get(c.procedure)
        driver, op = (p.driver, p.operation) if p is not None else ("", "query")
        out.append(CallRecord(c.t_start, c.t_end, c.client, c.procedure, driver, op, c.ok, c.error))
    return out


def run_replication(
    host: RealHost, inputs: Inputs, paths: tb.Paths, plan: Plan, rep: int, seed: int
) -> tuple[dict[str, Any], list[Call], list[str]]:
    """Run replication ``rep`` of the plan's scenario on the testbed for the experiment's
    ``duration_s`` (wall-clock seconds).

    Returns the run's record (the engine's metrics), every observed call, and notes.  The testbed is
    reset to the steady state before and after; calls that end after the duration do not count.
    """
    exp, sc = inputs.exp, plan.scenario
    guests = workload_guests(inputs.workload)
    all_guests = sorted({*guests, *(s.on for s in plan.steps if s.what.startswith("guest"))})
    reset(host, paths, all_guests)
    ensure_event_loop()
    rng = random.Random(f"{seed}:{sc.name}:{rep}")
    run = Run(host, inputs, paths, plan, probe_of(inputs.workload, sc), rng)
    alive = {g: tb.guest_pid(host, paths, g) is not None for g in all_guests}
    run.spawn(_watcher, run, alive, name="watcher")
    start_clients(run, [*inputs.workload.clients, *sc.clients])
    for g in guests:
        phase = rng.uniform(0, run.probe.every_s)
        run.spawn(
            _probe_loop, run, g, phase, lambda name: alive.get(name, False), name=f"probe-{g}"
        )
    run.spawn(_scheduler, run, name="scheduler")
    run.stop.wait(exp.duration_s)
    end = run.clock.now()
    run.stop.set()
    with run.lock:
        calls = [c for c in run.calls if c.t_end is not None and c.t_end <= end]
    reset(host, paths, all_guests)  # lifts the faults so blocked calls can finish
    deadline = time.monotonic() + DRAIN_S
    for t in run.threads:
        t.join(max(0.0, deadline - time.monotonic()))
    collector = Collector()
    collector.calls = CallLog(categories(calls, inputs.catalog))
    collector.unmanageable = {
        g: [[a, min(b or end, exp.duration_s)] for a, b in iv] for g, iv in run.unmanageable.items()
    }
    collector.lost = run.lost
    fault_at = plan.fault_at if plan.fault_at is not None else exp.warmup_s
    fault_end = plan.fault_end if plan.fault_end is not None else exp.warmup_s
    window = Window(exp.warmup_s, exp.duration_s, fault_at, fault_end)
    values, undefined = defined(compute(collector, run.running_at_fault, window))
    record: dict[str, Any] = {
        "scenario": sc.name,
        "topology": inputs.topology.doc.name,
        "replication": rep,
        "seed": seed,
        "backend": "real",
        "metrics": values,
        "lost": {g: why for g, (_, why) in sorted(run.lost.items())},
    }
    if undefined:
        record["undefined"] = undefined
    return record, run.calls, run.notes
