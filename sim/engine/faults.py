"""Fault injection and scheduled operator actions (DESIGN 3 "faults").

Targets are resolved per topology (:func:`sim.model.checks.resolve_target`): a driver resolves to
the daemon hosting it, a role to the daemons that carry it, so one experiment line runs
unchanged against every topology.

- ``crash``: the process dies (SIGSEGV-like, a failure for ``Restart=on-failure``); a daemon
  that is not running has nothing to crash.
- ``crash-loop``: it dies now and again ``after_start_s`` into each of its next ``count``
  starts.
- ``hang``: ``process`` stops the event loop; ``driver`` blocks every call into the target
  driver (every driver of a daemon/role target); ``object`` holds the object's lock.  A hang
  ends after ``duration_s`` or, without one, when the process dies.
- ``slow``: service times of the target multiplied by ``factor``.
- ``guest-crash``: guests die (a control: not counted as lost).
- ``guest-hang``: a guest's process (SIGSTOP) or monitor stops answering: calls that talk
  to its monitor block, holding their job; it ends after ``duration_s``, or when the guest
  is destroyed (its process is killed first).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from sim.model.checks import resolve_target

if TYPE_CHECKING:
    from sim.engine.daemon import DaemonRT
    from sim.engine.simulation import Simulation
    from sim.schema.experiment import Action, Fault


def schedule(sim: Simulation, faults: list[Fault], actions: list[Action]) -> None:
    """Start one process per fault and per action; each waits for its ``at_s`` and acts on the
    targets it resolves to.
    """
    for i, fault in enumerate(faults):
        sim.env.process(_fault(sim, i, fault))
    for action in actions:
        sim.env.process(_action(sim, action))


def _daemons(sim: Simulation, key: str, value: str) -> list[DaemonRT]:
    if key in ("object", "guest", "group"):
        return []
    names = resolve_target(sim.system, sim.workload, key, value)
    if key == "unit":
        names = [sim.system.daemon_of_unit[n] for n in names if n in sim.system.daemon_of_unit]
    return [sim.daemons[n] for n in names]


def _fault(sim: Simulation, index: int, fault: Fault) -> Generator[simpy.Event, Any, None]:
    env = sim.env
    yield env.timeout(fault.at_s)
    key, value = fault.target.key
    sim.collector.emit(
        env.now, f"fault[{index}]", "inject", kind=fault.kind, target=str(fault.target)
    )
    if fault.kind == "guest-crash":
        for guest in _guests(sim, key, value):
            sim.guests.kill(guest, "control", control=True)
        return
    if fault.kind == "guest-hang":
        yield from _hang_guests(sim, index, fault, _guests(sim, key, value))
        return
    if fault.kind == "hang" and fault.scope == "object":
        yield from _hold_object(sim, fault, key, value)
        return
    undo = []
    for d in _daemons(sim, key, value):
        if not d.alive:
            sim.collector.emit(env.now, d.name, "fault-missed", why="not running")
            continue
        undo.append(_apply(sim, d, fault, key, value))
    if fault.duration_s is not None and undo:
        yield env.timeout(fault.duration_s)
        for fn in undo:
            fn()
        sim.collector.emit(env.now, f"fault[{index}]", "end")


def _apply(sim: Simulation, d: DaemonRT, fault: Fault, key: str, value: str) -> Any:
    gen = d.gen
    if fault.kind == "crash":
        d.die(139, "crash")
        return lambda: None
    if fault.kind == "crash-loop":
        d.crash_on_start = fault.count
        d.crash_after_s = fault.after_start_s
        d.die(139, "crash")
        return lambda: None
    if fault.kind == "slow":
        keys = _driver_keys(sim, d, key, value)
        for k in keys:
            d.slow[k] = max(d.slow.get(k, 1.0), fault.factor)

        def unslow() -> None:
            if d.gen == gen:
                for k in keys:
                    d.slow.pop(k, None)

        return unslow
    if fault.scope == "process":
        d.hang_process()
        return lambda: d.unhang_process() if d.gen == gen else None
    drivers = [k for k in _driver_keys(sim, d, key, value) if k in d.drivers]
    for drv in drivers:
        d.hang_driver(drv)

    def unhang() -> None:
        if d.gen == gen:
            for drv in drivers:
                d.unhang_driver(drv)

    return unhang


def _driver_keys(sim: Simulation, d: DaemonRT, key: str, value: str) -> list[str]:
    """What a slow or driver-hang fault keys on: a driver, a procedure, or every driver."""
    if key == "driver":
        return [value]
    if key == "procedure":
        proc = sim.procs[value]
        return [value] if proc.driver is not None else []
    return sorted(d.drivers) if d.drivers else ["*"]


def _hold_object(sim: Simulation, fault: Fault, key: str, value: str) -> Generator[Any, Any, None]:
    """A stuck thread holds the object's lock (an NFS mount that stopped answering).

    The cause is outside the daemon, so the fault outlives a restart: every new process of
    the daemon starts with the lock held (see :meth:`DaemonRT.spawn`) until the fault ends.
    """
    env = sim.env
    obj = sim.workload.objects.get(value)
    kind = obj.kind if obj is not None else sim.guest_kind
    d = sim.host[sim.system.object_kinds[kind].driver]
    lock_key = (kind, value)
    d.stuck_objects.add(lock_key)
    if d.alive:
        gen, lock = d.gen, d.lock(lock_key)
        event = lock.acquire()
        if event is not None:
            yield event | d.death
        if d.gen == gen and d.alive:
            d.stuck_held[lock_key] = gen
    if fault.duration_s is None:
        return
    yield env.timeout(fault.duration_s)
    d.stuck_objects.discard(lock_key)
    if d.stuck_held.pop(lock_key, None) == d.gen and d.alive:
        d.lock(lock_key).release()


def _hang_guests(
    sim: Simulation, index: int, fault: Fault, guests: list[Any]
) -> Generator[simpy.Event, Any, None]:
    """Stop each guest's process or monitor; let them answer again after ``duration_s``."""
    hung = [g for g in guests if sim.guests.hang(g, str(fault.scope))]
    if fault.duration_s is None or not hung:
        return
    yield sim.env.timeout(fault.duration_s)
    for guest in hung:
        sim.guests.unhang(guest)
    sim.collector.emit(sim.env.now, f"fault[{index}]", "end")


