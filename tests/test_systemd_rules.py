"""One trace test per systemd / libvirt rule the engine implements (CONVENTIONS 12).

The rules are listed in the docstrings of :mod:`sim.engine.systemd`, :mod:`sim.engine.daemon`,
:mod:`sim.engine.rpc`, :mod:`sim.engine.guests` and :mod:`sim.engine.clients`.  Each test
runs the small generic fixture of ``tests/fixtures/engine/`` (see :mod:`enginekit`) and
asserts the exact event trace, ``(t, subject, what)``.  Times to remember:

- ``daemon-a`` (driver ``hv``) is ready 0.3 s after its spawn (100 ms start + 200 ms init);
- ``daemon-b`` (driver ``aux``, one ``thing`` object) is ready 0.16 s after its spawn
  (100 ms start + 50 ms init + 10 ms per object);
- idle timeouts: ``daemon-a`` 60 s, ``daemon-b`` 30 s; RestartSec 0.1 s;
- service times: ``hvList``/``hvInfo``/``hvStop``/``auxList`` 10 ms, ``auxUse`` 5 ms,
  ``hvStart`` 500 ms, ``hvBusy``/``auxSlow`` 1 s.

Each test is named after the rule it checks; a failure names the rule that broke.
"""

from __future__ import annotations

import pytest
from enginekit import (
    base_system,
    call_at,
    data_of,
    make_sim,
    observe,
    pool,
    run,
    scenario,
    trace,
    variant,
)

from sim.engine.clients import Session
from sim.engine.daemon import KEEPALIVE_SWEEP_S

A, B = "daemon-a", "daemon-b"
A_SVC, A_SOCK = "daemon-a.service", "daemon-a.socket"
B_SVC, B_SOCK = "daemon-b.service", "daemon-b.socket"
A_TCP = "daemon-a-tcp.socket"  # BindsTo=daemon-a.socket, left disabled by the preset
HV, AUX = "hv:///x", "aux:///x"


def crash(at: float, daemon: str = A) -> dict:
    return {"kind": "crash", "target": {"daemon": daemon}, "at_s": at}


def action(kind: str, at: float, **target: str) -> dict:
    return {"kind": kind, "target": target, "at_s": at}


def hang(scope: str, at: float, duration: float, **target: str) -> dict:
    return {"kind": "hang", "scope": scope, "target": target, "at_s": at, "duration_s": duration}


# ======================================================================== service start


def test_notify_service_is_active_once_daemon_has_initialised():
    sim = make_sim()
    c = run(sim, 10)
    assert trace(c, A, A_SVC) == [
        (0.0, A_SVC, "activating"),
        (0.0, A, "spawned"),
        (0.3, A, "ready"),  # start_cpu_ms 100 + hv init_cpu_ms 200
        (0.3, A_SVC, "active"),
    ]
    assert data_of(c, A, "ready") == [{"init_ms": 300.0}]


def test_notify_readiness_includes_per_object_init_cost():
    sim = make_sim()
    call = call_at(sim, 5, AUX, "auxList")
    c = run(sim, 10)
    assert trace(c, B, B_SVC) == [
        (5.0, B_SVC, "activating"),
        (5.0, B, "spawned"),
        (5.16, B, "ready"),  # 100 + 50 + 10 per thing
        (5.16, B_SVC, "active"),
    ]
    assert data_of(c, B, "ready") == [{"init_ms": 160.0}]
    assert call.ok and call.t_end == pytest.approx(5.17)


# ======================================================================== restart policy


def test_restart_on_failure_restarts_after_restart_sec():
    sim = make_sim(scenario=scenario(faults=[crash(10)]))
    c = run(sim, 20)
    assert trace(c, A, A_SVC, since=1) == [
        (10.0, A, "exited"),
        (10.0, A_SVC, "failed"),
        (10.1, A_SVC, "auto-restart"),
        (10.1, A_SVC, "activating"),
        (10.1, A, "spawned"),
        (10.4, A, "ready"),
        (10.4, A_SVC, "active"),
    ]
    assert data_of(c, A, "exited") == [{"code": 139, "why": "crash"}]
    assert data_of(c, A_SVC, "failed") == [{"code": 139}]


def test_restart_no_leaves_a_crashed_service_failed():
    system = variant(units={A_SVC: {"restart": "no"}})
    sim = make_sim(system, scenario=scenario(faults=[crash(10)]))
    c = run(sim, 100)
    assert trace(c, A, A_SVC, since=1) == [(10.0, A, "exited"), (10.0, A_SVC, "failed")]
    assert sim.manager.units[A_SVC].state == "failed"
    assert not sim.daemons[A].alive


def test_stop_by_the_manager_is_not_restarted():
    sim = make_sim(scenario=scenario(actions=[action("stop", 10, unit=A_SVC)]))
    c = run(sim, 100)
    assert trace(c, A, A_SVC, since=1) == [
        (10.0, A_SVC, "action:stop"),
        (10.0, A, "exited"),
        (10.0, A_SVC, "inactive"),
    ]
    assert data_of(c, A, "exited") == [{"code": 0, "why": "admin stop"}]


