"""Worker-pool rules as libvirt's virThreadPool applies them (src/util/virthreadpool.c).

Each test is named after one rule; the pool is driven directly on a simpy environment so
every grant and its time are exact.
"""

from __future__ import annotations

import random

import pytest
import simpy

from sim.engine.primitives import NORMAL, PRIORITY, WorkerPool


def grants(env: simpy.Environment, pool: WorkerPool, jobs: list[bool]) -> list[object]:
    """Acquire for each job (``True`` = high priority); immediate grants are ints."""
    return [pool.acquire(high) for high in jobs]


def kind_of(got: object) -> int | None:
    if isinstance(got, int):
        return got
    assert isinstance(got, simpy.Event)
    return got.value if got.triggered else None


def test_normal_worker_takes_the_queue_head_whatever_its_priority() -> None:
    env = simpy.Environment()
    pool = WorkerPool(env, 1, 1, rng=random.Random(0), race_normal=1.0)
    assert grants(env, pool, [False, False]) == [NORMAL, pool.waiting[0][1]]
    high = pool.acquire(True)  # the priority worker is idle: it takes the high job at once
    assert high == PRIORITY
    queued = grants(env, pool, [True, False])  # queue: low, high, low
    assert [h for h, _ in pool.waiting] == [False, True, False]
    pool.release(NORMAL)  # the normal worker takes the head: the first low job
    env.run()
    assert [h for h, _ in pool.waiting] == [True, False]
    assert kind_of(queued[0]) is None


def test_priority_worker_takes_only_the_oldest_priority_job() -> None:
    env = simpy.Environment()
    pool = WorkerPool(env, 1, 1, rng=random.Random(0), race_normal=1.0)
    assert grants(env, pool, [False, True]) == [NORMAL, PRIORITY]
    low, high1, high2 = grants(env, pool, [False, True, True])
    pool.release(PRIORITY)
    env.run()
    assert kind_of(high1) == PRIORITY and kind_of(low) is None and kind_of(high2) is None
    pool.release(PRIORITY)
    env.run()
    assert kind_of(high2) == PRIORITY and kind_of(low) is None


def test_priority_worker_never_runs_a_low_priority_job() -> None:
    env = simpy.Environment()
    pool = WorkerPool(env, 1, 3)
    assert pool.acquire(False) == NORMAL
    low = pool.acquire(False)
    assert isinstance(low, simpy.Event) and pool.idle_prio == 3
    assert pool.acquire(True) == PRIORITY


@pytest.mark.parametrize("race_normal", [0.0, 0.25, 0.5, 1.0])
def test_both_kinds_idle_race_for_a_priority_job_drawn_from_the_stream(race_normal: float) -> None:
    env = simpy.Environment()
    won = 0
    rng = random.Random(7)
    for _ in range(4000):
        pool = WorkerPool(env, 5, 5, rng=rng, race_normal=race_normal)
        won += pool.acquire(True) == NORMAL
    share = won / 4000
    assert abs(share - race_normal) < 0.03
    # a low-priority job never races: it takes a normal worker
    assert WorkerPool(env, 5, 5, rng=rng, race_normal=0.0).acquire(False) == NORMAL


def test_the_race_is_reproducible_from_the_stream_seed() -> None:
    env = simpy.Environment()

    def draws(seed: int) -> list[object]:
        rng = random.Random(seed)
        return [WorkerPool(env, 5, 5, rng=rng).acquire(True) for _ in range(50)]

    assert draws(3) == draws(3) and draws(3) != draws(4)


def test_normal_workers_grow_from_min_one_at_a_time_and_spawning_takes_time() -> None:
    env = simpy.Environment()
    spawned: list[tuple[float, int]] = []
    pool = WorkerPool(
        env, 4, 0, min_normal=2, spawn_s=0.001, on_spawn=lambda n: spawned.append((env.now, n))
    )
    assert grants(env, pool, [False, False]) == [NORMAL, NORMAL]
    assert pool.workers == 2 and not spawned  # the second job still found an idle worker
    third = pool.acquire(False)  # no idle worker: spawn one, the job waits for it
    assert spawned == [(0.0, 3)] and isinstance(third, simpy.Event) and not third.triggered
    env.run(until=0.0005)
    assert not third.triggered
    env.run(until=0.002)
    assert third.triggered and third.value == NORMAL and pool.busy_normal == 3


def test_normal_workers_stop_growing_at_max_and_priority_workers_never_grow() -> None:
    env = simpy.Environment()
    pool = WorkerPool(env, 3, 2, min_normal=1, spawn_s=0.0)
    got = grants(env, pool, [False] * 5 + [True] * 4)
    assert got[:3] == [NORMAL] * 3 and pool.workers == 3
    assert got[5:7] == [PRIORITY, PRIORITY]
    assert all(isinstance(g, simpy.Event) for g in got[3:5] + got[7:])
    assert pool.workers == 3 and pool.prio == 2 and pool.spawned == 2


def test_workers_never_shrink_when_idle() -> None:
    env = simpy.Environment()
    pool = WorkerPool(env, 4, 0, min_normal=1, spawn_s=0.0)
    for _ in range(4):
        pool.acquire(False)
    for _ in range(4):
        pool.release(NORMAL)
    env.run(until=3600)
    assert pool.workers == 4 and pool.idle_normal == 4


def stuck_high_calls_before_low_starves(race_normal: float, spawn_s: float, seed: int = 0) -> int:
    """Stuck high-priority jobs arriving one by one (spaced beyond ``spawn_s``) in a pool
    of libvirt's defaults (5..20 normal, 5 priority): how many before a low-priority job
    finds no worker."""
    env = simpy.Environment()
    pool = WorkerPool(
        env, 20, 5, min_normal=5, spawn_s=spawn_s, rng=random.Random(seed), race_normal=race_normal
    )
    n = 0
    while pool.busy_normal < 20 or pool.spawning:
        pool.acquire(True)  # never released: the call is stuck
        n += 1
        env.run(until=env.now + 1.0)
    return n


def test_stuck_high_priority_calls_that_starve_low_priority_ones() -> None:
    # normal workers always win the race and threads spawn instantly: the old reading
    assert stuck_high_calls_before_low_starves(1.0, 0.0) == 20
    # priority workers always win: they fill first, then every normal worker
    assert stuck_high_calls_before_low_starves(0.0, 0.0) == 25
    # a spawn that is not instant: the idle priority worker takes the job that spawned the
    # new normal thread, so both kinds fill even when normal workers win every race
    assert stuck_high_calls_before_low_starves(1.0, 0.001) == 25
    # a fair race: the five priority workers fill long before the pool has grown to 20
    # normal workers (that needs 15 normal wins before 5 priority ones), so again 25
    counts = {stuck_high_calls_before_low_starves(0.5, 0.0, seed) for seed in range(40)}
    assert counts == {25}


def test_a_job_arriving_behind_a_backlog_spawns_no_worker() -> None:
    # unsigned ``freeWorkers - jobQueueDepth <= 0``: only equality spawns
    env = simpy.Environment()
    pool = WorkerPool(env, 20, 0, min_normal=5, spawn_s=0.001)
    burst = grants(env, pool, [False] * 10)  # ten calls in the same instant
    assert burst[:5] == [NORMAL] * 5
    assert pool.workers == 6 and pool.spawned == 1  # the 6th spawned; 7th-10th found a backlog
    env.run(until=1.0)
    assert pool.workers == 6 and pool.queued == 4  # stuck calls never drain: no growth
    assert pool.acquire(False) is not None and pool.workers == 6
