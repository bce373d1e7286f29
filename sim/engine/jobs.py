"""Object jobs, guest monitors and sweeps over every object of a kind (LIBVIRT-FACTS 10.2).

- A *job* serialises work on one object (a domain) and is distinct from the object's lock:
  a call that needs one waits at most the driver's ``job_wait_s`` (then fails with
  ``job-timeout``), with the object's lock released while it waits; a driver's
  ``max_queued_jobs`` bounds the jobs per object, active and waiting (async and destroy
  jobs are exempt); ``nowait`` gives up at once.
- A *monitor* call is work done by the guest's own process: the object's lock is released
  for it (the job is kept), and it never returns while the guest's monitor is hung; it
  fails with ``eof`` when the guest's process dies.
- A *sweep* visits every object of a kind in name order (listing or collecting domains):
  per object it may take the lock, a job (a failed job only skips the monitor work), and
  do monitor work.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import simpy

from sim.engine.primitives import ASYNC, DESTROY, JobSlot, Lock

if TYPE_CHECKING:
    from collections.abc import Callable

    from sim.engine.daemon import DaemonRT
    from sim.engine.simulation import Simulation


@dataclass(slots=True, eq=False)
class SweepRT:
    """A compiled ``each:`` clause of a procedure."""

    kind: str
    lock: bool
    job: str | None
    monitor: bool
    sample_s: Callable[[], float] | None


@dataclass(slots=True, eq=False)
class JobRules:
    """A driver's job limits."""

    wait_s: float
    max_queued: int


class Hold:
    """Whether a call holds an object's lock right now (it lets go of it while it waits
    for a job or talks to the guest's monitor)."""

    __slots__ = ("held", "lock")

    def __init__(self, lock: Lock | None) -> None:
        self.lock = lock
        self.held = False

    def take(self) -> Generator[simpy.Event, Any, None]:
        """Take the lock unless it is already held (a generator: yield from it); an interrupt
        while waiting gives the place back.
        """
        lock = self.lock
        if lock is None or self.held:
            return
        event = lock.acquire()
        if event is not None:
            try:
                yield event
            except simpy.Interrupt:
                lock.cancel(event)
                raise
        self.held = True

    def drop(self) -> None:
        """Release the lock if this call holds it."""
        if self.lock is not None and self.held:
            self.held = False
            self.lock.release()


NO_HOLD = Hold(None)


def begin_job(
    sim: Simulation, slot: JobSlot, kind: str, rules: JobRules, hold: Hold, nowait: bool
) -> Generator[simpy.Event, Any, str]:
    """Take ``kind`` on ``slot``: ``""`` once held (with the object's lock taken again),
    else the error (with the lock released)."""
    busy = int(slot.active) + int(slot.async_active) + slot.queued
    if rules.max_queued and kind not in (ASYNC, DESTROY) and busy + 1 > rules.max_queued:
        hold.drop()
        return "job-max-queued"
    event = slot.acquire(kind)
    if event is None:
        return ""
    hold.drop()
    if nowait:
        slot.cancel(event)
        return "job-busy"
    timer = sim.env.timeout(rules.wait_s)
    try:
        yield event | timer
    except simpy.Interrupt:
        slot.cancel(event)
        raise
    if not event.triggered:
        slot.cancel(event)
        return "job-timeout"
    try:
        yield from hold.take()
    except simpy.Interrupt:
        slot.release(kind)
        raise
    return ""


def monitor(
    sim: Simulation, target: str, delay: float, hold: Hold, on_cpu: bool = False
) -> Generator[simpy.Event, Any, str]:
    """Work done by guest ``target``'s process, with the object's lock released meanwhile
    (on the host's CPU when ``on_cpu``): ``""``, or ``eof`` if the process died.  Blocks
    while the guest's monitor is hung."""
    guest = sim.guests.by_name.get(target)
    hold.drop()
    err = ""
    if guest is not None and guest.monitor_block is not None:
        err = yield guest.monitor_block
    if not err:
        if on_cpu:
            yield from sim.cpu.run(delay)
        else:
            yield sim.env.timeout(delay)
        block = guest.monitor_block if guest is not None else None
        if block is not None and block.triggered and block.value == "eof":
            err = "eof"  # the process died while it answered
    yield from hold.take()
    return str(err)


def sweep(
    sim: Simulation, d: DaemonRT, sweep: SweepRT, rules: JobRules, nowait: bool
) -> Generator[simpy.Event, Any, None]:
    """Visit every object of ``sweep.kind`` that ``d`` holds, in name order."""
    for name in sim.objects_in(d, sweep.kind):
        key = (sweep.kind, name)
        hold = Hold(d.lock(key) if sweep.lock else None)
        has_job = False
        try:
            yield from hold.take()
            if sweep.job is not None:
                err = yield from begin_job(sim, d.job_slot(key), sweep.job, rules, hold, nowait)
                has_job = not err
            if sweep.job is None or has_job:
                if sweep.monitor and sweep.sample_s is not None:
                    yield from monitor(sim, name, sweep.sample_s(), hold)
                elif sweep.sample_s is not None:
                    yield sim.env.timeout(sweep.sample_s())
        finally:
            if has_job:
                d.job_slot(key).release(str(sweep.job))
            hold.drop()
