"""Daemons without systemd (topology ``supervisor: none``; issue 8 section 7, LIBVIRT-FACTS
10.5), one trace test per rule of :mod:`sim.engine.systemd` (its "Without a supervisor"
paragraph), plus the rule that stopping a socket cancels the pending automatic restart of a
failed service that ``Requires=`` it.

Fixture times as in ``test_systemd_rules``: daemon-a is ready 0.3 s after its spawn,
daemon-b 0.16 s after; RestartSec 0.1 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from enginekit import call_at, make_sim, run, scenario, trace, variant, workload_variant

from sim.model.load import load_system, load_workload
from sim.model.resolved import System

A, B = "daemon-a", "daemon-b"
A_SVC, A_SOCK, A_TCP = "daemon-a.service", "daemon-a.socket", "daemon-a-tcp.socket"
B_SVC, B_SOCK = "daemon-b.service", "daemon-b.socket"
HV, AUX = "hv:///x", "aux:///x"


def by_hand(*daemons: str) -> System:
    return variant(topology={"supervisor": "none", "manual_start": list(daemons or [A])})


def act(kind: str, at: float, unit: str = A_SVC) -> dict:
    return {"kind": kind, "target": {"unit": unit}, "at_s": at}


def crash(at: float, daemon: str = A) -> dict:
    return {"kind": "crash", "target": {"daemon": daemon}, "at_s": at}


def test_without_supervisor_boot_starts_only_the_manual_start_daemons():
    sim = make_sim(by_hand())
    c = run(sim, 10)
    assert trace(c) == [
        (0.0, A_SVC, "activating"),
        (0.0, A_SOCK, "listening"),  # the daemon binds its own enabled socket ...
        (0.0, A, "spawned"),  # ... (daemon-a-tcp.socket is disabled by the preset)
        (0.3, A, "ready"),
        (0.3, A_SVC, "active"),
    ]
    assert not sim.daemons[B].alive and sim.manager.units[B_SOCK].state == "inactive"


def test_without_supervisor_there_is_no_socket_activation():
    """daemon-b never ran: its socket file does not exist (ENOENT), nothing starts it."""
    sim = make_sim(by_hand())
    call = call_at(sim, 5, AUX, "auxList")
    c = run(sim, 10)
    assert (call.ok, call.error, call.t_end) == (False, "connect: enoent", 5.0)
    assert trace(c, B, B_SVC, B_SOCK) == []


def test_without_supervisor_a_crashed_daemon_leaves_its_socket_refusing_connections():
    sim = make_sim(by_hand(), scenario=scenario(faults=[crash(10)]))
    late = call_at(sim, 11, HV, "hvList")
    c = run(sim, 100)
    assert trace(c, A, A_SVC, A_SOCK, since=1) == [
        (10.0, A, "exited"),
        (10.0, A_SVC, "failed"),  # no auto-restart
        (10.0, A_SOCK, "inactive"),
    ]
    assert sim.manager.units[A_SOCK].path_present  # the file stays, nobody listens
    assert (late.ok, late.error, late.t_end) == (False, "connect: econnrefused", 11.0)
    assert not sim.daemons[A].alive


def test_without_supervisor_a_clean_stop_removes_the_socket_file():
    """A daemon that exits cleanly unlinks the UNIX path it bound (virNetSocketDispose)."""
    sim = make_sim(by_hand(), scenario=scenario(actions=[act("stop", 10)]))
    late = call_at(sim, 11, HV, "hvList")
    c = run(sim, 100)
    assert trace(c, A, A_SVC, A_SOCK, since=1) == [
        (10.0, A_SVC, "action:stop"),
        (10.0, A, "exited"),
        (10.0, A_SVC, "inactive"),
        (10.0, A_SOCK, "inactive"),
    ]
    assert (late.ok, late.error) == (False, "connect: enoent")


def test_without_supervisor_admin_start_runs_the_daemon_by_hand():
    sim = make_sim(by_hand(), scenario=scenario(faults=[crash(10)], actions=[act("start", 20)]))
    late = call_at(sim, 21, HV, "hvList")
    c = run(sim, 30)
    assert trace(c, A, A_SVC, A_SOCK, since=15) == [
        (20.0, A_SVC, "action:start"),
        (20.0, A_SVC, "activating"),
        (20.0, A_SOCK, "listening"),
        (20.0, A, "spawned"),
        (20.3, A, "ready"),
        (20.3, A_SVC, "active"),
    ]
    assert late.ok


def test_without_supervisor_there_is_no_start_limit():
    """Seven starts within ten seconds (boot + six restarts): systemd would refuse the sixth
    (StartLimitBurst 5 in 10 s); by hand every one runs the daemon."""
    restarts = [act("restart", t) for t in (1, 2, 3, 4, 5, 6)]
    sim = make_sim(by_hand(), scenario=scenario(actions=restarts))
    c = run(sim, 8)
    assert [t for t, s, w in trace(c, A) if w == "spawned"] == [0, 1, 2, 3, 4, 5, 6]
    assert sim.daemons[A].alive
    supervised = make_sim(scenario=scenario(actions=restarts))
    run(supervised, 8)
    assert sim.manager.units[A_SVC].state == "active"
    assert supervised.manager.units[A_SVC].result == "start-limit-hit"


def test_without_supervisor_no_cgroup_kill_reaches_the_guests():
    """Nobody kills a by-hand daemon's leftovers: its guests outlive it whatever KillMode
    the (unused) unit says."""
    system = variant(by_hand(), units={A_SVC: {"kill_mode": "control-group"}})
    wl = workload_variant(host={"guest_scope": "daemon"})
    sim = make_sim(system, wl, scenario(actions=[act("stop", 10)]))
    c = run(sim, 20)
    assert trace(c, "g1") == [] and not c.lost


def test_without_supervisor_dependencies_do_not_propagate():
    """daemon-b.service Requires= daemon-a.service: a stop of daemon-a by hand leaves b."""
    system = variant(by_hand(A, B), units={B_SVC: {"requires": [B_SOCK, A_SVC]}})
    sim = make_sim(system, scenario=scenario(actions=[act("stop", 10)]))
    c = run(sim, 20)
    assert trace(c, B, since=1) == []
    assert sim.daemons[B].alive


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"supervisor": "none"}, "supervisor 'none' needs manual_start"),
        ({"manual_start": [A]}, "manual_start is only for supervisor 'none'"),
    ],
)
def test_supervisor_fields_are_validated(fields: dict, message: str) -> None:
    with pytest.raises(Exception, match=message):
        variant(topology=fields)


# ------------------------------------------------------------------ Requires= and restart


def test_requires_stopping_the_socket_cancels_the_pending_restart_of_a_failed_service():
    """daemon-a.service Requires= daemon-a.socket.  It crashes at 10 (restart due at 10.1);
    the socket is stopped at 10.05: systemd's stop job on the unit in auto-restart cancels
    the restart, so nothing starts the socket again."""
    sim = make_sim(scenario=scenario(faults=[crash(10)], actions=[act("stop", 10.05, A_SOCK)]))
    c = run(sim, 20)
    assert trace(c, A, A_SVC, A_SOCK, A_TCP, since=1) == [
        (10.0, A, "exited"),
        (10.0, A_SVC, "failed"),
        (10.05, A_SOCK, "action:stop"),
        (10.05, A_SOCK, "inactive"),
        (10.05, A_SVC, "inactive"),  # the stop reached the failed service
    ]
    assert not sim.daemons[A].alive
    assert sim.manager.units[A_SOCK].state == "inactive"


# ------------------------------------------------------------------ the shipped variants


@pytest.mark.parametrize(("name", "daemon"), [("modular", "virtqemud"), ("monolithic", "libvirtd")])
def test_without_supervisor_shipped_variant_leaves_a_crashed_hypervisor_refusing(
    name: str, daemon: str
) -> None:
    models = Path(__file__).resolve().parent.parent / "models"
    system = load_system(models / "libvirt" / f"{name}-nosystemd.yaml")
    workload = load_workload(models / "workloads" / "virt-host.yaml")
    crash_it = {"kind": "crash", "target": {"driver": "qemu"}, "at_s": 10}
    sim = make_sim(system, workload, scenario(faults=[crash_it]))
    late = call_at(sim, 20, "qemu:///system", "connectListAllDomains")
    sim.run(30)
    assert not sim.daemons[daemon].alive
    assert (late.ok, late.error, late.t_end) == (False, "connect: econnrefused", 20.0)


def test_without_supervisor_static_routes_see_only_the_sockets_bound_by_hand():
    """The static analysis agrees with the engine: live units are the manual_start services
    and the sockets their daemons bind; no unit-to-unit dependency edge exists."""
    from sim.model.routing import live_units
    from sim.static.depgraph import build_graph

    system = by_hand()
    live = live_units(system)
    assert {A_SVC, A_SOCK} <= live and not {B_SVC, B_SOCK, A_TCP} & live
    graph = build_graph(system, workload_variant())
    rels = {attrs["rel"] for _, _, attrs in graph.edges(data=True)}
    assert not {"requires", "binds-to", "wants"} & rels
    supervised = build_graph(variant(), workload_variant())
    assert "binds-to" in {attrs["rel"] for _, _, attrs in supervised.edges(data=True)}
