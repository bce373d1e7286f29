"""One trace test per libvirt rule the engine models (issue 8; LIBVIRT-FACTS 10).

Domain jobs (``src/conf/virdomainjob.c``), guest monitor work and guest-hang faults, sweeps
over every object of a kind (``virDomainObjListForEach``, ``qemuConnectGetAllDomainStats``),
client commands, the connection handshake, keepalive and ``max_client_requests``, forwarded
calls and drivers that initialise in the background (``nodeDeviceInitWait``).  The worker
pool's own rules are in ``tests/test_threadpool_rules.py``.

Every test runs the generic fixture of ``tests/fixtures/engine/`` (see :mod:`enginekit`),
whose service times are constant, and asserts exact event times.  Times to remember:

- ``daemon-a`` (driver ``hv``: guests) is ready at 0.3 s; ``daemon-b`` (driver ``aux``)
  0.16 s after its socket activation;
- ``daemon-a`` has 1..3 normal workers and 1 priority worker, ``max_client_requests`` 2;
  ``daemon-b`` 1..2 normal and 1 priority; server keepalive 5 s x 5 (30 s); a normal
  worker wins a race for a high-priority job when both kinds are idle;
- service times: every ``hv*`` call 10 ms, except ``hvBusy`` 1 s and ``hvCreate`` 500 ms
  (spent in the new guest's monitor); ``hvListAll`` 1 ms per guest then 10 ms;
  ``hvAllStats`` 10 ms in each guest's monitor then 10 ms; ``auxList`` 10 ms,
  ``auxSlow`` 1 s;
- the ``hv`` driver's job wait is 30 s (``VIR_JOB_WAIT_TIME``), no ``max_queued`` limit.
"""

from __future__ import annotations

from typing import Any

import pytest
from enginekit import (
    Call,
    base_system,
    base_workload,
    call_at,
    data_of,
    make_sim,
    observe,
    pool,
    run,
    scenario,
    trace,
    variant,
    workload_variant,
)

from sim.engine.clients import Session
from sim.engine.simulation import Simulation
from sim.engine.trace import Collector
from sim.model.checks import check_catalog, check_workload
from sim.model.loader import Loaded
from sim.model.resolved import System, WorkloadModel
from sim.schema import Catalog, Workload

A, B = "daemon-a", "daemon-b"
HV, AUX = "hv:///x", "aux:///x"
HANDSHAKE = {
    "name": "hsOpen",
    "priority": "high",
    "service": {"dist": "constant", "value_ms": 10},
    "assumption": "fixture",
}


# ======================================================================== helpers


def catalog_variant(
    drivers: dict[str, dict[str, Any]] | None = None, handshake: dict[str, Any] | None = None
) -> System:
    """The fixture topology on a copy of its catalog with some driver fields replaced (and
    a handshake), validated and checked."""
    system = base_system()
    data = system.catalog.doc.model_dump()
    for driver in data["drivers"]:
        driver.update((drivers or {}).get(driver["name"], {}))
    if handshake is not None:
        data["handshake"] = handshake
    catalog = Loaded(Catalog.model_validate(data), system.catalog.src)
    assert not check_catalog(catalog)
    return System(catalog, system.topology)


def probe_variant(**probe: Any) -> WorkloadModel:
    """The fixture workload with some probe fields replaced."""
    wl = base_workload()
    data = wl.workload.doc.model_dump()
    data["probe"].update(probe)
    out = WorkloadModel(Loaded(Workload.model_validate(data), wl.workload.src), wl.catalog)
    assert not check_workload(out)
    return out


def guests(count: int, **g2: Any) -> WorkloadModel:
    """The fixture workload with ``count`` guests in group ``g1`` (``g1-0`` ...)."""
    return workload_variant({"g1": {"count": count}, "g2": g2})


def guest_hang(at: float, duration: float | None = None, scope: str = "monitor", **target: str):
    return {
        "kind": "guest-hang",
        "scope": scope,
        "target": target,
        "at_s": at,
        "duration_s": duration,
    }