def test_stop_during_restart_sec_cancels_the_auto_restart():
    sim = make_sim(
        scenario=scenario(faults=[crash(10)], actions=[action("stop", 10.05, unit=A_SVC)])
    )
    c = run(sim, 100)
    assert (10.1, A_SVC, "auto-restart") not in trace(c, A_SVC)
    assert not sim.daemons[A].alive


def test_restart_action_stops_then_starts_the_service():
    sim = make_sim(scenario=scenario(actions=[action("restart", 10, unit=A_SVC)]))
    c = run(sim, 20)
    assert trace(c, A, A_SVC, since=1) == [
        (10.0, A_SVC, "action:restart"),
        (10.0, A, "exited"),
        (10.0, A_SVC, "inactive"),
        (10.0, A_SVC, "activating"),
        (10.0, A, "spawned"),
        (10.3, A, "ready"),
        (10.3, A_SVC, "active"),
    ]


# ======================================================================== start limit


def crash_loop(at: float, count: int = 5, daemon: str = A, after: float = 0.5) -> dict:
    target = {"daemon": daemon}
    return {
        "kind": "crash-loop",
        "target": target,
        "at_s": at,
        "count": count,
        "after_start_s": after,
    }


def test_start_limit_hit_fails_the_service_and_its_socket():
    sim = make_sim(scenario=scenario(faults=[crash_loop(10)]))
    late = call_at(sim, 20, HV, "hvList")
    c = run(sim, 30)
    restarts = []
    for t in (10.1, 10.7, 11.3, 11.9, 12.5):  # RestartSec 0.1 after each death
        restarts += [
            (t, A_SVC, "auto-restart"),
            (t, A_SVC, "activating"),
            (t, A, "spawned"),
            (round(t + 0.5, 6), A, "exited"),  # dies after_start_s into the start
            (round(t + 0.5, 6), A_SVC, "failed"),
        ]
    assert trace(c, A, A_SVC, A_SOCK, since=1) == [
        (10.0, A, "exited"),
        (10.0, A_SVC, "failed"),
        *restarts,
        # the 6th start within 10 s is refused: 5 starts in 10 s is the limit
        (13.1, A_SVC, "auto-restart"),
        (13.1, A_SOCK, "failed"),
    ]
    svc, sock = sim.manager.units[A_SVC], sim.manager.units[A_SOCK]
    assert (svc.state, svc.result) == ("failed", "start-limit-hit")
    assert (sock.state, sock.result) == ("failed", "service-start-limit-hit")
    assert not sock.path_present  # RemoveOnStop=yes: the path disappears
    assert (late.ok, late.error) == (False, "connect: enoent")


def test_start_limit_hit_client_falls_back_to_the_next_route_path():
    # hv:///x lists daemon-b's socket second: daemon-b gets the call and forwards it to hv's
    # URI, whose only other path (daemon-a's) is gone: the forward fails with enoent
    system = variant(routes={HV: ["/run/a-sock", "/run/b-sock"]})
    sim = make_sim(system, scenario=scenario(faults=[crash_loop(10)]))
    late = call_at(sim, 20, HV, "hvList")
    c = run(sim, 30)
    assert trace(c, B, B_SVC, B_SOCK, since=1) == [
        (20.0, B_SOCK, "triggered"),
        (20.0, B_SVC, "activating"),
        (20.0, B, "spawned"),
        (20.16, B, "ready"),
        (20.16, B_SVC, "active"),
    ]
    assert (late.ok, late.error, late.t_end) == (False, "enoent", pytest.approx(20.16))


def test_reset_failed_brings_the_socket_back_and_the_next_connection_activates():
    sim = make_sim(
        scenario=scenario(faults=[crash_loop(10)], actions=[action("reset-failed", 30, unit=A_SVC)])
    )
    call = call_at(sim, 40, HV, "hvList")
    c = run(sim, 50)
    assert trace(c, A, A_SVC, A_SOCK, since=20) == [
        (30.0, A_SVC, "action:reset-failed"),
        (30.0, A_SVC, "inactive"),
        (30.0, A_SOCK, "inactive"),
        (30.0, A_SOCK, "listening"),
        (40.0, A_SOCK, "triggered"),
        (40.0, A_SVC, "activating"),
        (40.0, A, "spawned"),
        (40.3, A, "ready"),
        (40.3, A_SVC, "active"),
    ]
    assert sim.manager.units[A_SOCK].path_present
    assert call.ok and call.t_end == pytest.approx(40.31)


def test_start_limit_hit_fails_only_the_sockets_that_were_listening():
    sim = make_sim(scenario=scenario(faults=[crash_loop(10)]))
    run(sim, 20)
    assert sim.manager.units[A_SOCK].state == "failed"
    assert sim.manager.units[A_TCP].state == "inactive"


def test_reset_failed_does_not_start_a_socket_that_never_ran():
    sim = make_sim(
        scenario=scenario(faults=[crash_loop(10)], actions=[action("reset-failed", 30, unit=A_SVC)])
    )
    run(sim, 40)
    assert sim.manager.units[A_SOCK].state == "listening"
    assert sim.manager.units[A_TCP].state != "listening"


