"""One trace test per hypothetical mitigation rule (issue 10 item 5; not libvirt features).

A forward timeout (``Daemon.forward_timeout``), a pool of its own for forwarded calls
(``Daemon.forward_pool``) and per-driver caps on busy workers (``Daemon.driver_caps``), on
the generic fixture of ``tests/fixtures/engine/`` (see :mod:`enginekit` and the times listed
in ``tests/test_libvirt_rules.py``): ``daemon-a`` hosts ``hv`` and forwards ``aux`` calls to
``daemon-b``, which its socket activates (ready 0.16 s later).
"""

from __future__ import annotations

from typing import Any

from enginekit import call_at, make_sim, observe, pool, run, scenario, trace, variant

from sim.engine.clients import Session

A, B = "daemon-a", "daemon-b"
HV, AUX = "hv:///x", "aux:///x"
WHY = {"assumption": "test"}


def hang(scope: str, at: float, duration: float | None, **target: str) -> dict[str, Any]:
    return {"kind": "hang", "scope": scope, "target": target, "at_s": at, "duration_s": duration}


def done(call: Any) -> tuple[bool | None, str, float | None]:
    return call.ok, call.error, None if call.t_end is None else round(call.t_end, 6)


# ======================================================================== forward timeout


def test_a_forwarded_call_gives_up_after_the_forward_timeout_and_frees_the_worker() -> None:
    system = variant(daemons={A: {"forward_timeout": {"timeout_s": 5.0, **WHY}}})
    sim = make_sim(system, scenario=scenario(faults=[hang("driver", 10, 100, driver="aux")]))
    call_at(sim, 1, AUX, "auxList")  # daemon-b runs when the hang begins
    stuck = call_at(sim, 20, HV, "auxList")
    workers = observe(sim, 24, lambda: (pool(sim, A).busy, pool(sim, B).busy))
    after = observe(sim, 26, lambda: (pool(sim, A).busy, pool(sim, B).busy))
    c = run(sim, 60)
    assert done(stuck) == (False, "forward-timeout", 25.0)
    assert workers == [(1, 1)]
    assert after == [(0, 1)]  # daemon-b's job runs on: only the caller gave up
    assert (25.0, A, "forward-timeout") in trace(c, A)


def test_the_forward_timeout_counts_connecting_to_a_hung_daemon() -> None:
    system = variant(daemons={A: {"forward_timeout": {"timeout_s": 5.0, **WHY}}})
    sim = make_sim(system, scenario=scenario(faults=[hang("process", 10, 100, role="aux")]))
    call_at(sim, 1, AUX, "auxList")
    stuck = call_at(sim, 20, HV, "auxList")  # a new connection: waits in daemon-b's backlog
    run(sim, 60)
    assert done(stuck) == (False, "forward-timeout", 25.0)


def test_the_forward_timeout_bounds_nested_calls_to_other_daemons_but_not_local_work() -> None:
    system = variant(daemons={A: {"forward_timeout": {"timeout_s": 0.5, **WHY}}})
    sim = make_sim(system, scenario=scenario(faults=[hang("driver", 10, 100, driver="aux")]))
    call_at(sim, 1, AUX, "auxList")
    local = call_at(sim, 2, HV, "hvBusy")  # 1 s in daemon-a itself: no bound
    start = call_at(sim, 20, HV, "hvStart", "g2")  # its nested auxUse blocks in daemon-b
    run(sim, 60)
    assert done(local) == (True, "", 3.0)
    assert done(start)[:2] == (False, "auxUse: forward-timeout")
    assert done(start)[2] == 20.5


def test_without_a_forward_timeout_the_forwarding_worker_waits_for_the_answer() -> None:
    sim = make_sim(scenario=scenario(faults=[hang("driver", 10, 30, driver="aux")]))
    call_at(sim, 1, AUX, "auxList")
    stuck = call_at(sim, 20, HV, "auxList")
    run(sim, 60)
    assert done(stuck) == (True, "", 40.01)


# ======================================================================== forward pool


