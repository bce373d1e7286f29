"""The host's CPU as a processor-sharing resource (issue 16).

``cores`` identical cores are shared equally by the jobs present: with ``n`` jobs each one
progresses at ``min(1, cores / n)`` seconds of work per second (egalitarian processor
sharing; a job never runs on two cores at once, as a single thread would not).  A job is an
amount of CPU work in seconds; it ends when it has received that much.  Daemon
initialisation, guest reconnects and guest starts run through it, so on a small host they
slow each other down.  Without a core count (``cores`` is ``None``) every job is a plain
delay of its work: nothing is contended, the behaviour before this module existed.

Analytical checks (``tests/test_cpu.py``): ``n`` jobs of work ``w`` started together on
``c`` cores all end at ``w * max(1, n / c)``; on one core, a job of work ``w`` started at 0
and one of work ``v`` arriving at ``t < w`` with ``v <= w - t`` end at ``w + v`` and
``t + 2 v``; the work done equals the work asked (``busy_s``).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

EPS = 1e-12
"""Work (s) below which a job counts as done (floating-point slack)."""


class _Job:
    __slots__ = ("done", "left")

    def __init__(self, left: float, done: simpy.Event) -> None:
        self.left = left
        self.done = done


class CPU:
    """Processor sharing over ``cores`` cores; ``run`` is the only entry point."""

    def __init__(self, env: simpy.Environment, cores: int | None) -> None:
        self.env = env
        self.cores = cores
        self.jobs: list[_Job] = []
        self.last = 0.0
        self.token = 0
        self.busy_s = 0.0  # core-seconds of work done (utilisation = busy_s / (cores * t))

    @property
    def rate(self) -> float:
        """Work per second each present job receives now."""
        n = len(self.jobs)
        assert self.cores is not None
        return min(1.0, self.cores / n) if n else 1.0

    def run(
        self, work_s: float, abandon: simpy.Event | None = None
    ) -> Generator[simpy.Event, Any, bool]:
        """Consume ``work_s`` of CPU; True when done, False if ``abandon`` fired first (the
        job leaves the CPU).  An interrupt of the waiting process also removes the job.
        Without a core count this is a plain delay, ``abandon`` unwatched (the caller
        checks what happened meanwhile, as it did before the CPU was modelled)."""
        if self.cores is None:
            yield self.env.timeout(work_s)
            return True
        if work_s <= EPS:
            return True
        job = self._add(work_s)
        try:
            if abandon is None:
                yield job.done
            else:
                yield job.done | abandon
        finally:
            if not job.done.triggered:
                self._remove(job)
        return job.done.triggered

    # ------------------------------------------------------------------ internals
    def _advance(self) -> None:
        now = self.env.now
        if self.jobs and now > self.last:
            given = (now - self.last) * self.rate
            for job in self.jobs:
                job.left -= given
            self.busy_s += given * len(self.jobs)
        self.last = now

    def _add(self, work_s: float) -> _Job:
        self._advance()
        job = _Job(work_s, self.env.event())
        self.jobs.append(job)
        self._schedule()
        return job

    def _remove(self, job: _Job) -> None:
        self._advance()
        self.jobs.remove(job)
        self._schedule()

    def _schedule(self) -> None:
        self.token += 1
        if not self.jobs:
            return
        delay = max(0.0, min(j.left for j in self.jobs) / self.rate)
        timer = self.env.timeout(delay)
        token = self.token
        timer.callbacks.append(lambda _ev: self._tick(token))

    def _tick(self, token: int) -> None:
        if token != self.token:
            return  # the set of jobs changed since this timer was armed
        self._advance()
        finished = [j for j in self.jobs if j.left <= EPS * max(1.0, len(self.jobs))]
        if not finished:  # rounding: finish the smallest
            finished = [min(self.jobs, key=lambda j: j.left)]
        for job in finished:
            self.jobs.remove(job)
            job.done.succeed()
        self._schedule()