# ======================================================================== socket activation


def test_socket_activation_queues_the_connection_until_the_service_is_ready():
    sim = make_sim()
    backlog = observe(sim, 5.1, lambda: len(sim.manager.units[B_SOCK].backlog))
    call = call_at(sim, 5, AUX, "auxList")
    c = run(sim, 10)
    assert trace(c, B, B_SVC, B_SOCK) == [
        (0.0, B_SOCK, "listening"),
        (5.0, B_SOCK, "triggered"),
        (5.0, B_SVC, "activating"),
        (5.0, B, "spawned"),
        (5.16, B, "ready"),
        (5.16, B_SVC, "active"),
    ]
    assert backlog == [1]
    assert call.ok and call.t_end == pytest.approx(5.17)  # accepted at ready, 10 ms call


def test_trigger_limit_fails_the_socket():
    # daemon-b dies 50 ms into every start, Restart=no, no start limit: each death with a
    # connection still in the backlog triggers the socket again, 20 times in 2 s at most
    system = variant(units={B_SVC: {"restart": "no", "start_limit_burst": 0}})
    faults = [crash_loop(5, count=100, daemon=B, after=0.05)]
    sim = make_sim(system, scenario=scenario(faults=faults))
    call_at(sim, 1, AUX, "auxList")  # daemon-b runs when the crash-loop begins
    calls = [call_at(sim, 10, AUX, "auxList") for _ in range(3)]
    late = call_at(sim, 20, AUX, "auxList")
    c = run(sim, 30)
    triggers = [t for t, s, w in trace(c, B_SOCK, since=10) if w == "triggered"]
    assert triggers == [round(10 + 0.05 * i, 6) for i in range(20)]
    assert trace(c, B_SOCK, since=10.96) == [(11.0, B_SOCK, "failed")]
    assert data_of(c, B_SOCK, "failed") == [{"result": "trigger-limit-hit"}]
    assert [(x.ok, x.error, x.t_end) for x in calls] == [
        (False, "connect: econnrefused", pytest.approx(11.0))
    ] * 3
    assert not sim.manager.units[B_SOCK].path_present
    assert (late.ok, late.error) == (False, "connect: enoent")


# ======================================================================== dependencies


def test_a_start_whose_bound_unit_hit_its_start_limit_fails_with_dependency():
    # daemon-a's service BindsTo= daemon-b's, which crash-loops into its start limit; a
    # connection to daemon-a afterwards triggers a start that cannot pull daemon-b in, so
    # the start job fails ("dependency") and daemon-a stays down
    system = variant(units={A_SVC: {"binds_to": [B_SVC], "restart": "no"}})
    faults = [crash_loop(5, daemon=B, after=0.05)]
    sim = make_sim(system, scenario=scenario(faults=faults))
    late = call_at(sim, 6, HV, "hvList")  # daemon-b's 6th start in 10 s is refused
    c = run(sim, 9)
    assert sim.manager.units[B_SVC].state == "failed"
    assert [w for _, _, w in trace(c, A_SVC, since=5.9)] == ["dependency-failed"]
    assert not sim.daemons[A].alive
    assert (late.ok, late.error) == (False, "connect: econnrefused")


def test_binds_to_stopping_the_socket_stops_the_bound_service():
    system = variant(units={A_SVC: {"requires": [], "binds_to": [A_SOCK]}})
    sim = make_sim(system, scenario=scenario(actions=[action("stop", 10, unit=A_SOCK)]))
    c = run(sim, 100)
    assert trace(c, A, A_SVC, A_SOCK, since=1) == [
        (10.0, A_SOCK, "action:stop"),
        (10.0, A_SOCK, "inactive"),
        (10.0, A, "exited"),
        (10.0, A_SVC, "inactive"),
    ]
    assert data_of(c, A, "exited") == [{"code": 0, "why": "dependency daemon-a.socket stopped"}]
    assert not sim.manager.units[A_SOCK].path_present


def test_binds_to_failure_of_the_bound_unit_stops_the_dependent():
    system = variant(units={B_SVC: {"binds_to": [A_SVC]}})
    sim = make_sim(system, scenario=scenario(faults=[crash(10)]))
    call_at(sim, 1, AUX, "auxList")
    c = run(sim, 20)
    assert trace(c, B, B_SVC, A_SVC, since=9) == [
        (10.0, A_SVC, "failed"),
        (10.0, B, "exited"),
        (10.0, B_SVC, "inactive"),
        (10.1, A_SVC, "auto-restart"),
        (10.1, A_SVC, "activating"),
        (10.4, A_SVC, "active"),
    ]
    assert data_of(c, B, "exited") == [{"code": 0, "why": "dependency daemon-a.service stopped"}]


def test_requires_failure_of_the_required_unit_does_not_stop_the_dependent():
    system = variant(units={B_SVC: {"requires": [B_SOCK, A_SVC]}})
    sim = make_sim(system, scenario=scenario(faults=[crash(10)]))
    call_at(sim, 1, AUX, "auxList")
    c = run(sim, 20)
    assert trace(c, B, B_SVC, since=9) == []
    assert sim.daemons[B].alive