def hang(scope: str, at: float, duration: float | None, **target: str) -> dict[str, Any]:
    return {"kind": "hang", "scope": scope, "target": target, "at_s": at, "duration_s": duration}


def command_at(
    sim: Simulation,
    t: float,
    steps: list[str],
    target: str | None,
    session: Session | None = None,
    per_call: bool = True,
) -> Call:
    """Run the steps as one command at time ``t`` (on a fresh session's connection unless
    ``session`` is given)."""
    return call_at(
        sim, t, HV, steps[-1], target, session=session or Session(sim, "cmd", None, None),
        per_call=per_call, before=tuple(steps[:-1]),
    )  # fmt: skip


def outcome(call: Call) -> tuple[bool | None, str, float | None]:
    return call.ok, call.error, None if call.t_end is None else round(call.t_end, 6)


def calls_of(c: Collector, client: str) -> list[tuple[float, float, str, bool, str]]:
    """The call records of ``client``: ``(t_start, t_end, procedure, ok, error)``."""
    return [
        (round(r.t_start, 6), round(r.t_end, 6), r.procedure, r.ok, r.error)
        for r in c.calls
        if r.client == client
    ]


def lock_held(sim: Simulation, guest: str) -> bool:
    return sim.daemons[A].lock(("guest", guest)).held


# ======================================================================== domain jobs


@pytest.mark.parametrize("wait_s", [30.0, 5.0])
def test_a_query_job_waits_at_most_job_wait_s_then_fails_job_timeout(wait_s: float) -> None:
    system = catalog_variant(drivers={"hv": {"job_wait_s": wait_s}})
    sim = make_sim(system, scenario=scenario(faults=[guest_hang(5, 55, guest="g1")]))
    holder = call_at(sim, 10, HV, "hvStats", "g1")  # holds g1's job in the hung monitor
    late = call_at(sim, 20, HV, "hvQuery", "g1")
    served = call_at(sim, 60 - wait_s / 2, HV, "hvQuery", "g1")  # the job frees in time
    c = run(sim, 100)
    assert trace(c, "g1", since=1) == [(5.0, "g1", "hung"), (60.0, "g1", "answers")]
    assert outcome(late) == (False, "job-timeout", 20 + wait_s)
    assert outcome(holder) == (True, "", 60.01)
    assert outcome(served) == (True, "", 60.02)


def test_the_object_lock_is_released_while_waiting_for_a_job() -> None:
    sim = make_sim(scenario=scenario(faults=[guest_hang(5, guest="g1")]))
    call_at(sim, 10, HV, "hvStats", "g1")
    waiter = call_at(sim, 20, HV, "hvQuery", "g1")
    while_waiting = observe(sim, 20.5, lambda: lock_held(sim, "g1"))
    lock_only = call_at(sim, 21, HV, "hvState", "g1")
    run(sim, 100)
    assert while_waiting == [False]
    assert outcome(lock_only) == (True, "", 21.01)
    assert outcome(waiter) == (False, "job-timeout", 50.0)


def test_max_queued_jobs_fails_at_once_but_not_destroy() -> None:
    system = catalog_variant(drivers={"hv": {"max_queued_jobs": 2}})
    sim = make_sim(system, scenario=scenario(faults=[guest_hang(5, guest="g1")]))
    holder = call_at(sim, 10, HV, "hvStats", "g1")  # job 1 of 2: active
    queued = call_at(sim, 20, HV, "hvQuery", "g1")  # job 2 of 2: waits
    refused = call_at(sim, 21, HV, "hvQuery", "g1")  # a third: refused at once
    destroy = call_at(sim, 22, HV, "hvDestroy", "g1")  # exempt; kills the process first
    c = run(sim, 100)
    assert outcome(refused) == (False, "job-max-queued", 21.0)
    assert outcome(holder) == (False, "eof", 22.0)
    assert outcome(queued) == (True, "", 22.01)
    assert outcome(destroy) == (True, "", 22.02)
    assert trace(c, "g1", since=1) == [(5.0, "g1", "hung"), (22.02, "g1", "stopped")]


