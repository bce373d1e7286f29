"""Queueing primitives, lean on purpose (they sit on the per-call hot path).

Each ``acquire`` returns ``None`` when granted at once, or an event to wait for; the caller
yields the event only when it has to.  Waiters are served first come, first served.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import simpy

NORMAL, PRIORITY = 0, 1


class WorkerPool:
    """A server's worker pool, run as libvirt's ``virThreadPool`` runs it.

    - One FIFO queue of jobs.  A *normal* worker takes the queue's head, whatever its
      priority; a *priority* worker takes only high-priority jobs, the oldest first (the
      ``firstPrio`` pointer).
    - A job is granted at once when a worker of a kind that may run it is idle.  A
      high-priority job finding both kinds idle wakes one of each (libvirt signals both
      condition variables) and the two threads race for the pool mutex: the winner is drawn
      from ``rng`` (a normal worker with probability ``race_normal``).
    - Normal workers start at ``min_normal`` and grow one at a time towards ``max_normal``:
      a job that arrives while no normal worker is idle beyond the queued jobs
      (``idle - queued <= 0``) spawns one, which is ready ``spawn_s`` later and then takes
      the queue's head (or goes idle).  libvirt's test ``freeWorkers - jobQueueDepth <= 0``
      is on unsigned counters, so it holds only when they are *equal*: a job that arrives
      while jobs already wait for a worker spawns none, and the pool stops growing until the
      backlog drains.  Workers never shrink; priority workers are fixed.

    The grant event's value says which kind of worker the job got; pass it to ``release``.
    """

    __slots__ = (
        "acquired",
        "env",
        "idle_normal",
        "idle_prio",
        "max_normal",
        "on_spawn",
        "prio",
        "prio_queue",
        "queue",
        "queued",
        "race_normal",
        "rng",
        "spawn_s",
        "spawned",
        "spawning",
        "waited",
        "workers",
    )

    def __init__(
        self,
        env: simpy.Environment,
        normal: int,
        prio: int,
        *,
        min_normal: int | None = None,
        spawn_s: float = 0.0,
        rng: random.Random | None = None,
        race_normal: float = 0.5,
        on_spawn: Callable[[int], None] | None = None,
    ) -> None:
        start = normal if min_normal is None else min(min_normal, normal)
        self.env = env
        self.max_normal = normal
        self.prio = prio
        self.workers = start
        self.idle_normal = start
        self.idle_prio = prio
        self.spawning = 0
        self.spawn_s = spawn_s
        self.rng = rng
        self.race_normal = race_normal
        self.on_spawn = on_spawn
        self.queue: deque[list[Any]] = deque()  # entries [high, event, queued]
        self.prio_queue: deque[list[Any]] = deque()
        self.queued = 0
        self.acquired = 0
        self.waited = 0
        self.spawned = 0

    def acquire(self, high: bool) -> int | simpy.Event:
        """Ask for a worker for a job (``high``: high priority): the worker kind (``NORMAL`` or
        ``PRIORITY``) when granted at once, else an event whose value is that kind.
        """
        self.acquired += 1
        if self.idle_normal == self.queued and self.workers < self.max_normal:
            self._spawn()
        if self.idle_normal:
            if high and self.idle_prio and self._prio_wins():
                self.idle_prio -= 1
                return PRIORITY
            self.idle_normal -= 1
            return NORMAL
        if high and self.idle_prio:
            self.idle_prio -= 1
            return PRIORITY
        self.waited += 1
        event = self.env.event()
        entry = [high, event, True]
        self.queue.append(entry)
        if high:
            self.prio_queue.append(entry)
        self.queued += 1
        return event

    def _prio_wins(self) -> bool:
        rng = self.rng
        return rng is not None and rng.random() >= self.race_normal

    def _spawn(self) -> None:
        self.workers += 1
        self.spawned += 1
        if self.on_spawn is not None:
            self.on_spawn(self.workers)
        if self.spawn_s <= 0:
            self.idle_normal += 1
            return
        self.spawning += 1
        cast(list[Any], self.env.timeout(self.spawn_s).callbacks).append(self._ready)

    def _ready(self, _: simpy.Event) -> None:
        self.spawning -= 1
        self.release(NORMAL)

    def release(self, kind: int) -> None:
        """A worker of ``kind`` is free: it takes the next job it may run, or goes idle."""
        queue = self.queue if kind == NORMAL else self.prio_queue
        while queue and not queue[0][2]:
            queue.popleft()
        if queue:
            entry = queue.popleft()
            entry[2] = False
            self.queued -= 1
            entry[1].succeed(kind)
        elif kind == NORMAL:
            self.idle_normal += 1
        else:
            self.idle_prio += 1

    def cancel(self, event: simpy.Event) -> None:
        """A waiter gives up: drop its place, or hand back a grant it never used."""
        if event.triggered:
            self.release(event.value if isinstance(event.value, int) else NORMAL)
            return
        for entry in self.queue:
            if entry[1] is event and entry[2]:
                entry[2] = False
                self.queued -= 1
                return

    def spec_ok(self) -> bool:
        """Counts within bounds: busy and idle workers of each kind never exceed the pool."""
        return (
            0 <= self.idle_normal <= self.workers - self.spawning
            and self.workers <= self.max_normal
            and 0 <= self.idle_prio <= self.prio
            and self.queued == len(self.waiting)
        )

    @property
    def waiting(self) -> list[tuple[bool, simpy.Event]]:
        """The queued jobs, oldest first, as ``(high, event)`` (for tests and traces)."""
        return [(e[0], e[1]) for e in self.queue if e[2]]

    @property
    def busy_normal(self) -> int:
        """Normal workers running a job (spawning ones excluded)."""
        return self.workers - self.spawning - self.idle_normal

    @property
    def busy_prio(self) -> int:
        """Priority workers running a job."""
        return self.prio - self.idle_prio

    @property
    def busy(self) -> int:
        """Workers of either kind running a job."""
        return self.busy_normal + self.busy_prio


class Slots:
    """A counting semaphore (requests in flight on one connection)."""

    __slots__ = ("capacity", "env", "used", "waiting")

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        self.env = env
        self.capacity = capacity
        self.used = 0
        self.waiting: deque[simpy.Event] = deque()

    def acquire(self) -> simpy.Event | None:
        """Take a slot: ``None`` when granted at once, else an event that succeeds when one frees
        up.
        """
        if self.used < self.capacity:
            self.used += 1
            return None
        event = self.env.event()
        self.waiting.append(event)
        return event

    def release(self) -> None:
        """Free a slot: the oldest waiter gets it, or it goes back to the pool."""
        if self.waiting:
            self.waiting.popleft().succeed()
        else:
            self.used -= 1

    def cancel(self, event: simpy.Event) -> None:
        """A waiter gives up: drop its place, or free the slot it was already granted."""
        if event.triggered:
            self.release()
        elif event in self.waiting:
            self.waiting.remove(event)

    def flush(self) -> None:
        """Grant every waiter at once (the connection closed: each request then fails)."""
        _grant_all(self)


def _grant_all(slots: Slots) -> None:
    """Wake every waiter of ``slots`` (their connection is gone; each finds that out)."""
    waiting, slots.waiting = slots.waiting, deque()
    for event in waiting:
        slots.used += 1
        event.succeed()


class Lock(Slots):
    """A mutex (a driver-wide lock or one object's lock): a semaphore of one."""

    __slots__ = ()

    def __init__(self, env: simpy.Environment) -> None:
        super().__init__(env, 1)

    @property
    def held(self) -> bool:
        """Whether the lock is taken (assignable, for tests that set up a held lock)."""
        return self.used > 0

    @held.setter
    def held(self, value: bool) -> None:
        self.used = 1 if value else 0


QUERY, MODIFY, DESTROY, ASYNC = "query", "modify", "destroy", "async"


class JobSlot:
    """One object's job: the serialisation of work on a domain, distinct from its lock.

    One *normal* job (query, modify, destroy) at a time; an *async* job (a guest start)
    occupies its own slot and, while it runs, admits only ``destroy`` normal jobs.  Waiters
    are served first come, first served among those the current state admits; a waiter
    bounds its own wait (see :func:`sim.engine.jobs.begin_job`).  ``queued`` counts the
    jobs waiting, for a ``max_queued`` limit.
    """

    __slots__ = ("active", "async_active", "env", "waiting")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.active = False
        self.async_active = False
        self.waiting: deque[tuple[str, simpy.Event]] = deque()

    def _admits(self, kind: str) -> bool:
        if kind == ASYNC:
            return not self.async_active and not self.active
        if self.active:
            return False
        return not self.async_active or kind == DESTROY

    def _take(self, kind: str) -> None:
        if kind == ASYNC:
            self.async_active = True
        else:
            self.active = True

    def acquire(self, kind: str) -> simpy.Event | None:
        """Ask for a job of ``kind``: ``None`` when the slot admits it now, else an event whose
        value is ``kind`` when it does.
        """
        # no queue in libvirt (threads wait on condition variables): a job the slot admits
        # proceeds even while others wait for one it does not admit
        if self._admits(kind):
            self._take(kind)
            return None
        event = self.env.event()
        self.waiting.append((kind, event))
        return event

    def release(self, kind: str) -> None:
        """End a job of ``kind`` and start every waiter the slot now admits, oldest first."""
        if kind == ASYNC:
            self.async_active = False
        else:
            self.active = False
        self._grant()

    def _grant(self) -> None:
        for entry in list(self.waiting):
            kind, event = entry
            if self._admits(kind):
                self.waiting.remove(entry)
                self._take(kind)
                event.succeed(kind)

    def cancel(self, event: simpy.Event) -> None:
        """A waiter gives up (its wait timed out, or it was interrupted)."""
        if event.triggered:
            self.release(str(event.value))
            return
        for entry in self.waiting:
            if entry[1] is event:
                self.waiting.remove(entry)
                self._grant()
                return

    @property
    def queued(self) -> int:
        """Jobs waiting for the slot."""
        return len(self.waiting)