def test_requires_explicit_stop_of_the_required_unit_stops_the_dependent():
    system = variant(units={B_SVC: {"requires": [B_SOCK, A_SVC]}})
    sim = make_sim(system, scenario=scenario(actions=[action("stop", 10, unit=A_SVC)]))
    call_at(sim, 1, AUX, "auxList")
    c = run(sim, 20)
    assert trace(c, A, A_SVC, B, B_SVC, since=9) == [
        (10.0, A_SVC, "action:stop"),
        (10.0, A, "exited"),
        (10.0, A_SVC, "inactive"),
        (10.0, B, "exited"),
        (10.0, B_SVC, "inactive"),
    ]
    assert data_of(c, B, "exited") == [{"code": 0, "why": "dependency daemon-a.service stopped"}]


def test_start_pulls_in_required_bound_and_wanted_units():
    system = variant(
        units={A_SVC: {"requires": [A_SOCK, B_SOCK], "binds_to": [A_TCP], "wants": [B_SVC]}},
        preset=[("enable", "boot.target"), ("enable", A_SOCK), ("disable", "*")],
    )
    sim = make_sim(system, scenario=scenario(actions=[action("start", 10, unit=A_SVC)]))
    c = run(sim, 20)
    assert trace(c, A, A_SVC, B, B_SVC, B_SOCK, A_TCP) == [
        (10.0, A_SVC, "action:start"),
        (10.0, B_SOCK, "listening"),  # Requires=
        (10.0, A_TCP, "listening"),  # BindsTo=
        (10.0, B_SVC, "activating"),  # Wants=
        (10.0, A_SVC, "activating"),
        (10.0, B, "spawned"),
        (10.0, A, "spawned"),
        (10.16, B, "ready"),
        (10.16, B_SVC, "active"),
        (10.3, A, "ready"),
        (10.3, A_SVC, "active"),
    ]
    assert data_of(c, B_SOCK, "listening") == [{"reason": "admin start via daemon-a.service"}]


def test_start_stops_a_conflicting_unit():
    system = variant(units={B_SVC: {"conflicts": [A_SVC]}})
    sim = make_sim(system)
    call = call_at(sim, 10, AUX, "auxList")
    c = run(sim, 20)
    assert trace(c, A, A_SVC, B, B_SVC, B_SOCK, since=1) == [
        (10.0, B_SOCK, "triggered"),
        (10.0, A, "exited"),
        (10.0, A_SVC, "inactive"),
        (10.0, B_SVC, "activating"),
        (10.0, B, "spawned"),
        (10.16, B, "ready"),
        (10.16, B_SVC, "active"),
    ]
    assert data_of(c, A, "exited") == [{"code": 0, "why": "conflicts with daemon-b.service"}]
    assert call.ok
    assert sim.guests.by_name["g1"].state == "running"  # KillMode=process


def test_start_stops_a_unit_that_conflicts_with_it():
    system = variant(units={A_SVC: {"conflicts": [B_SVC]}})
    sim = make_sim(system)
    call_at(sim, 10, AUX, "auxList")
    c = run(sim, 20)
    assert (10.0, A_SVC, "inactive") in trace(c, A_SVC)
    assert not sim.daemons[A].alive


def test_after_ordering_a_service_waits_for_the_one_it_is_ordered_after():
    system = variant(
        units={B_SVC: {"after": [A_SVC]}},
        preset=[("enable", "*")],
    )
    c = run(make_sim(system), 10)
    assert trace(c, A, A_SVC, B, B_SVC) == [
        (0.0, A_SVC, "activating"),
        (0.0, B_SVC, "activating"),
        (0.0, A, "spawned"),
        (0.3, A, "ready"),
        (0.3, A_SVC, "active"),
        (0.3, B, "spawned"),
        (0.46, B, "ready"),
        (0.46, B_SVC, "active"),
    ]


def test_without_ordering_services_start_in_parallel():
    c = run(make_sim(variant(preset=[("enable", "*")])), 10)
    assert trace(c, A, B) == [
        (0.0, A, "spawned"),
        (0.0, B, "spawned"),
        (0.16, B, "ready"),
        (0.3, A, "ready"),
    ]


def test_before_ordering_is_the_inverse_of_after():
    system = variant(units={A_SVC: {"before": [B_SVC]}}, preset=[("enable", "*")])
    c = run(make_sim(system), 10)
    assert (0.3, B, "spawned") in trace(c, B)


def test_boot_starts_only_enabled_units_wanted_by_the_boot_target():
    sim = make_sim()
    c = run(sim, 0.2)
    # daemon-b.service is WantedBy=boot.target too, but the preset leaves it disabled
    assert sim.manager.boot_set() == ["boot.target", A_SVC, A_SOCK, B_SOCK]
    assert trace(c) == [
        (0.0, "boot.target", "active"),
        (0.0, A_SOCK, "listening"),
        (0.0, B_SOCK, "listening"),
        (0.0, A_SVC, "activating"),
        (0.0, A, "spawned"),
    ]
    assert sim.manager.units[B_SVC].state == "inactive"