def test_async_start_job_admits_only_destroy() -> None:
    sim = make_sim()
    call_at(sim, 10, HV, "hvCreate", "g2")  # async job 10.0-10.5, in the guest's monitor
    destroy = call_at(sim, 10.2, HV, "hvDestroy", "g2")  # admitted at once
    query = call_at(sim, 10.3, HV, "hvQuery", "g2")  # waits for the async job to end
    held = observe(sim, 10.25, lambda: sim.daemons[A].job_slot(("guest", "g2")).async_active)
    c = run(sim, 100)
    assert outcome(destroy) == (True, "", 10.21)
    assert outcome(query) == (True, "", 10.51)
    assert held == [True]
    assert trace(c, "g2") == [(10.0, "g2", "starting"), (10.21, "g2", "stopped")]


def test_a_waiter_the_async_job_does_not_admit_does_not_hold_back_a_destroy() -> None:
    sim = make_sim()
    call_at(sim, 10, HV, "hvCreate", "g2")
    query = call_at(sim, 10.1, HV, "hvQuery", "g2")  # waits for the async job
    destroy = call_at(sim, 10.2, HV, "hvDestroy", "g2")
    run(sim, 100)
    assert outcome(destroy) == (True, "", 10.21)
    assert outcome(query) == (True, "", 10.51)


def test_a_destroy_during_a_start_kills_the_new_guest_and_the_start_fails() -> None:
    sim = make_sim()
    create = call_at(sim, 10, HV, "hvCreate", "g2")
    call_at(sim, 10.2, HV, "hvDestroy", "g2")
    c = run(sim, 100)
    assert (create.ok, create.error) == (False, "eof")  # its monitor died with QEMU
    assert calls_of(c, "client")[-1][2:] == ("hvCreate", False, "eof")


def test_nowait_gives_up_at_once() -> None:
    sim = make_sim(workload=guests(2), scenario=scenario(faults=[guest_hang(5, guest="g1-0")]))
    sim.proc_for("hvQuery", nowait=True)
    call_at(sim, 10, HV, "hvStats", "g1-0")
    busy = call_at(sim, 20, HV, "hvQuery+nowait", "g1-0")
    free = call_at(sim, 20, HV, "hvQuery+nowait", "g1-1")
    waits = call_at(sim, 20, HV, "hvQuery", "g1-0")
    run(sim, 100)
    assert outcome(busy) == (False, "job-busy", 20.0)
    assert outcome(free) == (True, "", 20.01)
    assert outcome(waits) == (False, "job-timeout", 50.0)


# ======================================================================== monitor, guest-hang


def test_monitor_work_blocks_while_the_guests_monitor_is_hung_and_resumes_when_it_answers():
    sim = make_sim(scenario=scenario(faults=[guest_hang(5, 15, guest="g1")]))
    stats = call_at(sim, 10, HV, "hvStats", "g1")  # job and monitor
    peek = call_at(sim, 12, HV, "hvPeek", "g1")  # monitor only
    info = call_at(sim, 12, HV, "hvInfo", "g1")  # no monitor work: unaffected
    c = run(sim, 100)
    assert trace(c, "g1", since=1) == [(5.0, "g1", "hung"), (20.0, "g1", "answers")]
    assert data_of(c, "g1", "hung") == [{"scope": "monitor"}]
    assert outcome(info) == (True, "", 12.01)
    assert outcome(stats) == (True, "", 20.01)
    assert outcome(peek) == (True, "", 20.01)


def test_monitor_work_releases_the_object_lock() -> None:
    sim = make_sim(scenario=scenario(faults=[guest_hang(5, guest="g1")]))
    stuck = call_at(sim, 10, HV, "hvStats", "g1")
    in_monitor = observe(sim, 10.5, lambda: lock_held(sim, "g1"))
    lock_only = call_at(sim, 11, HV, "hvState", "g1")
    run(sim, 100)
    assert in_monitor == [False]
    assert outcome(lock_only) == (True, "", 11.01)
    assert not stuck.done


