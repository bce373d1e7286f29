"""Numbers against theory (CONVENTIONS 14).

Where queueing or reliability theory gives an exact answer, the simulated value must fall in
the 95% Student-t interval over independent replications (:func:`sim.experiment.stats.t_interval`),
each replication with its own ``replication`` number (independent random streams).

The models are the generic fixtures under ``tests/fixtures/analytic``:

- ``mmc.yaml`` + ``poisson.yaml``: an M/M/c station.  One daemon, one server with
  ``c = 4`` normal workers and no priority workers; a per-call client without timeout makes
  Poisson arrivals at ``lambda = 30/s`` of one procedure with exponential service of mean
  100 ms (``mu = 10/s``), so ``rho = lambda / (c mu) = 0.75``.
- ``restarting.yaml`` + ``idle.yaml``: one daemon with ``Restart=on-failure``,
  ``RestartSec = R = 5 s``, an initialisation of ``I = 2 s`` before it is active
  (``Type=notify``) and no start limit; the test crashes it at the times of a Poisson
  process (or of a fixed schedule).

The seeds are fixed, so every check is deterministic; a correct engine fails a given 95%
check for about one seed in twenty, and the seeds were not chosen to make the checks pass.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.engine.simulation import Simulation
from sim.experiment.stats import t_interval
from sim.model.load import load_system, load_workload
from sim.model.resolved import System, WorkloadModel
from sim.schema.experiment import Fault, Scenario, Target

FIX = Path(__file__).parent / "fixtures" / "analytic"
SEED = 20240601

# M/M/c parameters: they must match mmc.yaml and poisson.yaml
C, LAM, MU = 4, 30.0, 10.0
MMC_REPS, MMC_WARMUP_S, MMC_WINDOW_S = 20, 50.0, 1200.0
SAMPLE_EVERY_S = 0.05

# availability parameters: they must match restarting.yaml
RESTART_S, INIT_S = 5.0, 2.0
MTTF_S = 50.0
AV_REPS, AV_WARMUP_S, AV_DURATION_S = 30, 100.0, 20000.0


# ------------------------------------------------------------------------------ theory
def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with offered load ``a = lambda/mu``
    (Erlang's C formula; Kleinrock, Queueing Systems vol. 1, eq. 3.40)."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def mmc_mean_wait(c: int, lam: float, mu: float) -> float:
    """Mean time in queue, ``Wq = C(c, a) / (c mu - lambda)`` (seconds)."""
    return erlang_c(c, lam / mu) / (c * mu - lam)


def mean_down_time(mttf: float, restart_s: float, init_s: float) -> float:
    """Mean time from a crash until the service is active again, when crashes come as a
    Poisson process of mean gap ``mttf`` and a crash during initialisation (the daemon is
    running but not yet ready) fails that start too.

    Each attempt costs ``R + E[min(I, X)]`` with ``X ~ Exp(mttf)`` and succeeds with
    probability ``p = exp(-I / mttf)``; attempts are geometric, so the mean down time is
    ``(R + mttf (1 - p)) / p``, which tends to ``R + I`` when ``I << mttf``.
    """
    p = math.exp(-init_s / mttf)
    return (restart_s + mttf * (1.0 - p)) / p


def assert_in_interval(values: list[float], expected: float, what: str) -> None:
    mean, lo, hi = t_interval(values)
    assert lo <= expected <= hi, (
        f"{what}: theory {expected:.6g} outside the 95% interval [{lo:.6g}, {hi:.6g}] "
        f"(simulated mean {mean:.6g}, n = {len(values)})"
    )


# ------------------------------------------------------------------------------ M/M/c runs
@dataclass(frozen=True)
class MMCRep:
    """What one M/M/c replication measured over its observation window."""

    p_wait: float  # pool.waited / pool.acquired, counted after the warm-up
    sojourn_s: float  # mean t_end - t_start of the calls started after the warm-up
    arrival_rate: float  # calls started in the window per second
    in_system: float  # time-average number of calls in the pool (waiting or in service)
    in_service: float  # time-average busy workers, from the engine's own sampler


def _observer(sim: Simulation, out: dict[str, Any]) -> Generator[Any, Any, None]:
    """From the end of the warm-up: snapshot the pool's counters, then sample the number
    of jobs in the pool (busy + waiting) on a fixed grid."""
    yield sim.env.timeout(MMC_WARMUP_S)
    pool = sim.daemons["station"].servers["main"].pool
    out["pool"], out["acquired"], out["waited"] = pool, pool.acquired, pool.waited
    counts = out["counts"] = []
    while True:
        counts.append(pool.busy + len(pool.waiting))
        yield sim.env.timeout(SAMPLE_EVERY_S)


def run_mmc(system: System, workload: WorkloadModel, replication: int) -> MMCRep:
    sim = Simulation(
        system, workload, None, seed=SEED, replication=replication, sample_every_s=SAMPLE_EVERY_S
    )
    seen: dict[str, Any] = {}
    sim.env.process(_observer(sim, seen))
    end = MMC_WARMUP_S + MMC_WINDOW_S
    collector = sim.run(end)
    pool = seen["pool"]
    assert pool is sim.daemons["station"].servers["main"].pool, "the daemon restarted"
    calls = [r for r in collector.calls if r.t_start >= MMC_WARMUP_S]
    assert calls and all(r.ok for r in calls)
    busy = [b for t, _, b, _ in collector.samples if t >= MMC_WARMUP_S]
    return MMCRep(
        p_wait=(pool.waited - seen["waited"]) / (pool.acquired - seen["acquired"]),
        sojourn_s=math.fsum(r.t_end - r.t_start for r in calls) / len(calls),
        arrival_rate=len(calls) / MMC_WINDOW_S,
        in_system=sum(seen["counts"]) / len(seen["counts"]),
        in_service=sum(busy) / len(busy),
    )


@pytest.fixture(scope="module")
def mmc() -> list[MMCRep]:
    system = load_system(FIX / "mmc.yaml")
    workload = load_workload(FIX / "poisson.yaml")
    server = system.daemons["station"].servers[0]
    assert (server.max_workers, server.prio_workers) == (C, 0)
    assert workload.profiles["arrivals"].calls[0].rate_per_s == LAM
    assert system.procedures["work"].service.mean_ms == 1000.0 / MU
    return [run_mmc(system, workload, r) for r in range(MMC_REPS)]


def test_erlang_c_probability_of_waiting(mmc: list[MMCRep]) -> None:
    """P(wait) = C(c, lambda/mu): the share of jobs that found every worker busy."""
    assert_in_interval([r.p_wait for r in mmc], erlang_c(C, LAM / MU), "P(wait)")


def test_erlang_c_mean_wait(mmc: list[MMCRep]) -> None:
    """Wq = C / (c mu - lambda), measured as mean call latency minus the mean service 1/mu."""
    assert_in_interval([r.sojourn_s - 1.0 / MU for r in mmc], mmc_mean_wait(C, LAM, MU), "Wq")


def test_arrival_rate_is_poisson_lambda(mmc: list[MMCRep]) -> None:
    """The per-call client's Poisson arrivals come at rate lambda (a sanity check for the
    tests below, which use the measured rate)."""
    assert_in_interval([r.arrival_rate for r in mmc], LAM, "arrival rate")


def test_littles_law_number_in_system(mmc: list[MMCRep]) -> None:
    """L = lambda W: the time-average number of jobs in the pool, sampled from the engine's
    state, against the measured arrival rate times the mean sojourn from the call records
    (paired per replication), and against the M/M/c value."""
    diffs = [r.in_system - r.arrival_rate * r.sojourn_s for r in mmc]
    assert_in_interval(diffs, 0.0, "L - lambda W")
    theory = LAM * (mmc_mean_wait(C, LAM, MU) + 1.0 / MU)
    assert_in_interval([r.in_system for r in mmc], theory, "L")


def test_littles_law_busy_workers(mmc: list[MMCRep]) -> None:
    """Little's law on the workers alone: mean busy workers = lambda / mu (the offered load),
    from the samples of ``Simulation(sample_every_s=...)``."""
    assert_in_interval([r.in_service for r in mmc], LAM / MU, "busy workers")


# ------------------------------------------------------------------------------ availability
def crash_times(replication: int, mttf: float, until: float) -> list[float]:
    """Poisson crash times (mean gap ``mttf``) drawn by the test, one fixed stream per
    replication."""
    rng = np.random.default_rng([SEED, replication])
    times = np.cumsum(rng.exponential(mttf, size=int(3 * until / mttf) + 10))
    assert times[-1] > until
    return [float(t) for t in times[times < until]]


def crashes(times: list[float]) -> Scenario:
    target = Target(daemon="station")
    return Scenario(
        name="crashes", faults=[Fault(kind="crash", target=target, at_s=t) for t in times]
    )


def service_periods(
    events: list[tuple[float, str, str, dict[str, Any]]], unit: str, start: float, end: float
) -> tuple[float, list[float]]:
    """Time the unit spent ``active`` within [start, end] and the lengths of its completed
    periods out of ``active`` that began after ``start`` (from the trace)."""
    up, downs = 0.0, []
    active_since: float | None = None
    down_since: float | None = None
    for t, subject, what, _ in events:
        if subject != unit or what not in ("active", "activating", "failed", "inactive"):
            continue
        if what == "active" and active_since is None:
            active_since = t
            if down_since is not None and down_since >= start:
                downs.append(t - down_since)
        elif what != "active" and active_since is not None:
            up += max(0.0, min(t, end) - max(active_since, start))
            active_since, down_since = None, t
    if active_since is not None:
        up += max(0.0, end - max(active_since, start))
    return up, downs


def run_availability(
    system: System, workload: WorkloadModel, replication: int, times: list[float], until: float
) -> tuple[float, list[float]]:
    sim = Simulation(
        system, workload, crashes(times), seed=SEED, replication=replication, keep_trace=True
    )
    collector = sim.run(until)
    up, downs = service_periods(collector.events, "station.service", AV_WARMUP_S, until)
    return up / (until - AV_WARMUP_S), downs


@pytest.fixture(scope="module")
def restarting() -> tuple[System, WorkloadModel]:
    system = load_system(FIX / "restarting.yaml")
    unit = system.service("station.service")
    assert (unit.restart, unit.restart_sec, unit.start_limit_burst) == ("on-failure", RESTART_S, 0)
    assert system.daemons["station"].start_cpu_ms == INIT_S * 1000.0
    return system, load_workload(FIX / "idle.yaml")


@pytest.fixture(scope="module")
def availability(restarting: tuple[System, WorkloadModel]) -> list[tuple[float, list[float]]]:
    system, workload = restarting
    return [
        run_availability(system, workload, r, crash_times(r, MTTF_S, AV_DURATION_S), AV_DURATION_S)
        for r in range(AV_REPS)
    ]


def test_availability_poisson_crashes(availability: list[tuple[float, list[float]]]) -> None:
    """Availability = MTTF / (MTTF + MTTR).  Crashes come as a Poisson process; one that
    arrives while the daemon is down finds nothing to crash, so by memorylessness the up
    time is Exp(MTTF).  MTTR is the mean down time of :func:`mean_down_time` (about
    R + I = 7 s; exactly 7.245 s here, since a crash can also hit the 2 s initialisation)."""
    mttr = mean_down_time(MTTF_S, RESTART_S, INIT_S)
    assert_in_interval([a for a, _ in availability], MTTF_S / (MTTF_S + mttr), "availability")


def test_mean_time_to_repair(availability: list[tuple[float, list[float]]]) -> None:
    """The mean down period (crash to active again) per replication matches the MTTR."""
    means = [sum(downs) / len(downs) for _, downs in availability]
    assert_in_interval(means, mean_down_time(MTTF_S, RESTART_S, INIT_S), "MTTR")
    assert min(d for _, downs in availability for d in downs) == pytest.approx(RESTART_S + INIT_S)


def test_availability_fixed_schedule(restarting: tuple[System, WorkloadModel]) -> None:
    """A crash every P seconds (P > R + I, so every crash finds the daemon active): each
    cycle is up for MTTF = P - R - I and down for MTTR = R + I, exactly."""
    period, until = 60.0, AV_WARMUP_S + 100 * 60.0
    system, workload = restarting
    times = [AV_WARMUP_S + period * k for k in range(100)]
    avail, downs = run_availability(system, workload, 0, times, until)
    mttf, mttr = period - RESTART_S - INIT_S, RESTART_S + INIT_S
    assert avail == pytest.approx(mttf / (mttf + mttr), abs=1e-9)
    assert downs == pytest.approx([mttr] * 100)