def test_boot_pulls_in_the_requirements_of_enabled_units():
    system = variant(preset=[("enable", "boot.target"), ("enable", A_SVC), ("disable", "*")])
    sim = make_sim(system)
    c = run(sim, 0.2)
    assert sim.manager.boot_set() == ["boot.target", A_SVC, A_SOCK]
    assert trace(c) == [
        (0.0, "boot.target", "active"),
        (0.0, A_SOCK, "listening"),
        (0.0, A_SVC, "activating"),
        (0.0, A, "spawned"),
    ]
    assert sim.manager.units[B_SOCK].state == "inactive"


# ======================================================================== idle exit


def test_idle_exit_after_idle_timeout_without_connections():
    sim = make_sim()
    call_at(sim, 5, AUX, "auxList")
    c = run(sim, 100)
    assert trace(c, B, B_SVC) == [
        (5.0, B_SVC, "activating"),
        (5.0, B, "spawned"),
        (5.16, B, "ready"),
        (5.16, B_SVC, "active"),
        (35.17, B, "idle-exit"),  # 30 s after the connection closed at 5.17
        (35.17, B, "exited"),
        (35.17, B_SVC, "inactive"),
    ]
    assert data_of(c, B, "exited") == [{"code": 0, "why": "idle timeout"}]


def test_exit_0_is_not_a_failure_and_is_not_restarted():
    sim = make_sim()  # daemon-b.service has Restart=on-failure
    call_at(sim, 5, AUX, "auxList")
    c = run(sim, 200)
    assert trace(c, B_SVC, since=30) == [(35.17, B_SVC, "inactive")]
    assert sim.manager.units[B_SVC].result == ""


def test_idle_exit_timer_is_rearmed_after_the_last_connection_closes():
    sim = make_sim()
    call_at(sim, 5, AUX, "auxList")  # closes at 5.17
    slow = call_at(sim, 5.1, AUX, "auxSlow")  # closes at 6.16
    late = call_at(sim, 20, AUX, "auxList")  # a new connection during the timer resets it
    c = run(sim, 100)
    assert slow.t_end == pytest.approx(6.16) and late.t_end == pytest.approx(20.01)
    assert trace(c, B, since=6) == [(50.01, B, "idle-exit"), (50.01, B, "exited")]


def test_idle_exit_is_inhibited_while_a_guest_of_an_inhibiting_driver_runs():
    sim = make_sim(scenario=scenario(actions=[action("guest-stop", 100, guest="g1")]))
    c = run(sim, 300)
    assert trace(c, A, "g1") == [
        (0.0, A, "spawned"),
        (0.3, A, "ready"),
        # no idle exit at 60.3 nor at 120.3: g1 runs
        (100.0, "g1", "action:guest-stop"),
        (100.01, "g1", "stopped"),
        (160.01, A, "idle-exit"),  # 60 s after the operator's connection closed
        (160.01, A, "exited"),
    ]


# ======================================================================== guests


def test_autostart_runs_once_per_boot_and_not_on_a_later_daemon_restart():
    sim = make_sim(
        scenario=scenario(faults=[crash(10)], actions=[action("guest-stop", 5, guest="g1")]),
        start="boot",
    )
    c = run(sim, 30)
    assert trace(c, A, "g1", "g2") == [
        (0.0, A, "spawned"),
        (0.3, A, "ready"),
        (0.3, "g1", "starting"),  # autostart (g2 has autostart off)
        (0.8, "g1", "running"),
        (5.0, "g1", "action:guest-stop"),
        (5.01, "g1", "stopped"),
        (10.0, A, "exited"),
        (10.1, A, "spawned"),
        (10.4, A, "ready"),  # no second autostart
    ]


def test_crash_of_the_daemon_leaves_its_guests_running():
    sim = make_sim(
        scenario=scenario(faults=[crash(10)], actions=[action("guest-start", 1, guest="g2")])
    )
    c = run(sim, 30)
    assert trace(c, "g1", "g2") == [
        (1.0, "g2", "action:guest-start"),
        (1.0, "g2", "starting"),
        (1.665, "g2", "running"),  # 0.16 daemon-b activation + 5 ms auxUse + 500 ms
    ]
    assert [g.state for g in sim.guests.all] == ["running", "running"]
    assert c.lost == {}
    internal = [r for r in c.calls if r.client == "(internal)" and r.t_start > 1]
    # reconnect at the restart: g1 in 5 ms, g2 after its auxUse (5 ms) on daemon-b
    assert [(r.procedure, r.ok, round(r.t_end, 6)) for r in internal] == [
        ("hvReconnect", True, 10.405),
        ("hvReconnect", True, 10.41),
    ]


