"""Processor sharing (sim/engine/cpu.py): traces against the analytical PS results, a
Hypothesis property (work is conserved, nobody finishes before its work alone would take),
and the CPU's effect on daemon initialisation, guest starts and boot metrics."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
import simpy
from enginekit import base_workload, data_of, make_sim, run, scenario, trace, workload_variant
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine.cpu import CPU
from sim.model.loader import Loaded
from sim.model.resolved import WorkloadModel
from sim.schema import Workload

A = "daemon-a"


def jobs(cores: int | None, spec: list[tuple[float, float]]) -> tuple[list[float], CPU]:
    """Run jobs ``(arrival_s, work_s)`` on a fresh CPU; their end times, in order."""
    env = simpy.Environment()
    cpu = CPU(env, cores)
    ends = [float("nan")] * len(spec)

    def job(i: int, at: float, work: float) -> Generator[Any, Any, None]:
        yield env.timeout(at)
        yield from cpu.run(work)
        ends[i] = env.now

    for i, (at, work) in enumerate(spec):
        env.process(job(i, at, work))
    env.run()
    return ends, cpu


def test_cpu_one_job_alone_takes_its_work() -> None:
    assert jobs(1, [(0, 0.5)])[0] == [pytest.approx(0.5)]


def test_cpu_two_jobs_on_one_core_take_twice_as_long() -> None:
    ends, _ = jobs(1, [(0, 1.0), (0, 1.0)])
    assert ends == [pytest.approx(2.0), pytest.approx(2.0)]


def test_cpu_two_jobs_on_two_cores_do_not_slow_each_other() -> None:
    ends, _ = jobs(2, [(0, 1.0), (0, 1.0)])
    assert ends == [pytest.approx(1.0), pytest.approx(1.0)]


@pytest.mark.parametrize(("n", "cores"), [(3, 1), (4, 2), (8, 3), (2, 5)])
def test_cpu_n_equal_jobs_on_c_cores_end_at_work_times_n_over_c(n: int, cores: int) -> None:
    ends, _ = jobs(cores, [(0, 0.3)] * n)
    assert ends == [pytest.approx(0.3 * max(1.0, n / cores))] * n


def test_cpu_late_arrival_shares_the_remaining_time() -> None:
    """One core: w = 1 from 0, v = 0.2 from t = 0.5 (v <= w - t): the short job ends at
    t + 2v = 0.9, the long one at w + v = 1.2."""
    ends, _ = jobs(1, [(0, 1.0), (0.5, 0.2)])
    assert ends == [pytest.approx(1.2), pytest.approx(0.9)]


def test_cpu_without_cores_is_a_plain_delay() -> None:
    ends, _ = jobs(None, [(0, 1.0)] * 5)
    assert ends == [pytest.approx(1.0)] * 5


def test_cpu_abandoned_job_leaves_the_cpu() -> None:
    env = simpy.Environment()
    cpu = CPU(env, 1)
    out: dict[str, Any] = {}
    stop = env.event()

    def quitter() -> Generator[Any, Any, None]:
        out["quitter"] = yield from cpu.run(10.0, abandon=stop)
        out["t_quit"] = env.now

    def worker() -> Generator[Any, Any, None]:
        yield from cpu.run(1.0)
        out["t_worker"] = env.now

    def stopper() -> Generator[Any, Any, None]:
        yield env.timeout(0.5)
        stop.succeed()

    for p in (quitter, worker, stopper):
        env.process(p())
    env.run()
    # shared until 0.5 (worker got 0.25), then alone: 0.75 more
    assert out == {"quitter": False, "t_quit": 0.5, "t_worker": pytest.approx(1.25)}


def test_cpu_interrupted_job_leaves_the_cpu() -> None:
    env = simpy.Environment()
    cpu = CPU(env, 1)
    out: dict[str, float] = {}

    def victim() -> Generator[Any, Any, None]:
        try:
            yield from cpu.run(10.0)
        except simpy.Interrupt:
            out["victim"] = env.now

    def worker() -> Generator[Any, Any, None]:
        yield from cpu.run(1.0)
        out["worker"] = env.now

    v = env.process(victim())
    env.process(worker())

    def killer() -> Generator[Any, Any, None]:
        yield env.timeout(1.0)
        v.interrupt("eof")

    env.process(killer())
    env.run()
    assert out == {"victim": 1.0, "worker": pytest.approx(1.5)}
    assert not cpu.jobs


@settings(max_examples=60, deadline=None)
@given(
    cores=st.integers(1, 4),
    spec=st.lists(
        st.tuples(st.floats(0, 5, allow_nan=False), st.floats(0.001, 3, allow_nan=False)),
        min_size=1,
        max_size=12,
    ),
)
def test_cpu_conserves_work_and_never_beats_a_dedicated_core(
    cores: int, spec: list[tuple[float, float]]
) -> None:
    ends, cpu = jobs(cores, spec)
    for (at, work), end in zip(spec, ends, strict=True):
        assert end >= at + work - 1e-9
    assert cpu.busy_s == pytest.approx(sum(w for _, w in spec), rel=1e-9, abs=1e-9)
    # never idle with work waiting: the last job ends no later than a busy schedule allows
    assert max(ends) <= max(at for at, _ in spec) + sum(w for _, w in spec) + 1e-9


# ---------------------------------------------------------------------- in the engine


def with_cores(cores: int) -> WorkloadModel:
    wl = base_workload()
    host = {"cores": cores, "assumption": "test"}
    doc = Workload.model_validate({**wl.workload.doc.model_dump(), "host": host})
    return WorkloadModel(Loaded(doc, wl.workload.src), wl.catalog, wl.imports)


def test_cpu_daemon_init_is_cpu_work_shared_with_other_daemons() -> None:
    """daemon-a needs 300 ms of init; on one core it alone takes 0.3 s.  With a second
    daemon-b start (160 ms) at t = 0.1 they share: b ends at 0.1 + 0.32 = 0.42, a at 0.46."""
    from enginekit import call_at

    sim = make_sim(workload=with_cores(1))
    call_at(sim, 0.1, "aux:///x", "auxList")
    c = run(sim, 5)
    assert [e for e in trace(c, A, "daemon-b") if e[2] == "ready"] == [
        (0.42, "daemon-b", "ready"),
        (0.46, A, "ready"),
    ]
    assert data_of(c, A, "ready") == [{"init_ms": 300.0}]


@pytest.mark.parametrize(("cores", "autostart_s"), [(1, 0.96), (2, 0.8)])
def test_cpu_guest_start_and_boot_metrics_under_contention(cores: int, autostart_s: float) -> None:
    """At power-on daemon-a initialises (0.3 s of work), then autostarts g1 (hvStart: 0.5 s
    of CPU) while a client's call socket-activates daemon-b (0.16 s of init work).  On one
    core they share from 0.3: b is ready at 0.3 + 2 * 0.16 = 0.62, g1 has 0.34 s left and
    runs at 0.96; on two cores nothing waits and g1 runs at 0.8."""
    from enginekit import call_at

    sim = make_sim(workload=with_cores(cores), start="boot")
    call_at(sim, 0.3, "aux:///x", "auxList")
    c = run(sim, 5)
    assert (autostart_s, "g1", "running") in trace(c, "g1")
    metrics = sim.boot_metrics()
    assert metrics["time_to_ready_s"] == pytest.approx(0.3)  # daemon-b is not a boot unit
    assert metrics["time_to_autostart_s"] == pytest.approx(autostart_s)


@pytest.mark.parametrize(("cores", "reconnect_s"), [(1, 0.015), (2, 0.0075), (3, 0.005)])
def test_cpu_parallel_reconnects_share_the_cores(cores: int, reconnect_s: float) -> None:
    """Three running guests (g1 x 3, autostarted) when daemon-a restarts at 10: three
    reconnect threads of 5 ms of CPU each start together at its readiness (10.3 s; the init
    has the CPU to itself) and end after 5 ms * max(1, 3 / cores)."""
    wl = workload_variant(guests={"g1": {"count": 3}}, host={"cores": cores})
    restart = {"kind": "restart", "target": {"unit": "daemon-a.service"}, "at_s": 10}
    sim = make_sim(workload=wl, scenario=scenario(actions=[restart]), start="boot")
    run(sim, 20)
    assert sim.boot_metrics()["time_to_reconnect_s"] == pytest.approx(reconnect_s)
    ends = sorted(r.t_end for r in sim.collector.calls if r.procedure == "hvReconnect")
    assert ends[-1] == pytest.approx(10.3 + reconnect_s)