def _guests(sim: Simulation, key: str, value: str) -> list[Any]:
    if key == "guest":
        return [sim.guests.by_name[value]]
    if key == "group":
        return [g for g in sim.guests.all if g.spec.group == value]
    daemons = {d.name for d in _daemons(sim, key, value)}
    return [g for g in sim.guests.all if sim.host[g.spec.driver].name in daemons]


def _action(sim: Simulation, action: Action) -> Generator[simpy.Event, Any, None]:
    yield sim.env.timeout(action.at_s)
    key, value = action.target.key
    if action.kind.startswith("guest-"):
        yield from _guest_action(sim, action, value)
        return
    units = [value] if key == "unit" else [d.spec.unit for d in _daemons(sim, key, value)]
    manager = sim.manager
    for unit in units:
        sim.collector.emit(sim.env.now, unit, f"action:{action.kind}")
        if action.kind in ("restart", "stop"):
            manager.stop(unit, f"admin {action.kind}")
        if action.kind == "reset-failed":
            service = manager.units[unit]
            manager.reset_failed(unit)
            for sock in getattr(service, "sockets", []):
                was_failed = sock.state == "failed"
                manager.reset_failed(sock.name)
                if was_failed:
                    manager.start(sock.name, "admin reset-failed")
        if action.kind in ("restart", "start"):
            manager.start(unit, f"admin {action.kind}")


def _guest_action(sim: Simulation, action: Action, guest: str) -> Generator[Any, Any, None]:
    cat = sim.system.catalog.doc.lifecycle
    proc = sim.procs[cat.start if action.kind == "guest-start" else cat.stop]
    uri = action.uri or sim.workload.probe.uri
    sim.collector.emit(sim.env.now, guest, f"action:{action.kind}")
    yield from sim.operator.call(uri, proc, guest, per_call=True)