def test_destroy_kills_the_process_first_so_a_call_stuck_in_its_monitor_ends_with_eof():
    sim = make_sim(scenario=scenario(faults=[guest_hang(5, guest="g1")]))
    stats = call_at(sim, 10, HV, "hvStats", "g1")  # holds the job the destroy needs
    peek = call_at(sim, 11, HV, "hvPeek", "g1")
    destroy = call_at(sim, 20, HV, "hvDestroy", "g1")
    c = run(sim, 100)
    assert outcome(stats) == (False, "eof", 20.0)
    assert outcome(peek) == (False, "eof", 20.0)
    assert outcome(destroy) == (True, "", 20.01)
    assert trace(c, "g1", since=1) == [(5.0, "g1", "hung"), (20.01, "g1", "stopped")]


def test_guest_hang_by_group_hangs_every_member() -> None:
    sim = make_sim(
        workload=guests(3, running=True), scenario=scenario(faults=[guest_hang(5, group="g1")])
    )
    peeks = {g: call_at(sim, 10, HV, "hvPeek", g) for g in ("g1-0", "g1-1", "g1-2", "g2")}
    c = run(sim, 100)
    assert [e for e in trace(c, since=1) if e[2] == "hung"] == [
        (5.0, "g1-0", "hung"),
        (5.0, "g1-1", "hung"),
        (5.0, "g1-2", "hung"),
    ]
    assert outcome(peeks["g2"]) == (True, "", 10.01)
    assert [peeks[g].done for g in ("g1-0", "g1-1", "g1-2")] == [False] * 3


def test_guest_hang_scope_process_and_monitor_look_the_same_to_the_daemon() -> None:
    seen = {}
    for scope in ("process", "monitor"):
        sim = make_sim(scenario=scenario(faults=[guest_hang(5, 15, scope, guest="g1")]))
        for t, proc in ((10, "hvStats"), (11, "hvPeek"), (12, "hvState"), (13, "hvQuery")):
            call_at(sim, t, HV, proc, "g1", label="c")
        c = run(sim, 100)
        assert data_of(c, "g1", "hung") == [{"scope": scope}]
        seen[scope] = (calls_of(c, "c"), trace(c, "g1", since=1))
    assert seen["process"] == seen["monitor"]
    assert seen["monitor"][0] == [
        (12.0, 12.01, "hvState", True, ""),
        (10.0, 20.01, "hvStats", True, ""),
        (11.0, 20.01, "hvPeek", True, ""),
        (13.0, 20.02, "hvQuery", True, ""),
    ]


# ======================================================================== sweeps


def test_a_sweep_locks_each_object_in_turn_and_a_held_lock_stalls_it() -> None:
    # a stuck thread holds g1-1's lock from 5 to 25 (an object hang on the guest)
    sim = make_sim(
        workload=guests(3), scenario=scenario(faults=[hang("object", 5, 20, object="g1-1")])
    )
    listing = call_at(sim, 10, HV, "hvListAll")
    first = call_at(sim, 15, HV, "hvState", "g1-0")  # visited and let go
    last = call_at(sim, 15, HV, "hvState", "g1-2")  # not visited yet
    run(sim, 100)
    assert outcome(first) == (True, "", 15.01)
    assert outcome(last) == (True, "", 15.01)
    # g1-0 10.000-10.001; g1-1 from 25 (its lock) 1 ms; g1-2 1 ms; then 10 ms
    assert outcome(listing) == (True, "", 25.012)


def test_a_sweep_spends_its_per_object_time_on_each_running_guest() -> None:
    sim = make_sim(workload=guests(3))
    listing = call_at(sim, 10, HV, "hvListAll")  # g1-0..2 run (1 ms each); g2 is stopped
    run(sim, 100)
    assert outcome(listing) == (True, "", 10.013)