def test_reconnect_kills_a_guest_caught_mid_start():
    sim = make_sim(
        scenario=scenario(faults=[crash(10.3)], actions=[action("guest-start", 10, guest="g2")])
    )
    c = run(sim, 30)
    assert trace(c, A, "g1", "g2", since=5) == [
        (10.0, "g2", "action:guest-start"),
        (10.0, "g2", "starting"),
        (10.3, A, "exited"),
        (10.4, A, "spawned"),
        (10.7, A, "ready"),
        (10.7, "g2", "dead"),
    ]
    assert c.lost == {"g2": (pytest.approx(10.7), "caught mid-start at reconnect")}
    assert sim.guests.by_name["g1"].state == "running"
    assert [(r.client, r.ok, r.error) for r in c.calls if r.procedure == "hvStart"] == [
        ("operator", False, "eof")
    ]


def test_reconnect_kills_a_guest_whose_required_nested_call_fails():
    # g2 needs aux at reconnect; daemon-b's socket is stopped, so its path is gone
    sim = make_sim(
        scenario=scenario(
            faults=[crash(30)],
            actions=[action("guest-start", 5, guest="g2"), action("stop", 20, unit=B_SOCK)],
        )
    )
    c = run(sim, 40)
    assert trace(c, A, B, "g1", "g2", B_SOCK, since=15) == [
        (20.0, B_SOCK, "action:stop"),
        (20.0, B_SOCK, "inactive"),
        (20.0, B, "exited"),
        (30.0, A, "exited"),
        (30.1, A, "spawned"),
        (30.4, A, "ready"),
        (30.4, "g2", "dead"),
    ]
    assert c.lost == {"g2": (pytest.approx(30.4), "reconnect failed: auxUse: enoent")}
    assert sim.guests.by_name["g1"].state == "running"


# ======================================================================== hangs


def test_process_hang_holds_calls_until_the_hang_ends():
    fault = hang("process", 10, 20, daemon=A)
    sim = make_sim(scenario=scenario(faults=[fault]))
    s = Session(sim, "persistent", None, None)
    first = call_at(sim, 5, HV, "hvList", session=s, per_call=False)
    on_open_conn = call_at(sim, 15, HV, "hvList", session=s, per_call=False)
    new_conn = call_at(sim, 16, HV, "hvList")
    c = run(sim, 40)
    assert first.ok and first.t_end == pytest.approx(5.01)
    assert on_open_conn.ok and on_open_conn.t_end == pytest.approx(30.01)
    assert new_conn.ok and new_conn.t_end == pytest.approx(30.01)
    assert trace(c, A, A_SVC, since=1) == []  # systemd sees nothing: the process runs
    assert trace(c, "fault[0]") == [(10.0, "fault[0]", "inject"), (30.0, "fault[0]", "end")]


def keepalive_run(profile: str, start_s: float, hang_at: float):
    client = {"name": "watcher", "profile": profile, "start_s": start_s}
    faults = [hang("process", hang_at, 500, daemon=A)]
    sim = make_sim(scenario=scenario(faults=faults, clients=[client]))
    c = run(sim, 300)
    return [
        (round(r.t_start, 6), round(r.t_end, 6), r.ok, r.error)
        for r in c.calls
        if r.client == "watcher"
    ]


def test_keepalive_detects_a_hung_process_after_interval_times_count_plus_one():
    # keepalive 5 s x 5 = 30 s; the call (1 s of work) starts at 10, the loop hangs at 10.5
    calls = keepalive_run("busy-watcher", start_s=10, hang_at=10.5)
    assert calls[0] == (10.0, 40.5, False, "keepalive")


def test_keepalive_counts_from_when_the_daemon_went_silent_not_from_the_call():
    # keepalive belongs to the connection (virkeepalive.c: any packet resets the count):
    # the watcher lists every 100 s from 10 (next call at 110.01); the loop hangs at 110,
    # so the connection dies 30 s later, at 140, within the sweep's resolution
    calls = keepalive_run("watcher", start_s=10, hang_at=110)
    assert calls[0] == (10.0, 10.01, True, "")
    t_start, t_end, ok, error = calls[1]
    assert (t_start, ok, error) == (110.01, False, "keepalive")
    assert 140.0 <= t_end < 140.0 + KEEPALIVE_SWEEP_S


def test_driver_hang_blocks_calls_and_holds_their_workers():
    fault = hang("driver", 10, 20, driver="aux")
    sim = make_sim(scenario=scenario(faults=[fault]))
    call_at(sim, 1, AUX, "auxList")  # daemon-b runs when the hang begins
    highs = [call_at(sim, 11, AUX, "auxList") for _ in range(3)]
    low = call_at(sim, 11, AUX, "auxSlow")
    seen = observe(sim, 20, lambda: (pool(sim, B).busy, len(pool(sim, B).waiting)))
    c = run(sim, 40)
    # 2 normal workers + 1 priority worker held by the hung high-priority calls, the low one waits
    assert seen == [(3, 1)]
    assert [x.t_end for x in highs] == [pytest.approx(30.01)] * 3
    assert low.ok and low.t_end == pytest.approx(31.01)
    assert trace(c, "fault[0]") == [(10.0, "fault[0]", "inject"), (30.0, "fault[0]", "end")]