def test_forwarded_calls_run_on_the_forward_pool_and_leave_the_servers_pool_alone() -> None:
    fwd = {"max_workers": 1, "prio_workers": 0, **WHY}
    system = variant(daemons={A: {"forward_pool": fwd}})
    sim = make_sim(system, scenario=scenario(faults=[hang("driver", 10, 30, driver="aux")]))
    call_at(sim, 1, AUX, "auxList")
    first = call_at(sim, 20, HV, "auxList")
    second = call_at(sim, 20.5, HV, "auxList")  # waits for the one forwarding worker
    local = call_at(sim, 21, HV, "hvList")
    seen = observe(sim, 22, lambda: (pool(sim, A).busy, sim.daemons[A].forward_pool.busy))
    queued = observe(sim, 22, lambda: len(sim.daemons[A].forward_pool.waiting))
    run(sim, 60)
    assert seen == [(0, 1)] and queued == [1]
    assert done(local) == (True, "", 21.01)
    assert done(first) == (True, "", 40.01)
    assert done(second) == (True, "", 40.02)  # got the worker at 40.01, 10 ms in daemon-b


def test_without_a_forward_pool_forwarded_calls_take_the_servers_workers() -> None:
    sim = make_sim(scenario=scenario(faults=[hang("driver", 10, 30, driver="aux")]))
    call_at(sim, 1, AUX, "auxList")
    for t in (20, 20.1, 20.2, 20.3):  # 3 normal + 1 priority worker of daemon-a
        call_at(sim, t, HV, "auxList")
    local = call_at(sim, 21, HV, "hvList")
    seen = observe(sim, 22, lambda: pool(sim, A).busy)
    run(sim, 60)
    assert seen == [4]
    assert done(local) == (True, "", 40.02)  # the first worker freed at 40.01


# ======================================================================== driver caps


def test_a_driver_cap_bounds_the_workers_busy_in_that_driver_the_rest_wait_without_one():
    caps = {"max_busy": {"aux": 1}, **WHY}
    system = variant(daemons={A: {"driver_caps": caps}})
    sim = make_sim(system, scenario=scenario(faults=[hang("driver", 10, 30, driver="aux")]))
    call_at(sim, 1, AUX, "auxList")
    first = call_at(sim, 20, HV, "auxList")
    second = call_at(sim, 20.5, HV, "auxList")
    local = call_at(sim, 21, HV, "hvList")
    busy = observe(sim, 22, lambda: pool(sim, A).busy)
    run(sim, 60)
    assert busy == [1]  # the second aux call holds no worker while it waits
    assert done(local) == (True, "", 21.01)
    assert done(first) == (True, "", 40.01)
    assert done(second) == (True, "", 40.02)


def test_a_call_waiting_for_its_drivers_cap_is_dropped_when_its_client_has_gone() -> None:
    caps = {"max_busy": {"aux": 1}, **WHY}
    system = variant(daemons={A: {"driver_caps": caps}})
    sim = make_sim(system, scenario=scenario(faults=[hang("driver", 10, 30, driver="aux")]))
    call_at(sim, 1, AUX, "auxList")
    call_at(sim, 20, HV, "auxList")
    gone = call_at(sim, 20.5, HV, "auxList", timeout_s=2.0)  # per call: closes at 22.5
    before = observe(sim, 39, lambda: pool(sim, B).acquired)
    after = observe(sim, 50, lambda: pool(sim, B).acquired)
    run(sim, 60)
    assert done(gone) == (False, "timeout", 22.5)
    assert after == before  # never forwarded: daemon-b saw no call after the first two


def test_a_driver_cap_leaves_other_drivers_alone() -> None:
    caps = {"max_busy": {"aux": 1}, **WHY}
    system = variant(daemons={A: {"driver_caps": caps}})
    sim = make_sim(system)
    calls = [call_at(sim, 2, HV, "hvBusy", session=Session(sim, f"c{i}", None, None))
             for i in range(3)]  # fmt: skip
    run(sim, 10)
    assert [done(c) for c in calls] == [(True, "", 3.0)] * 3