def bulk_stats(nowait: bool, busy: tuple[str, ...]) -> list[tuple[bool | None, str, float | None]]:
    """Two bulk-stats calls (at 20 and 100) over g1-0..2 whose ``busy`` guests' monitors hang
    at 5 and have their job held for ever by a stats call at 10; g1-1's monitor hangs too."""
    hung = sorted({"g1-1", *busy})
    faults = [guest_hang(5, guest=g) for g in hung]
    sim = make_sim(workload=guests(3), scenario=scenario(faults=faults))
    sim.proc_for("hvAllStats", nowait)
    name = "hvAllStats+nowait" if nowait else "hvAllStats"
    for g in busy:
        call_at(sim, 10, HV, "hvStats", g)
    calls = [call_at(sim, t, HV, name) for t in (20, 100)]
    run(sim, 200)
    return [outcome(c) for c in calls]


@pytest.mark.parametrize(
    ("busy", "ends"),
    [
        (("g1-1",), [50.03, 130.03]),  # 40 ms of work (3 x 10 ms in monitors, 10 ms) + 30 s
        (("g1-0", "g1-1"), [80.02, 160.02]),  # 30 ms of work + 2 x 30 s
    ],
)
def test_bulk_stats_wait_job_wait_s_per_busy_domain_then_skip_its_monitor_work(
    busy: tuple[str, ...], ends: list[float]
) -> None:
    assert bulk_stats(False, busy) == [(True, "", t) for t in ends]


def test_bulk_stats_that_get_a_hung_guests_job_block_in_its_monitor_holding_the_job() -> None:
    # nobody holds g1-1's job: the first sweep takes it and blocks in g1-1's hung monitor
    # for ever, holding the job, so the next sweep waits 30 s for it like the test above
    assert bulk_stats(False, ()) == [(None, "", None), (True, "", 130.03)]


def test_bulk_stats_with_nowait_skip_a_busy_domain_at_once() -> None:
    assert bulk_stats(True, ("g1-1",)) == [(True, "", 20.03), (True, "", 100.03)]
    assert bulk_stats(True, ("g1-0", "g1-1")) == [(True, "", 20.02), (True, "", 100.02)]


# ======================================================================== commands


def test_a_command_runs_its_steps_in_order_on_one_connection() -> None:
    sim = make_sim(catalog_variant(handshake=HANDSHAKE))
    done = command_at(sim, 5, ["hvLookup", "hvInfo", "hvQuery"], "g1")
    conns = [observe(sim, t, lambda: sim.daemons[A].connections) for t in (5.015, 5.035, 5.05)]
    before = observe(sim, 4, lambda: pool(sim, A).acquired)
    after = observe(sim, 6, lambda: pool(sim, A).acquired)
    c = run(sim, 10)
    assert outcome(done) == (True, "", 5.04)
    # the handshake 5.00-5.01 on the new connection, then each step in turn
    assert calls_of(c, "cmd") == [
        (5.0, 5.02, "hvLookup", True, ""),
        (5.02, 5.03, "hvInfo", True, ""),
        (5.03, 5.04, "hvQuery", True, ""),
    ]
    assert conns == [[1], [1], [0]]
    assert after[0] - before[0] == 4  # one handshake and three calls


def test_the_first_failed_step_ends_the_command_and_fails_its_operation() -> None:
    sim = make_sim(scenario=scenario(faults=[guest_hang(5, guest="g1")]))
    call_at(sim, 10, HV, "hvStats", "g1")  # holds g1's job
    done = command_at(sim, 20, ["hvLookup", "hvQuery", "hvInfo"], "g1")
    jobs = [observe(sim, t, lambda: pool(sim, A).acquired) for t in (19, 99)]
    c = run(sim, 100)
    assert outcome(done) == (False, "hvQuery: job-timeout", 50.01)
    assert jobs[1][0] - jobs[0][0] == 2  # hvLookup and hvQuery reached the daemon
    assert calls_of(c, "cmd") == [
        (20.0, 20.01, "hvLookup", True, ""),
        (20.01, 50.01, "hvQuery", False, "job-timeout"),
        (20.0, 50.01, "hvInfo", False, "hvQuery: job-timeout"),  # never made
    ]