def test_client_timeout_abandons_the_call_whose_job_keeps_its_worker():
    fault = hang("driver", 10, 20, driver="aux")
    sim = make_sim(scenario=scenario(faults=[fault]))
    call_at(sim, 1, AUX, "auxList")
    gave_up = call_at(sim, 11, AUX, "auxList", timeout_s=5)
    seen = observe(sim, 20, lambda: (pool(sim, B).busy, sim.daemons[B].connections))
    after = observe(sim, 30.5, lambda: pool(sim, B).busy)
    run(sim, 40)
    assert (gave_up.ok, gave_up.error, gave_up.t_end) == (False, "timeout", pytest.approx(16))
    assert seen == [(1, 0)]  # the connection is closed, the job still holds its worker
    assert after == [0]


def test_object_hang_blocks_calls_that_need_the_object_lock():
    fault = hang("object", 10, 20, object="t1")
    sim = make_sim(
        scenario=scenario(faults=[fault], actions=[action("guest-start", 15, guest="g2")])
    )
    other = call_at(sim, 16, AUX, "auxList")
    c = run(sim, 40)
    assert trace(c, "g2") == [
        (15.0, "g2", "action:guest-start"),
        (15.0, "g2", "starting"),
        (30.505, "g2", "running"),  # auxUse on t1 waits for the lock until the hang ends
    ]
    assert other.ok and other.t_end == pytest.approx(16.01)  # no lock, no wait


def test_object_hang_outlives_a_restart_of_the_daemon():
    fault = hang("object", 10, 20, object="t1")
    sim = make_sim(scenario=scenario(faults=[fault, crash(12, daemon=B)]))
    call_at(sim, 1, AUX, "auxList")  # daemon-b runs when the hang begins
    use = call_at(sim, 15, AUX, "auxUse", "t1")
    run(sim, 40)
    assert use.ok and use.t_end == pytest.approx(30.005)


def test_slow_fault_multiplies_service_times():
    slow = {"kind": "slow", "target": {"driver": "aux"}, "at_s": 10, "duration_s": 20}
    sim = make_sim(scenario=scenario(faults=[slow]))
    call_at(sim, 1, AUX, "auxList")
    during = call_at(sim, 15, AUX, "auxList")
    after = call_at(sim, 31, AUX, "auxList")
    run(sim, 40)
    assert during.t_end == pytest.approx(15.1)
    assert after.t_end == pytest.approx(31.01)


def test_guest_crash_control_kills_guests_without_counting_them_lost():
    fault = {"kind": "guest-crash", "target": {"guest": "g1"}, "at_s": 10}
    sim = make_sim(scenario=scenario(faults=[fault]))
    c = run(sim, 20)
    assert trace(c, "g1") == [(10.0, "g1", "dead")]
    assert c.lost == {}
    assert c.control_killed == {"g1": 10.0}
    assert sim.daemons[A].alive


def test_crash_of_a_daemon_that_is_not_running_is_missed():
    sim = make_sim(scenario=scenario(faults=[crash(10, daemon=B)]))
    c = run(sim, 20)
    assert trace(c, B, B_SVC, "fault[0]") == [
        (10.0, "fault[0]", "inject"),
        (10.0, B, "fault-missed"),
    ]


# ======================================================================== RPC


def test_priority_worker_runs_a_high_priority_call_when_normal_workers_are_busy():
    sim = make_sim()
    busy = [call_at(sim, 10, HV, "hvBusy") for _ in range(3)]  # all 3 normal workers
    high = call_at(sim, 10.5, HV, "hvList")
    low = call_at(sim, 10.5, HV, "hvInfo", "g1")
    seen = observe(sim, 10.505, lambda: (pool(sim, A).busy_normal, pool(sim, A).busy_prio))
    run(sim, 20)
    assert [x.t_end for x in busy] == [pytest.approx(11.0)] * 3
    assert seen == [(3, 1)]
    assert high.ok and high.t_end == pytest.approx(10.51)  # on the priority worker
    assert low.ok and low.t_end == pytest.approx(11.01)  # waits for a normal worker


def test_max_client_requests_limits_concurrent_calls_on_one_connection():
    sim = make_sim()  # daemon-a: max_client_requests 2, 3 normal workers
    s = Session(sim, "persistent", None, None)
    call_at(sim, 5, HV, "hvList", session=s, per_call=False)
    calls = [call_at(sim, 10, HV, "hvBusy", session=s, per_call=False) for _ in range(3)]
    seen = observe(sim, 10.5, lambda: pool(sim, A).busy)
    run(sim, 20)
    assert seen == [2]  # a worker is free, but the connection has no free request slot
    assert [x.t_end for x in calls] == [pytest.approx(t) for t in (11.0, 11.0, 12.0)]
    assert sim.daemons[A].connections == 1


