"""Queueing primitives, lean on purpose (they sit on the per-call hot path).

Each ``acquire`` returns ``None`` when granted at once, or an event to wait for; the caller
yields the event only when it has to.  Waiters are served first come, first served.
"""

from __future__ import annotations

from collections import deque

import simpy

NORMAL, PRIORITY = 0, 1


class WorkerPool:
    """A server's worker pool: ``normal`` workers run anything; ``prio`` workers run only
    high-priority jobs, when every normal worker is busy (libvirt's virThreadPool).

    The grant event's value says which kind of worker the job got; pass it to ``release``.
    """

    __slots__ = (
        "acquired",
        "busy_normal",
        "busy_prio",
        "env",
        "normal",
        "prio",
        "waited",
        "waiting",
    )

    def __init__(self, env: simpy.Environment, normal: int, prio: int) -> None:
        self.env = env
        self.normal = normal
        self.prio = prio
        self.busy_normal = 0
        self.busy_prio = 0
        self.waiting: deque[tuple[bool, simpy.Event]] = deque()
        self.acquired = 0
        self.waited = 0

    def acquire(self, high: bool) -> int | simpy.Event:
        self.acquired += 1
        if self.busy_normal < self.normal:
            self.busy_normal += 1
            return NORMAL
        if high and self.busy_prio < self.prio:
            self.busy_prio += 1
            return PRIORITY
        self.waited += 1
        event = self.env.event()
        self.waiting.append((high, event))
        return event

    def release(self, kind: int) -> None:
        waiting = self.waiting
        if kind == NORMAL:
            if waiting:
                waiting.popleft()[1].succeed(NORMAL)
            else:
                self.busy_normal -= 1
            return
        for i, (high, event) in enumerate(waiting):
            if high:
                del waiting[i]
                event.succeed(PRIORITY)
                return
        self.busy_prio -= 1

    def cancel(self, event: simpy.Event) -> None:
        """A waiter gives up: drop its place, or hand back a grant it never used."""
        if event.triggered:
            self.release(event.value if isinstance(event.value, int) else NORMAL)
            return
        for i, (_, waiting) in enumerate(self.waiting):
            if waiting is event:
                del self.waiting[i]
                return

    @property
    def busy(self) -> int:
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
        if self.used < self.capacity:
            self.used += 1
            return None
        event = self.env.event()
        self.waiting.append(event)
        return event

    def release(self) -> None:
        if self.waiting:
            self.waiting.popleft().succeed()
        else:
            self.used -= 1

    def cancel(self, event: simpy.Event) -> None:
        if event.triggered:
            self.release()
        elif event in self.waiting:
            self.waiting.remove(event)


class Lock(Slots):
    """A mutex (a driver-wide lock or one object's lock): a semaphore of one."""

    __slots__ = ()

    def __init__(self, env: simpy.Environment) -> None:
        super().__init__(env, 1)

    @property
    def held(self) -> bool:
        return self.used > 0

    @held.setter
    def held(self, value: bool) -> None:
        self.used = 1 if value else 0