def test_the_command_timeout_bounds_the_whole_command() -> None:
    sim = make_sim(scenario=scenario(faults=[guest_hang(5, guest="g1")]))
    call_at(sim, 10, HV, "hvStats", "g1")
    session = Session(sim, "cmd", 15.0, None)
    done = command_at(sim, 20, ["hvBusy", "hvQuery"], "g1", session=session)
    c = run(sim, 100)
    # 1 s of hvBusy, then hvQuery waits for the job until 20 + 15 (not 21 + 15)
    assert outcome(done) == (False, "timeout", 35.0)
    assert calls_of(c, "cmd") == [
        (20.0, 21.0, "hvBusy", True, ""),
        (21.0, 35.0, "hvQuery", False, "timeout"),
    ]


def test_library_commands_expand_to_before_and_procedure() -> None:
    profile = base_workload().profiles["commander"]
    assert [(c.before, c.procedure, c.command) for c in profile.calls] == [
        (["hvLookup"], "hvStats", None),  # command cmd-stats: [hvLookup, hvStats]
        (["hvLookup"], "hvInfo", None),  # written as procedure + before
        ([], "hvListAll", None),  # command cmd-list: [hvListAll]
    ]
    client = {"name": "virsh", "profile": "commander", "start_s": 10}
    sim = make_sim(scenario=scenario(clients=[client]))
    c = run(sim, 20)
    assert sorted(calls_of(c, "virsh")) == [
        (10.0, 10.01, "hvLookup", True, ""),
        (10.0, 10.01, "hvLookup", True, ""),
        (10.0, 10.011, "hvListAll", True, ""),
        (10.01, 10.02, "hvInfo", True, ""),
        (10.01, 10.02, "hvStats", True, ""),
    ]


# ======================================================================== connections


def test_every_new_connection_runs_the_handshake_on_a_worker() -> None:
    system = catalog_variant(handshake=HANDSHAKE)
    faults = [guest_hang(5, group="g1")]
    sim = make_sim(system, guests(4), scenario(faults=faults))
    persistent = Session(sim, "app", None, None)
    call_at(sim, 1, HV, "hvList", session=persistent, per_call=False)  # opened at 1
    for g in ("g1-0", "g1-1", "g1-2"):  # every normal worker stuck from 10.01
        call_at(sim, 10, HV, "hvStats", g)
    new_ok = call_at(sim, 15, HV, "hvList", timeout_s=5, label="new")  # priority worker free
    old_ok = call_at(sim, 16, HV, "hvList", session=persistent, per_call=False)
    call_at(sim, 20, HV, "hvPeek", "g1-3")  # the priority worker stuck from 20.01
    new_late = call_at(sim, 30, HV, "hvList", timeout_s=5, label="late")
    old_late = call_at(sim, 30, HV, "hvList", session=persistent, per_call=False)
    waiting = observe(sim, 40, lambda: pool(sim, A).queued)
    c = run(sim, 100)
    assert outcome(new_ok) == (True, "", 15.02)  # handshake, then the call
    assert outcome(old_ok) == (True, "", 16.01)  # no handshake on an open connection
    assert calls_of(c, "late") == [(30.0, 35.0, "hvList", False, "connect: timeout")]
    assert outcome(new_late) == (False, "connect: timeout", 35.0)
    assert not old_late.done
    assert waiting == [2]  # the abandoned handshake and the persistent call


