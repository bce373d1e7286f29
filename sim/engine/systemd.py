"""systemd service and socket units (LIBVIRT-FACTS 2, 6).

Implemented rules, each one a named test in ``tests/test_systemd_rules.py``:

- a start pulls in ``Requires=``, ``BindsTo=`` and ``Wants=`` units and stops ``Conflicts=``;
- ``Type=notify``: a service is *active* once its daemon has initialised, not when spawned;
- ``After=``: a start waits for units it is ordered after that are still activating;
- ``Restart=on-failure`` (or ``always``) restarts ``RestartSec`` after an unclean exit; a stop
  that systemd initiated never restarts; exit 0 (idle exit) is not a failure;
- the start limit: more than ``StartLimitBurst`` starts within ``StartLimitIntervalSec`` puts
  the service in ``failed`` (start-limit-hit); every socket that activates it fails too and,
  with ``RemoveOnStop=yes``, its path disappears;
- a socket whose service is down queues connections in its backlog and starts the service
  (socket activation), subject to the trigger limit;
- a unit stops when a unit it ``BindsTo=`` stops or fails, or when a unit it ``Requires=`` is
  stopped explicitly; a failed service waiting for its automatic restart is stopped too, which
  cancels the restart (systemd queues the stop job on a unit in ``auto-restart``);
- boot: the boot target pulls in the enabled units that are ``WantedBy=`` it (transitively);
- ``KillMode=`` when the main process ends (a stop, a crash, an idle exit): ``control-group``
  and ``mixed`` kill every other process left in the unit's cgroup, ``process`` and ``none``
  leave them (see :meth:`Manager.cgroup_emptied`).

Without a supervisor (topology ``supervisor: none``, LIBVIRT-FACTS 10.5) none of this runs:
the daemons of ``manual_start`` are started by hand at boot and bind their own sockets; there
is no socket activation, no automatic restart, no start limit, no dependency propagation and
no cgroup kill.  A dead daemon's socket file stays with nobody listening (clients get
``econnrefused``) unless the daemon removed it on a clean exit.  Admin ``start``, ``stop`` and
``restart`` act on the daemon as a person running (or killing) the binary would.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from sim.schema.topology import ServiceUnit, SocketUnit, TargetUnit

if TYPE_CHECKING:
    from sim.engine.daemon import DaemonRT
    from sim.engine.simulation import Simulation

INACTIVE, ACTIVATING, ACTIVE, FAILED = "inactive", "activating", "active", "failed"
LISTENING = "listening"


def rate_limited(events: deque[float], now: float, interval: float, burst: int) -> bool:
    """systemd's ratelimit: record an event at ``now`` unless ``burst`` events already
    happened within the last ``interval`` seconds (then True).  A zero interval or burst
    disables the limit."""
    if interval <= 0 or burst <= 0:
        return False
    while events and events[0] <= now - interval:
        events.popleft()
    if len(events) >= burst:
        return True
    events.append(now)
    return False


def _unix_only(sock: SocketRT) -> bool:
    """Every listening address of the socket is a filesystem path (a UNIX socket)."""
    return all(lst.path.startswith("/") for lst in sock.spec.listen)


class UnitRT:
    """Runtime state shared by every unit kind."""

    def __init__(self, sim: Simulation, spec: Any) -> None:
        self.sim = sim
        self.spec = spec
        self.name: str = spec.name
        self.state = INACTIVE
        self.result = ""

    def set_state(self, state: str, **data: Any) -> None:
        """Enter ``state`` and trace it with ``data``; no event when the state is unchanged."""
        if state != self.state:
            self.state = state
            self.sim.collector.emit(self.sim.env.now, self.name, state, **data)


class ServiceRT(UnitRT):
    """A service unit's runtime: its daemon, start history (for the start limit), sockets, and
    waiters for the start's outcome.
    """

    spec: ServiceUnit

    def __init__(self, sim: Simulation, spec: ServiceUnit) -> None:
        super().__init__(sim, spec)
        self.daemon: DaemonRT | None = None
        self.starts: deque[float] = deque()
        self.ready_waiters: list[simpy.Event] = []
        self.sockets: list[SocketRT] = []
        self.restart_token = 0
        self.restart_pending = False

    def start_limit_hit(self) -> bool:
        """Record a start; True if it exceeds the start limit."""
        spec = self.spec
        return rate_limited(
            self.starts, self.sim.env.now, spec.start_limit_interval_s, spec.start_limit_burst
        )

    def wait_active(self) -> simpy.Event:
        """An event whose value is ``True`` once the service is active, ``False`` if it fails or
        stops instead (already settled when the state is final).
        """
        event = self.sim.env.event()
        if self.state == ACTIVE:
            event.succeed(True)
        elif self.state in (FAILED, INACTIVE):
            event.succeed(False)
        else:
            self.ready_waiters.append(event)
        return event

    def settle_waiters(self) -> None:
        """Give every waiter the outcome of the start: ``True`` if active now."""
        waiters, self.ready_waiters = self.ready_waiters, []
        for event in waiters:
            event.succeed(self.state == ACTIVE)


class SocketRT(UnitRT):
    """A listening socket with ``Accept=no``; its backlog holds connections while the service
    is down or not accepting."""

    spec: SocketUnit

    def __init__(self, sim: Simulation, spec: SocketUnit) -> None:
        super().__init__(sim, spec)
        self.service: ServiceRT | None = None
        self.backlog: list[simpy.Event] = []
        self.triggers: deque[float] = deque()
        self.path_present = False

    @property
    def listening(self) -> bool:
        """Whether the socket is listening."""
        return self.state == LISTENING

    def trigger_limit_hit(self) -> bool:
        """Record a trigger; ``True`` if it exceeds the socket's trigger limit (burst per
        interval, seconds).
        """
        spec = self.spec
        return rate_limited(
            self.triggers, self.sim.env.now, spec.trigger_limit_interval_s, spec.trigger_limit_burst
        )

    def fail_backlog(self, reason: str) -> None:
        """Fail every connection waiting in the backlog with ``reason``."""
        backlog, self.backlog = self.backlog, []
        for event in backlog:
            event.succeed(reason)


class Manager:
    """The service manager: start and stop jobs over the unit runtimes of one simulation.

    Without a supervisor (``supervised`` false) it only keeps the books of what a person did
    by hand: start and stop a daemon, and its sockets open and close with it."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.units: dict[str, UnitRT] = {}
        for spec in sim.system.topology.doc.units:
            if isinstance(spec, ServiceUnit):
                self.units[spec.name] = ServiceRT(sim, spec)
            elif isinstance(spec, SocketUnit):
                self.units[spec.name] = SocketRT(sim, spec)
            elif isinstance(spec, TargetUnit):
                self.units[spec.name] = UnitRT(sim, spec)
        for unit in self.units.values():
            if isinstance(unit, SocketRT):
                service = self.units[unit.spec.service]
                assert isinstance(service, ServiceRT)
                unit.service = service
                service.sockets.append(unit)
        topo = sim.system.topology.doc
        self.supervised = topo.supervisor == "systemd"
        self.manual_start = [sim.system.daemons[name].unit for name in topo.manual_start]
        self.boot_services: list[str] = []  # the services the boot started
        self.bound_by: dict[str, list[str]] = {}
        self.required_by: dict[str, list[str]] = {}
        self.conflicted_by: dict[str, list[str]] = {}
        self.ordered_before: dict[str, list[str]] = {}
        for spec in sim.system.topology.doc.units:
            for other in spec.binds_to:
                self.bound_by.setdefault(other, []).append(spec.name)
            for other in spec.requires:
                self.required_by.setdefault(other, []).append(spec.name)
            for other in spec.conflicts:
                self.conflicted_by.setdefault(other, []).append(spec.name)
            for other in spec.before:
                self.ordered_before.setdefault(other, []).append(spec.name)

    # ------------------------------------------------------------------ queries
    def service(self, name: str) -> ServiceRT:
        """The service unit runtime ``name`` (it must be one)."""
        unit = self.units[name]
        assert isinstance(unit, ServiceRT)
        return unit

    def boot_set(self) -> list[str]:
        """Units the boot target pulls in: enabled ``WantedBy=`` links and hard/soft deps."""
        system = self.sim.system
        enabled = system.enabled
        wanted_by: dict[str, list[str]] = {}
        for spec in system.topology.doc.units:
            if spec.name in enabled:
                for target in spec.wanted_by:
                    wanted_by.setdefault(target, []).append(spec.name)
        todo, seen = [system.topology.doc.boot_target], set()
        while todo:
            name = todo.pop()
            if name in seen or name not in self.units:
                continue
            seen.add(name)
            spec = self.units[name].spec
            todo += wanted_by.get(name, []) + spec.requires + spec.binds_to + spec.wants
        return sorted(seen)

    # ------------------------------------------------------------------ jobs
    def boot(self) -> None:
        """Start the boot transaction: sockets and targets at once, services in order.
        Without a supervisor: start the ``manual_start`` daemons by hand, in their order."""
        if not self.supervised:
            for unit in self.manual_start:
                self.start(unit, "by hand")
            self.boot_services = list(self.manual_start)
            return
        names = self.boot_set()
        for name in names:
            if not isinstance(self.units[name], ServiceRT):
                self.start(name, "boot")
        for name in names:
            if isinstance(self.units[name], ServiceRT):
                self.start(name, "boot")
        self.boot_services = [
            n
            for n in names
            if isinstance(self.units[n], ServiceRT) and self.units[n].state != INACTIVE
        ]

    def start(self, name: str, reason: str) -> bool:
        """Queue a start job; False if refused (unknown, start limit, failed socket)."""
        unit = self.units.get(name)
        if unit is None:
            return False
        if not self.supervised:
            return isinstance(unit, ServiceRT) and self._start_by_hand(unit, reason)
        if isinstance(unit, SocketRT):
            return self._start_socket(unit, reason)
        if isinstance(unit, ServiceRT):
            return self._start_service(unit, reason)
        if unit.state != ACTIVE:
            unit.set_state(ACTIVE)
            self._pull_deps(unit, reason)
        return True

    def _pull_deps(self, unit: UnitRT, reason: str) -> list[str]:
        """Stop what ``unit`` conflicts with, start what it needs; the ``Requires=`` and
        ``BindsTo=`` units whose start was refused (their start limit is hit)."""
        spec = unit.spec
        for other in spec.conflicts + self.conflicted_by.get(unit.name, []):
            if other in self.units and self.units[other].state in (ACTIVE, ACTIVATING, LISTENING):
                self.stop(other, f"conflicts with {unit.name}")
        refused = []
        for other in spec.requires + spec.binds_to:
            if not self.start(other, f"{reason} via {unit.name}") and other in self.units:
                refused.append(other)
        for other in spec.wants:
            self.start(other, f"{reason} via {unit.name}")
        return refused

    def _start_socket(self, sock: SocketRT, reason: str) -> bool:
        if sock.listening:
            return True
        sock.set_state(LISTENING, reason=reason)
        sock.path_present = True
        self._pull_deps(sock, reason)
        return True

    def _start_service(self, svc: ServiceRT, reason: str) -> bool:
        if svc.state in (ACTIVE, ACTIVATING):
            return True
        svc.restart_pending = False
        if svc.start_limit_hit():
            self._start_limit_failure(svc)
            return False
        refused = self._pull_deps(svc, reason)
        if refused:
            # a start job whose required unit cannot start fails ("dependency"); the unit
            # stays as it was
            self.sim.collector.emit(self.sim.env.now, svc.name, "dependency-failed", on=refused)
            return False
        svc.result = ""
        svc.set_state(ACTIVATING, reason=reason)
        self.sim.env.process(self._run_start(svc))
        return True

    def _start_by_hand(self, svc: ServiceRT, reason: str) -> bool:
        """Run the daemon binary: it binds its own sockets (every UNIX path; a network
        listener only when the preset enables its socket, standing for ``--listen`` and
        ``listen_tcp``/``listen_tls``), which take connections into their backlog until it
        accepts.  No dependency, ordering or start limit."""
        if svc.state in (ACTIVE, ACTIVATING):
            return True
        svc.result = ""
        svc.set_state(ACTIVATING, reason=reason)
        enabled = self.sim.system.enabled
        for sock in svc.sockets:
            if sock.name in enabled or _unix_only(sock):
                sock.set_state(LISTENING, reason=f"bound by {svc.name}")
                sock.path_present = True
        daemon = self.sim.daemon_of_service.get(svc.name)
        if daemon is None:
            self.service_ready(svc)
        else:
            daemon.spawn()
        return True

    def _exited_unsupervised(self, svc: ServiceRT, code: int) -> None:
        """A daemon run by hand ended: its listening sockets close.  A clean exit removes
        the socket files (``virNetSocketDispose`` unlinks a UNIX path it bound); after a
        crash they stay, with nobody listening (connection refused)."""
        for sock in svc.sockets:
            if sock.listening:
                sock.set_state(INACTIVE, reason=f"{svc.name} exited")
                if code == 0 and _unix_only(sock):
                    sock.path_present = False
                sock.fail_backlog("econnrefused")

    def _run_start(self, svc: ServiceRT) -> Generator[simpy.Event, Any, None]:
        for other in svc.spec.after + self.ordered_before.get(svc.name, []):
            unit = self.units.get(other)
            if isinstance(unit, ServiceRT) and unit.state == ACTIVATING:
                yield unit.wait_active()
        if svc.state != ACTIVATING:
            return
        daemon = self.sim.daemon_of_service.get(svc.name)
        if daemon is None:
            self.service_ready(svc)
            return
        daemon.spawn()

    def service_ready(self, svc: ServiceRT) -> None:
        """The daemon sent READY=1 (or, without notify, was spawned)."""
        svc.set_state(ACTIVE)
        svc.settle_waiters()

    def _start_limit_failure(self, svc: ServiceRT) -> None:
        svc.result = "start-limit-hit"
        svc.set_state(FAILED, result=svc.result)
        svc.settle_waiters()
        for sock in [s for s in svc.sockets if s.listening]:
            self._fail_socket(sock, "service-start-limit-hit")
        self._propagate_down(svc.name, explicit=False)

    def _fail_socket(self, sock: SocketRT, result: str) -> None:
        sock.result = result
        sock.set_state(FAILED, result=result)
        if sock.spec.remove_on_stop:
            sock.path_present = False
        sock.fail_backlog("econnrefused")
        self._propagate_down(sock.name, explicit=False)

    def service_exited(self, svc: ServiceRT, code: int, by_manager: bool) -> None:
        """The daemon's process ended (crash, idle exit, or a stop we asked for)."""
        if self.supervised:
            self.cgroup_emptied(svc)
        failed = code != 0 and not by_manager
        svc.result = "exit-code" if failed else ""
        svc.set_state(FAILED if failed else INACTIVE, code=code)
        svc.settle_waiters()
        if not self.supervised:
            self._exited_unsupervised(svc, code)
            return
        restart = svc.spec.restart
        if not by_manager and (restart == "always" or (restart == "on-failure" and failed)):
            svc.restart_token += 1
            svc.restart_pending = True
            self.sim.env.process(self._restart_later(svc, svc.restart_token))
        self._propagate_down(svc.name, explicit=by_manager)
        if svc.state != ACTIVATING:
            for sock in svc.sockets:
                if sock.listening and sock.backlog:
                    self._activate(sock)

    def cgroup_emptied(self, svc: ServiceRT) -> None:
        """The main process is gone: systemd kills what is left in the unit's cgroup as
        ``KillMode=`` says (``unit_kill_context``): ``control-group`` sends SIGTERM to every
        remaining process, ``mixed`` SIGKILL (its final step goes to the whole cgroup),
        ``process`` and ``none`` leave them.  The same happens on a stop, after a crash
        (before any restart) and after an idle exit."""
        mode = svc.spec.kill_mode
        daemon = self.sim.daemon_of_service.get(svc.name)
        if mode in ("process", "none") or daemon is None:
            return
        signal = "SIGTERM" if mode == "control-group" else "SIGKILL"
        self.sim.guests.kill_cgroup(daemon, f"{signal} to {svc.name}'s cgroup (KillMode={mode})")

    def _restart_later(self, svc: ServiceRT, token: int) -> Generator[simpy.Event, Any, None]:
        yield self.sim.env.timeout(svc.spec.restart_sec)
        if token != svc.restart_token:
            return  # stopped (or started) meanwhile
        svc.restart_pending = False
        if svc.state in (FAILED, INACTIVE) and svc.result != "start-limit-hit":
            self.sim.collector.emit(self.sim.env.now, svc.name, "auto-restart")
            self._start_service(svc, "restart")

    def _propagate_down(self, name: str, explicit: bool) -> None:
        dependents = list(self.bound_by.get(name, []))
        if explicit:
            dependents += self.required_by.get(name, [])
        for other in sorted(set(dependents)):
            unit = self.units.get(other)
            if unit is None:
                continue
            pending = isinstance(unit, ServiceRT) and unit.restart_pending
            if unit.state in (ACTIVE, ACTIVATING, LISTENING) or pending:
                self.stop(other, f"dependency {name} stopped")

    def stop(self, name: str, reason: str) -> None:
        """Stop unit ``name`` (unknown names are ignored); ``reason`` goes to the trace.

        A socket stops listening (its path removed if so configured), refuses its backlog and stops
        its dependents; a service cancels a pending restart and terminates its daemon, or goes
        inactive if it has none alive.  Without a supervisor, sockets and targets are left alone and
        nothing propagates.
        """
        unit = self.units.get(name)
        if unit is None:
            return
        if isinstance(unit, SocketRT):
            if unit.listening and self.supervised:
                unit.set_state(INACTIVE, reason=reason)
                if unit.spec.remove_on_stop:
                    unit.path_present = False
                unit.fail_backlog("econnrefused")
                self._propagate_down(name, explicit=True)
            return
        if isinstance(unit, ServiceRT):
            unit.restart_token += 1  # a stop cancels a pending automatic restart
            unit.restart_pending = False
            daemon = self.sim.daemon_of_service.get(name)
            if daemon is not None and daemon.alive:
                daemon.terminate(0, by_manager=True, why=reason)
                return
            if unit.state in (ACTIVE, ACTIVATING, FAILED):
                unit.set_state(INACTIVE, reason=reason)
                unit.settle_waiters()
                if self.supervised:
                    self._propagate_down(name, explicit=True)
            return
        if unit.state == ACTIVE and self.supervised:
            unit.set_state(INACTIVE, reason=reason)
            self._propagate_down(name, explicit=True)

    def reset_failed(self, name: str) -> None:
        """Clear unit ``name``'s start-limit history and, if it failed, make it inactive."""
        unit = self.units.get(name)
        if unit is None:
            return
        if isinstance(unit, ServiceRT):
            unit.starts.clear()
        if unit.state == FAILED:
            unit.result = ""
            unit.set_state(INACTIVE, reason="reset-failed")

    # ------------------------------------------------------------------ activation
    def connection_arrived(self, sock: SocketRT) -> simpy.Event:
        """A client connects to a listening socket whose daemon is not accepting: the
        connection waits in the backlog; the service is started if it is down.  The event's
        value is ``None`` once accepted, or an error string."""
        event = self.sim.env.event()
        sock.backlog.append(event)
        service = sock.service
        assert service is not None
        if service.state in (INACTIVE, FAILED):
            self._activate(sock)
        return event

    def _activate(self, sock: SocketRT) -> None:
        if sock.trigger_limit_hit():
            self._fail_socket(sock, "trigger-limit-hit")
            return
        assert sock.service is not None
        self.sim.collector.emit(self.sim.env.now, sock.name, "triggered")
        if not self._start_service(sock.service, f"socket {sock.name}"):
            sock.fail_backlog("econnrefused")
