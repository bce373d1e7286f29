"""Guests (LIBVIRT-FACTS 4.2, 5a).

A guest is a process.  With the host's ``guest_scope: machine`` (the default) it lives in
its own machine scope and survives its daemon; with ``guest_scope: daemon`` it stays in the
cgroup of the daemon that started it (``cgroup``), and the unit's ``KillMode=`` decides
whether it dies when that daemon's main process ends (:meth:`Manager.cgroup_emptied`).
Its life is also at risk when a daemon that hosts its driver starts: the daemon
reconnects to each guest on its own thread (no RPC worker); a guest caught mid-start is
killed, and so is a guest whose reconnect procedure fails (a required nested call fails).
Autostart runs once per boot per driver (the ``autostarted`` marker).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from sim.engine.rpc import run_internal

if TYPE_CHECKING:
    from sim.engine.daemon import DaemonRT
    from sim.engine.simulation import Simulation
    from sim.model.resolved import GuestSpec

STOPPED, STARTING, RUNNING, DEAD = "stopped", "starting", "running", "dead"
INTERNAL = "(internal)"
"""The client name of operations a daemon runs on its own (reconnect, autostart)."""


class GuestRT:
    """One guest.  ``monitor_block`` is ``None`` while its process answers its monitor, a
    pending event while the monitor is hung (its value, ``""``, comes when it answers
    again), or an event that already carries ``"eof"`` once the process is gone."""

    __slots__ = ("cgroup", "monitor_block", "name", "spec", "state")

    def __init__(self, spec: GuestSpec, state: str) -> None:
        self.spec = spec
        self.name = spec.name
        self.state = state
        self.monitor_block: simpy.Event | None = None
        self.cgroup: str | None = None  # the daemon whose cgroup holds it (no machine scope)

    @property
    def alive(self) -> bool:
        """Whether the guest's process exists (running or starting)."""
        return self.state in (RUNNING, STARTING)


