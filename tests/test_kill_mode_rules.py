"""KillMode= and where a guest's process lives (issue 16), one trace test per rule.

Rules (:meth:`sim.engine.systemd.Manager.cgroup_emptied`, :mod:`sim.engine.guests`):

- a guest lives in a machine scope (host ``guest_scope: machine``, the default) or in the
  cgroup of the daemon that started it (``guest_scope: daemon``: no systemd-machined, or an
  unprivileged daemon; src/util/vircgroup.c virCgroupNewMachine falls back to
  virCgroupNewMachineManual, whose group is placed under the daemon's own cgroup;
  src/qemu/qemu_cgroup.c qemuInitCgroup makes none for an unprivileged driver);
- when the daemon's main process ends (stop, crash, idle exit), ``KillMode=control-group``
  kills the rest of the cgroup with SIGTERM, ``mixed`` with SIGKILL; ``process`` and ``none``
  leave it; a crash kills before the automatic restart, so the restarted daemon reconnects
  to nobody;
- guests in a machine scope never meet their daemon's KillMode.

Fixture times as in ``test_systemd_rules``: daemon-a ready 0.3 s after its spawn, RestartSec
0.1 s, ``hvStart`` 0.5 s.
"""

from __future__ import annotations

import pytest
from enginekit import (
    base_system,
    call_at,
    data_of,
    make_sim,
    run,
    scenario,
    trace,
    variant,
    workload_variant,
)

from sim.engine.simulation import Simulation
from sim.engine.trace import Collector
from sim.model.loader import Loaded
from sim.model.resolved import System
from sim.schema import Catalog

A, A_SVC = "daemon-a", "daemon-a.service"
HV = "hv:///x"
IN_CGROUP = {"guest_scope": "daemon"}


def kill_mode(mode: str, system: System | None = None) -> System:
    return variant(system, units={A_SVC: {"kill_mode": mode}})


def action(kind: str, at: float) -> dict:
    return {"kind": kind, "target": {"unit": A_SVC}, "at_s": at}


def crash(at: float) -> dict:
    return {"kind": "crash", "target": {"daemon": A}, "at_s": at}


def stop_at(
    system: System, at: float = 10.0, guest_scope: str = "daemon"
) -> tuple[Simulation, Collector]:
    sim = make_sim(
        system,
        workload_variant(host={"guest_scope": guest_scope}),
        scenario(actions=[action("stop", at)]),
    )
    return sim, run(sim, 20)


@pytest.mark.parametrize(("mode", "signal"), [("control-group", "SIGTERM"), ("mixed", "SIGKILL")])
def test_kill_mode_control_group_and_mixed_kill_guests_in_the_daemon_cgroup_on_stop(
    mode: str, signal: str
) -> None:
    _, c = stop_at(kill_mode(mode))
    assert trace(c, A, "g1", since=1) == [(10.0, A, "exited"), (10.0, "g1", "dead")]
    reason = f"{signal} to daemon-a.service's cgroup (KillMode={mode})"
    assert data_of(c, "g1", "dead") == [{"reason": reason}]
    assert c.lost == {"g1": (10.0, reason)}


@pytest.mark.parametrize("mode", ["process", "none"])
def test_kill_mode_process_and_none_leave_the_guests_on_stop(mode: str) -> None:
    sim, c = stop_at(kill_mode(mode))
    assert trace(c, "g1") == []
    assert sim.guests.by_name["g1"].state == "running" and not c.lost


def test_kill_mode_does_not_reach_guests_in_a_machine_scope() -> None:
    _, c = stop_at(kill_mode("control-group"), guest_scope="machine")
    assert trace(c, "g1") == [] and not c.lost


def test_kill_mode_control_group_kills_guests_on_a_crash_before_the_restart() -> None:
    system = kill_mode("control-group")
    sim = make_sim(system, workload_variant(host=IN_CGROUP), scenario(faults=[crash(10)]))
    c = run(sim, 20)
    assert trace(c, A, A_SVC, "g1", since=1) == [
        (10.0, A, "exited"),
        (10.0, "g1", "dead"),
        (10.0, A_SVC, "failed"),
        (10.1, A_SVC, "auto-restart"),
        (10.1, A_SVC, "activating"),
        (10.1, A, "spawned"),
        (10.4, A, "ready"),
        (10.4, A_SVC, "active"),
    ]
    later = [r for r in c.calls if r.procedure == "hvReconnect" and r.t_start > 1]
    assert not later  # the restarted daemon has nobody to reconnect to


def test_kill_mode_process_keeps_guests_through_a_crash_and_restart() -> None:
    sim = make_sim(base_system(), workload_variant(host=IN_CGROUP), scenario(faults=[crash(10)]))
    c = run(sim, 20)
    assert trace(c, "g1") == [] and sim.guests.by_name["g1"].state == "running"


def test_kill_mode_control_group_on_restart_action_kills_then_starts_with_no_guests() -> None:
    system = kill_mode("control-group")
    sim = make_sim(
        system, workload_variant(host=IN_CGROUP), scenario(actions=[action("restart", 10)])
    )
    c = run(sim, 20)
    assert trace(c, "g1") == [(10.0, "g1", "dead")]
    assert sim.daemons[A].alive


def test_kill_mode_applies_to_a_guest_the_daemon_started_itself() -> None:
    """g2 starts through daemon-a (hvStart) and so joins daemon-a's cgroup."""
    system = kill_mode("control-group")
    sim = make_sim(system, workload_variant(host=IN_CGROUP), scenario(actions=[action("stop", 10)]))
    start = call_at(sim, 1, HV, "hvStart", "g2")
    c = run(sim, 20)
    assert start.ok
    # running after daemon-b's activation (0.16 s) and auxUse (5 ms) and hvStart (0.5 s)
    assert trace(c, "g2") == [
        (1.0, "g2", "starting"),
        (1.665, "g2", "running"),
        (10.0, "g2", "dead"),
    ]
    assert sim.guests.by_name["g2"].cgroup == A


def test_kill_mode_control_group_kills_guests_on_idle_exit() -> None:
    """Idle exit is exit 0 of the main process: the cgroup is killed as on a stop.  (A driver
    whose guests inhibit idle exit never gets there while they run, so the fixture's hv
    driver is made non-inhibiting here.)"""
    base = kill_mode("control-group")
    data = base.catalog.doc.model_dump()
    for drv in data["drivers"]:
        drv["inhibits_idle_exit"] = False
    catalog = Loaded(Catalog.model_validate(data), base.catalog.src)
    system = System(catalog, base.topology)
    sim = make_sim(system, workload_variant(host=IN_CGROUP))
    c = run(sim, 100)
    assert trace(c, A, "g1", since=1) == [
        (60.3, A, "idle-exit"),
        (60.3, A, "exited"),
        (60.3, "g1", "dead"),
    ]