def test_forwarding_a_call_holds_the_local_worker_until_the_answer():
    sim = make_sim()
    s = Session(sim, "persistent", None, None)
    slow = call_at(sim, 10, HV, "auxSlow", session=s, per_call=False)
    again = call_at(sim, 13, HV, "auxList", session=s, per_call=False)

    def busy():
        b = sim.daemons[B]
        return pool(sim, A).busy, (pool(sim, B).busy if b.ready else None)

    seen = [observe(sim, t, busy) for t in (10.1, 10.5, 12.0)]
    conns = observe(sim, 14, lambda: sim.daemons[B].connections)
    c = run(sim, 20)
    # daemon-a's worker waits for daemon-b's activation and then for its answer
    assert seen == [[(1, None)], [(1, 1)], [(0, 0)]]
    assert slow.ok and slow.t_end == pytest.approx(11.16)
    assert again.ok and again.t_end == pytest.approx(13.01)
    assert conns == [1]  # the forward connection is cached for the client connection
    assert trace(c, B_SOCK, since=1) == [(10.0, B_SOCK, "triggered")]


def test_nested_call_into_a_driver_of_the_same_daemon_is_in_process():
    system = variant(daemons={A: {"drivers": ["hv", "aux"]}, B: {"drivers": []}})
    sim = make_sim(system, scenario=scenario(actions=[action("guest-start", 10, guest="g2")]))
    seen = observe(sim, 10.2, lambda: pool(sim, A).busy)
    c = run(sim, 20)
    assert trace(c, "g2", B_SOCK, since=1) == [
        (10.0, "g2", "action:guest-start"),
        (10.0, "g2", "starting"),
        (10.505, "g2", "running"),  # auxUse 5 ms in-process + hvStart 500 ms
    ]
    assert seen == [1]


def test_dead_cached_forward_connection_fails_calls_with_eof_until_the_client_reconnects():
    sim = make_sim(scenario=scenario(faults=[crash(20, daemon=B)]))
    s = Session(sim, "persistent", None, None)
    first = call_at(sim, 10, HV, "auxList", session=s, per_call=False)
    dead = [call_at(sim, t, HV, "auxList", session=s, per_call=False) for t in (30, 40)]
    local = call_at(sim, 45, HV, "hvList", session=s, per_call=False)
    fresh = call_at(sim, 50, HV, "auxList")  # a new client connection: a new forward
    c = run(sim, 60)
    assert first.ok
    assert [(x.ok, x.error, x.t_end) for x in dead] == [(False, "eof", 30.0), (False, "eof", 40.0)]
    assert local.ok  # the client's own connection to daemon-a is fine
    assert fresh.ok and fresh.t_end == pytest.approx(50.01)
    assert trace(c, B, since=15) == [
        (20.0, B, "exited"),
        (20.1, B, "spawned"),
        (20.26, B, "ready"),
    ]


def test_forward_connections_of_a_dead_daemon_are_closed():
    sim = make_sim(scenario=scenario(faults=[crash(10)]))
    s = Session(sim, "persistent", None, None)
    call_at(sim, 5, HV, "auxList", session=s, per_call=False)  # forward to daemon-b
    c = run(sim, 100)
    # daemon-b lost its only connection at 10: idle exit 30 s later
    assert (40.0, B, "idle-exit") in trace(c, B)


def test_nested_calls_of_a_later_operation_reach_the_restarted_daemon():
    sim = make_sim(scenario=scenario(faults=[crash(20, daemon=B)]))
    s = Session(sim, "persistent", None, None)
    first = call_at(sim, 5, HV, "hvStart", "g2", session=s, per_call=False)
    stop = call_at(sim, 10, HV, "hvStop", "g2", session=s, per_call=False)
    again = call_at(sim, 30, HV, "hvStart", "g2", session=s, per_call=False)
    run(sim, 40)
    assert first.ok and stop.ok  # daemon-b restarted at 20.1, ready at 20.26
    assert (again.ok, again.error) == (True, "")


def test_a_client_reports_a_lost_connection_once():
    sim = make_sim(scenario=scenario(faults=[crash_loop(10)]))
    s = Session(sim, "persistent", None, None)
    call_at(sim, 5, HV, "hvList", session=s, per_call=False)
    late = [call_at(sim, t, HV, "hvList", session=s, per_call=False) for t in (20, 30, 40)]
    c = run(sim, 50)
    assert [x.error for x in late] == ["connect: enoent"] * 3
    assert trace(c, "persistent") == [(20.0, "persistent", "disconnected")]


def test_fixture_topology_is_the_base_of_every_variant():
    assert variant().topology.doc == base_system().topology.doc


def test_max_clients_makes_new_connections_wait_in_the_backlog():
    system = variant(
        daemons={
            A: {
                "servers": [
                    s.model_dump() | {"max_clients": 1} for s in base_system().daemons[A].servers
                ]
            }
        }
    )
    sim = make_sim(system=system)
    first = call_at(sim, 10, HV, "hvBusy")  # holds the only client slot until 11
    second = call_at(sim, 10.5, HV, "hvList")  # accepted when the first connection closes
    seen = observe(sim, 10.6, lambda: sim.daemons[A].connections)
    run(sim, 20)
    assert seen == [1]
    assert first.ok and first.t_end == pytest.approx(11.0)
    assert second.ok and second.t_end == pytest.approx(11.01)