class Guests:
    """The guests of one replication, by name, and what happens to them.

    Their state changes are traced and passed to the probes.  With a steady start the guests marked
    running begin running (and autostart counts as done); otherwise all begin stopped.
    """

    def __init__(self, sim: Simulation, steady: bool) -> None:
        self.sim = sim
        self.env = sim.env
        self.by_name: dict[str, GuestRT] = {}
        host = sim.workload.workload.doc.host
        self.in_daemon_cgroup = host is not None and host.guest_scope == "daemon"
        for spec in sim.workload.guests:
            state = RUNNING if (steady and spec.running) else STOPPED
            guest = self.by_name[spec.name] = GuestRT(spec, state)
            if state == RUNNING and self.in_daemon_cgroup:
                guest.cgroup = sim.system.host_of[spec.driver]
        self.all = [self.by_name[n] for n in sorted(self.by_name)]
        self.autostarted: set[str] = set(sim.guest_drivers) if steady else set()
        self.autostart_done: dict[str, float] = {}
        self.reconnect_span: dict[tuple[str, int], list[float]] = {}  # (daemon, gen): ready, end

    def _set(self, guest: GuestRT, state: str, **data: Any) -> None:
        guest.state = state
        if state == STARTING:
            guest.monitor_block = None
        elif state in (STOPPED, DEAD):
            self._process_gone(guest)
        if state == RUNNING and guest.spec.autostart:
            self.autostart_done.setdefault(guest.name, self.env.now)
        self.sim.collector.emit(self.env.now, guest.name, state, **data)
        self.sim.probes.guest_changed(guest)

    # ----------------------------------------------------------- effects of procedures
    def begin_start(self, target: str | None, d: DaemonRT) -> bool:
        """A start procedure begins on guest ``target`` in daemon ``d``: a stopped guest becomes
        starting (``False`` if there is no such stopped guest).
        """
        guest = self.by_name.get(target or "")
        if guest is None or guest.state != STOPPED:
            return False
        guest.cgroup = d.name if self.in_daemon_cgroup else None
        self._set(guest, STARTING, daemon=d.name)
        return True

    def end_effect(self, effect: str, target: str | None, ok: bool, d: DaemonRT) -> bool:
        """Apply a start's or stop's outcome; ``False`` when a start succeeded on a guest
        whose process was killed meanwhile (a destroy during the start): it failed."""
        guest = self.by_name.get(target or "")
        if guest is None:
            return True
        if effect == "start" and guest.state == STARTING:
            block = guest.monitor_block
            killed = block is not None and block.triggered
            self._set(guest, RUNNING if ok and not killed else STOPPED)
            return not (ok and killed)
        if effect == "stop" and ok and guest.alive:
            self._set(guest, STOPPED, by=d.name)
        return True

    # ----------------------------------------------------------- the guest's own process
    def _process_gone(self, guest: GuestRT) -> None:
        block = guest.monitor_block
        if block is not None and block.triggered:
            return
        gone = self.env.event()
        gone.succeed("eof")
        guest.monitor_block = gone
        if block is not None:
            block.succeed("eof")

    def kill_process(self, target: str | None) -> None:
        """A stop kills the guest's process before it waits for the guest's job: calls
        stuck in its monitor end with ``eof``."""
        guest = self.by_name.get(target or "")
        if guest is not None and guest.state in (RUNNING, STARTING):
            self._process_gone(guest)

    def hang(self, guest: GuestRT, scope: str) -> bool:
        """The guest's process stops (SIGSTOP) or its monitor stops answering: every
        monitor call on it blocks.  Both scopes look the same to the daemon."""
        if guest.state != RUNNING or guest.monitor_block is not None:
            return False
        guest.monitor_block = self.env.event()
        self.sim.collector.emit(self.env.now, guest.name, "hung", scope=scope)
        return True

    def unhang(self, guest: GuestRT) -> None:
        """A hung guest answers again: the monitor calls waiting on it proceed."""
        block = guest.monitor_block
        if block is not None and not block.triggered:
            guest.monitor_block = None
            block.succeed("")
            self.sim.collector.emit(self.env.now, guest.name, "answers")

    def kill(self, guest: GuestRT, reason: str, control: bool = False) -> None:
        """The guest's process dies for ``reason``; recorded as lost, or as killed by a control
        (``control``: the fault itself, not a consequence).
        """
        if not guest.alive:
            return
        self._set(guest, DEAD, reason=reason)
        if control:
            self.sim.collector.control_killed[guest.name] = self.env.now
        else:
            self.sim.collector.lost.setdefault(guest.name, (self.env.now, reason))

    def kill_cgroup(self, d: DaemonRT, reason: str) -> None:
        """Every live guest in ``d``'s cgroup dies (lost)."""
        for guest in self.all:
            if guest.alive and guest.cgroup == d.name:
                self.kill(guest, reason)

    # ----------------------------------------------------------- daemon life
    def inhibits(self, d: DaemonRT) -> bool:
        """Running guests of an inhibiting driver hosted by ``d`` keep it from idle exit."""
        drivers = d.drivers & self.sim.inhibiting_drivers
        return bool(drivers) and any(g.alive and g.spec.driver in drivers for g in self.all)

    def daemon_started(self, d: DaemonRT) -> None:
        """Daemon ``d`` is ready: for each guest-hosting driver it hosts, reconnect to its live
        guests and run autostart once.

        A guest caught starting is killed; each other live guest gets a reconnect process of its own
        when the driver has a reconnect procedure.
        """
        for driver in sorted(d.drivers & set(self.sim.guest_drivers)):
            reconnect = self.sim.reconnect_proc.get(driver)
            for guest in self.all:
                if guest.spec.driver != driver or not guest.alive:
                    continue
                if guest.state == STARTING:
                    self.kill(guest, "caught mid-start at reconnect")
                elif reconnect is not None:
                    self.reconnect_span.setdefault((d.name, d.gen), [self.env.now, self.env.now])
                    self.env.process(self._reconnect(d, guest, reconnect))
            if driver not in self.autostarted:
                self.autostarted.add(driver)
                self.env.process(self._autostart(d, driver))

    def _reconnect(self, d: DaemonRT, guest: GuestRT, proc: Any) -> Generator[Any, Any, None]:
        gen, t0 = d.gen, self.env.now
        ok, err = yield from run_internal(self.sim, d, proc, guest.name)
        self.sim.record_call(t0, INTERNAL, proc, ok, err)
        span = self.reconnect_span[(d.name, gen)]
        span[1] = max(span[1], self.env.now)
        if not ok and d.gen == gen and d.alive and guest.state == RUNNING:
            self.kill(guest, f"reconnect failed: {err}")

    def _autostart(self, d: DaemonRT, driver: str) -> Generator[simpy.Event, Any, None]:
        start = self.sim.start_proc
        for guest in self.all:
            if guest.spec.driver == driver and guest.spec.autostart and guest.state == STOPPED:
                t0 = self.env.now
                ok, err = yield from run_internal(self.sim, d, start, guest.name)
                self.sim.record_call(t0, INTERNAL, start, ok, err)
                if not d.alive:
                    return