def test_keepalive_kills_an_idle_connection_to_a_hung_daemon_after_interval_times_count_plus_one():
    # profile watcher: keepalive 5 s x 5, hvList at 5 (done at 5.01), the next 100 s later
    watcher = {"name": "w", "profile": "watcher", "start_s": 5}
    faults = [hang("process", 10, 60, daemon=A)]
    sim = make_sim(scenario=scenario(faults=faults, clients=[watcher]))
    plain = Session(sim, "plain", None, None)  # no keepalive: never dropped
    call_at(sim, 6, HV, "hvList", session=plain, per_call=False)
    is_open = [
        observe(sim, t, lambda: sim.clients[0].session.conns[HV].is_open) for t in (39.5, 40.5)
    ]
    c = run(sim, 120)
    assert is_open == [[True], [False]]
    assert trace(c, A, "w", since=1) == [
        (40.0, A, "connection-dropped"),  # 10 + 5 x (5 + 1)
        (105.01, "w", "disconnected"),  # seen at its next call, which reconnects
    ]
    assert data_of(c, A, "connection-dropped") == [{"client": "w", "why": "keepalive"}]
    assert plain.conns[HV].usable
    assert calls_of(c, "w")[-1] == (105.01, 105.02, "hvList", True, "")


def test_a_daemon_stops_reading_a_client_at_max_client_requests_and_drops_it_after_its_keepalive_timeout():  # noqa: E501
    sim = make_sim(scenario=scenario(faults=[hang("driver", 5, 100, driver="hv")]))
    full = Session(sim, "full", None, 30.0)  # two calls: max_client_requests of daemon-a
    one = Session(sim, "one", None, 30.0)  # one call: the daemon keeps reading it
    calls = [call_at(sim, t, HV, "hvInfo", "g1", session=full, per_call=False) for t in (10, 10.5)]
    other = call_at(sim, 10, HV, "hvInfo", "g1", session=one, per_call=False)
    busy = [observe(sim, t, lambda: pool(sim, A).busy) for t in (50, 106)]
    c = run(sim, 120)
    assert trace(c, A, since=1) == [(40.5, A, "connection-dropped")]  # 10.5 + 5 x (5 + 1)
    assert data_of(c, A, "connection-dropped") == [{"client": "full", "why": "keepalive"}]
    assert [outcome(x) for x in calls] == [(False, "keepalive", 40.5)] * 2
    assert outcome(other) == (True, "", 105.01)
    assert busy == [[3], [0]]  # the dropped client's jobs keep their workers until 105


def test_a_client_without_timeout_or_keepalive_also_loses_its_calls_when_dropped() -> None:
    # its calls run inline in its own process (an engine economy): a dispatched call whose
    # connection was dropped fails when the daemon's job ends (the reply is lost), an
    # unread one at once
    sim = make_sim(scenario=scenario(faults=[hang("driver", 5, 100, driver="hv")]))
    full = Session(sim, "full", None, None)
    times = (10, 10.5, 20)
    calls = [call_at(sim, t, HV, "hvInfo", "g1", session=full, per_call=False) for t in times]
    busy = observe(sim, 50, lambda: pool(sim, A).busy)
    c = run(sim, 120)
    assert trace(c, A, since=1) == [(40.5, A, "connection-dropped")]
    assert [outcome(x) for x in calls] == [
        (False, "eof", 105.01),
        (False, "eof", 105.01),
        (False, "eof", 40.5),  # never read: slots of daemon-a's connection were full
    ]
    assert busy == [2]


def test_a_forwarding_connection_dropped_by_the_secondary_daemon_fails_its_calls_at_once():
    topo = base_system().topology.doc

    def requests(i: int, n: int) -> list[dict[str, Any]]:
        server = topo.daemons[i].servers[0].model_dump()
        server["max_client_requests"] = n
        return [server]

    # daemon-a reads 3 requests per client, daemon-b only 2: b drops a's forwarding conn
    system = variant(daemons={A: {"servers": requests(0, 3)}, B: {"servers": requests(1, 2)}})
    sim = make_sim(system, scenario=scenario(faults=[hang("driver", 5, 100, driver="aux")]))
    call_at(sim, 1, AUX, "auxList")  # daemon-b runs when the hang begins
    app = Session(sim, "app", None, 30.0)
    calls = [call_at(sim, t, HV, "auxList", session=app, per_call=False) for t in (10, 10.5)]
    busy = observe(sim, 41, lambda: pool(sim, A).busy)
    c = run(sim, 120)
    assert trace(c, A, B, since=2)[0] == (40.5, B, "connection-dropped")
    assert [(x.ok, x.t_end) for x in calls] == [(False, 40.5)] * 2
    assert busy == [0]


def test_a_forwarded_call_runs_at_its_own_priority_on_the_forwarding_worker_without_timeout():
    faults = [hang("driver", 10, 100, driver="aux")]  # every aux call blocks 10-110
    sim = make_sim(scenario=scenario(faults=faults))
    call_at(sim, 1, AUX, "auxList")  # daemon-b socket-activated, ready at 1.16
    for _ in range(2):
        call_at(sim, 2, AUX, "auxSlow")  # both normal workers of daemon-b busy 2-3
    high = call_at(sim, 2.5, HV, "auxList")  # forwarded by daemon-a
    low = call_at(sim, 2.5, HV, "auxSlow")
    kinds = observe(sim, 2.505, lambda: (pool(sim, B).busy_normal, pool(sim, B).busy_prio))
    forwarding = observe(sim, 3.5, lambda: pool(sim, A).busy)
    blocked = call_at(sim, 20, HV, "auxList")  # no timeout anywhere: waits for 110
    during = observe(sim, 100, lambda: pool(sim, A).busy)
    after = observe(sim, 111, lambda: pool(sim, A).busy)
    c = run(sim, 120)
    assert kinds == [(2, 1)]  # the high-priority forwarded job took daemon-b's prio worker
    assert outcome(high) == (True, "", 2.51)
    assert outcome(low) == (True, "", 4.0)  # waited for a normal worker of daemon-b at 3
    assert forwarding == [1]  # daemon-a's worker is held for the whole forwarded call
    assert outcome(blocked) == (True, "", 110.01)
    assert during == [1] and after == [0]
    assert not [e for e in trace(c) if e[2] == "connection-dropped"]


# ======================================================================== background init


@pytest.mark.parametrize("background", [True, False])
def test_calls_into_a_driver_initialising_in_the_background_wait_until_it_is_done(
    background: bool,
) -> None:
    # daemon-b: 100 ms start, 50 ms aux init, 1 s to enumerate its one thing
    aux = {"init_in_background": background, "init_cpu_ms_per_object": {"thing": 1000}}
    sim = make_sim(catalog_variant(drivers={"aux": aux}))
    first = call_at(sim, 5, AUX, "auxList")
    second = call_at(sim, 5.5, AUX, "auxList")
    c = run(sim, 10)
    ready = 5.15 if background else 6.15
    assert trace(c, B, "daemon-b.service") == [
        (5.0, "daemon-b.service", "activating"),
        (5.0, B, "spawned"),
        (ready, B, "ready"),
        (ready, "daemon-b.service", "active"),
        *([(6.15, B, "driver-ready")] if background else []),
    ]
    assert outcome(first) == outcome(second) == (True, "", 6.16)


# ======================================================================== probes


def test_the_probe_makes_no_new_call_while_its_previous_one_still_runs() -> None:
    wl = probe_variant(procedure="hvStats", every_s=10, timeout_s=5)
    sim = make_sim(workload=wl, scenario=scenario(faults=[guest_hang(20, 40, guest="g1")]))
    phase = sim.probes.phase["g1"]
    c = sim.run(100)
    stuck = phase + 20  # the first probe after the hang
    after = phase + 60  # the first probe after the answer at 60 (its stuck job ends 60.01)
    probes = [(t0, t1, ok, err) for t0, t1, _, ok, err in calls_of(c, "probe")]
    assert [p for p in probes if 15 < p[0] < 70] == [
        (round(stuck, 6), round(stuck + 5, 6), False, "timeout"),
        (round(after, 6), round(after + 0.01, 6), True, ""),
    ]
    assert len(probes) == 7  # one every 10 s, but none of the three while one was stuck
    assert [[round(t, 6) for t in iv] for iv in c.unmanageable["g1"]] == [
        [round(stuck, 6), round(after + 0.01, 6)]
    ]
