"""Behaviours that must emerge from the engine running the shipped models (issue 3).

Nothing here is scripted: each test runs a shipped experiment (``experiments/*.yaml`` against
``models/libvirt/*.yaml``) through :func:`sim.experiment.runner.run_one`, one replication with the
experiment's own seed, and checks what the trace, the collector and the metrics show.  Daemon,
unit and guest names are derived from the models (``System.host_of``, ``daemons_with_role``,
the scenario's targets), so the tests follow the models when they change.  Which system is
"monolithic" is also derived: the one where the hypervisor and network drivers share a daemon.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from sim.engine.simulation import Simulation
from sim.experiment.runner import Task, run_one
from sim.model.load import load_experiment
from sim.model.loader import Loaded
from sim.model.resolved import ExperimentModel, System
from sim.schema.experiment import Scenario

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
MONOLITHIC, MODULAR = "monolithic", "modular"  # shapes, told apart by system_of()


# ----------------------------------------------------------------------------- helpers
@cache
def experiment(name: str) -> ExperimentModel:
    return load_experiment(EXPERIMENTS / f"{name}.yaml")


def shortened(model: ExperimentModel, **update: Any) -> ExperimentModel:
    """A copy of ``model`` whose experiment document has some fields replaced."""
    doc = model.doc.model_copy(update=update)
    return replace(model, experiment=Loaded(doc, model.experiment.src))


def guest_driver(model: ExperimentModel) -> str:
    drivers = [d.name for d in model.workload.catalog.doc.drivers if d.hosts_guests]
    assert len(drivers) == 1
    return drivers[0]


def system_of(model: ExperimentModel, shape: str) -> System:
    """The monolithic system (hypervisor and network driver in one daemon) or the modular one."""
    hv = guest_driver(model)
    for system in model.systems:
        one = system.host_of[hv] == system.host_of["network"]
        if one == (shape == MONOLITHIC):
            return system
    raise AssertionError(f"no {shape} topology in {model.doc.name}")


def scenario_of(model: ExperimentModel, name: str) -> Scenario:
    return next(s for s in model.doc.scenarios if s.name == name)


def run(
    model: ExperimentModel, scenario: str, system: System, sample_every_s: float | None = None
) -> tuple[dict[str, Any], Simulation]:
    task = Task(scenario, system.name, 0)
    return run_one(model, task, model.doc.seed, keep_trace=True, sample_every_s=sample_every_s)


def events(sim: Simulation, subject: str, what: str | None = None) -> list[float]:
    """Times of ``subject``'s events (only ``what`` events when given)."""
    return [
        t for t, s, w, _ in sim.collector.events if s == subject and (what is None or w == what)
    ]


def first(times: list[float], after: float = -math.inf) -> float:
    return next(t for t in times if t >= after)


def alive_during(sim: Simulation, daemon: str, t0: float, t1: float) -> bool:
    """The daemon's process ran throughout ``[t0, t1]`` (spawned before, no exit in it)."""
    state = False
    for t, s, w, _ in sim.collector.events:
        if s != daemon or w not in ("spawned", "exited"):
            continue
        if t > t1:
            break
        if t >= t0 and w == "exited":
            return False
        state = w == "spawned" if t <= t0 else state
    return state


def unit_sockets(system: System, daemon: str) -> list[str]:
    unit = system.daemons[daemon].unit
    return sorted(n for n, u in system.units.items() if getattr(u, "service", None) == unit)


def pool_capacity(system: System, daemon: str) -> int:
    main = next(s for s in system.daemons[daemon].servers if s.name == "main")
    return main.max_workers + main.prio_workers


def peak_busy(sim: Simulation, daemon: str, t0: float, t1: float) -> int:
    return max(b for t, name, b, _ in sim.collector.samples if name == daemon and t0 <= t <= t1)


def client_failures(sim: Simulation, t0: float, t1: float) -> list[tuple[str, str]]:
    return [
        (r.client, r.error)
        for r in sim.collector.calls
        if not r.ok and r.client != "(internal)" and t0 < r.t_start < t1
    ]


# ----------------------------------------------------------------------------- (a) how-to-test
@pytest.mark.parametrize("shape", [MODULAR, MONOLITHIC])
def test_how_to_test_boot_autostart_idle_exit_and_socket_reactivation(shape):
    model = experiment("how-to-test")
    system = system_of(model, shape)
    sc = scenario_of(model, "boot-and-idle")
    hv = system.host_of[guest_driver(model)]
    (vm,) = [g for g in model.workload.guests if g.autostart]
    (net,) = {system.host_of[system.object_kinds[kind].driver] for kind in vm.refs}
    (stop,) = [a for a in sc.actions if a.kind == "guest-stop"]
    (lister,) = sc.clients
    _, sim = run(model, sc.name, system)

    # boot: the hypervisor daemon is started by the preset and autostarts the guest
    assert events(sim, hv, "spawned")[0] == 0.0
    ready = events(sim, hv, "ready")[0]
    assert events(sim, vm.name, "starting") == [ready]
    running = first(events(sim, vm.name, "running"))
    # the guest's NIC activated the network daemon: it runs right after the guest started
    assert alive_during(sim, net, running, running)
    # the hypervisor daemon stays up while the guest runs, whatever its idle timeout
    stopped = first(events(sim, vm.name, "stopped"))
    assert stop.at_s <= stopped < stop.at_s + 1
    assert alive_during(sim, hv, ready, stopped)
    # ... and exits on its idle timeout once the guest is stopped and no client is connected
    timeout = system.daemons[hv].idle_timeout_s
    assert timeout is not None
    exit_at = first(events(sim, hv, "idle-exit"), after=stopped)
    assert exit_at == pytest.approx(stopped + timeout)
    # a later list call re-activates it through its socket (nothing started it before)
    assert first(events(sim, hv, "spawned"), after=exit_at) == lister.start_s
    calls = [r for r in sim.collector.calls if r.client == lister.name]
    assert calls and all(r.ok for r in calls)
    assert calls[0].t_start == lister.start_s


# ----------------------------------------------------------------------------- (b) qemu crash
@pytest.mark.parametrize("shape", [MODULAR, MONOLITHIC])
def test_hypervisor_daemon_crash_leaves_guests_running(shape):
    model = experiment("qemu-daemon-crash")
    system = system_of(model, shape)
    hv = system.host_of[guest_driver(model)]
    (fault,) = scenario_of(model, "crash").faults
    record, sim = run(model, "crash", system)

    assert record["metrics"]["vms_running"] > 0
    assert record["metrics"]["vms_lost"] == 0
    assert record["lost"] == {}
    assert not any(w == "dead" for _, _, w, _ in sim.collector.events)
    # the crash happened and systemd brought the daemon back within a second
    assert events(sim, hv, "exited")[0] == fault.at_s
    assert first(events(sim, hv, "ready"), after=fault.at_s) < fault.at_s + 1


@pytest.mark.parametrize("shape", [MODULAR, MONOLITHIC])
def test_hypervisor_daemon_crash_during_a_guest_start_loses_that_guest(shape):
    model = experiment("qemu-daemon-crash")
    system = system_of(model, shape)
    sc = scenario_of(model, "crash-during-start")
    (start,) = [a for a in sc.actions if a.kind == "guest-start"]
    guest = start.target.guest
    record, _ = run(model, sc.name, system)

    assert record["metrics"]["vms_lost"] == 1
    assert record["lost"] == {guest: "caught mid-start at reconnect"}


# ----------------------------------------------------------------------------- (c) nodedev hang
def hang_window(model: ExperimentModel, scenario: str) -> tuple[float, float]:
    (fault,) = scenario_of(model, scenario).faults
    assert fault.duration_s is not None
    return fault.at_s, fault.at_s + fault.duration_s


def test_nodedev_hang_via_its_own_uri_is_contained_by_the_modular_topology():
    model = experiment("nodedev-hang")
    sc = "via-nodedev-uri"
    t0, t1 = hang_window(model, sc)
    mono, modu = system_of(model, MONOLITHIC), system_of(model, MODULAR)
    mono_rec, mono_sim = run(model, sc, mono, sample_every_s=10)
    modu_rec, modu_sim = run(model, sc, modu, sample_every_s=10)

    assert modu_rec["metrics"]["blast_radius"] == 0.0
    assert mono_rec["metrics"]["blast_radius"] > 0.5
    # monolithic: the daemon hosting nodedev (and every guest) runs out of workers
    host = mono.host_of["nodedev"]
    assert host == mono.host_of[guest_driver(model)]
    assert peak_busy(mono_sim, host, t0, t1) == pool_capacity(mono, host)
    # modular: the node-device daemon is exhausted, the hypervisor daemon is not
    nodedev, hv = modu.host_of["nodedev"], modu.host_of[guest_driver(model)]
    assert peak_busy(modu_sim, nodedev, t0, t1) == pool_capacity(modu, nodedev)
    assert peak_busy(modu_sim, hv, t0, t1) < pool_capacity(modu, hv)


def test_nodedev_hang_via_the_hypervisor_uri_hurts_both_topologies():
    model = experiment("nodedev-hang")
    sc = "via-hypervisor-uri"
    t0, t1 = hang_window(model, sc)
    for shape in (MONOLITHIC, MODULAR):
        system = system_of(model, shape)
        record, sim = run(model, sc, system, sample_every_s=10)
        hv = system.host_of[guest_driver(model)]
        assert record["metrics"]["blast_radius"] > 0.5, shape
        # the hypervisor daemon runs the calls (monolithic) or forwards them and holds its
        # workers while the node-device daemon does not answer (modular)
        assert peak_busy(sim, hv, t0, t1) == pool_capacity(system, hv), shape


# ----------------------------------------------------------------------------- (d) logd crash
@pytest.mark.parametrize("shape", [MODULAR, MONOLITHIC])
def test_logging_daemon_crash_leaves_running_guests_running(shape):
    model = experiment("logd-crash")
    system = system_of(model, shape)
    (logd,) = system.daemons_with_role("logging")
    (fault,) = scenario_of(model, "crash").faults
    record, sim = run(model, "crash", system)

    assert events(sim, logd, "exited") == [fault.at_s]
    assert record["metrics"]["vms_running"] > 0
    assert record["metrics"]["vms_lost"] == 0
    assert record["lost"] == {}
    assert not any(w == "dead" for _, _, w, _ in sim.collector.events)
    # no Restart=: systemd does not bring it back on its own
    assert system.service(system.daemons[logd].unit).restart == "no"
    assert events(sim, system.daemons[logd].unit, "auto-restart") == []


@pytest.mark.parametrize("shape", [MODULAR, MONOLITHIC])
def test_logging_daemon_crash_next_guest_start_reactivates_it(shape):
    model = experiment("logd-crash")
    system = system_of(model, shape)
    (logd,) = system.daemons_with_role("logging")
    (fault,) = scenario_of(model, "crash").faults
    _, sim = run(model, "crash", system)
    starts = [r for r in sim.collector.calls if r.operation == "start" and r.t_start > fault.at_s]
    assert starts
    assert all(r.ok for r in starts), sorted({r.error for r in starts if not r.ok})
    assert events(sim, logd, "spawned")[-1] > fault.at_s


def test_network_daemon_crash_guest_starts_recover_once_it_is_back():
    model = experiment("network-daemon-crash")
    system = system_of(model, MODULAR)
    (fault,) = scenario_of(model, "crash").faults
    _, sim = run(model, "crash", system)
    net = system.host_of["network"]
    back = first(events(sim, net, "ready"), after=fault.at_s)
    starts = [r for r in sim.collector.calls if r.operation == "start" and r.t_start > back]
    assert starts
    assert all(r.ok for r in starts), sorted({r.error for r in starts if not r.ok})


# ----------------------------------------------------------------------------- (e) crash loop
def crash_loop_run(shape: str) -> tuple[ExperimentModel, System, Simulation, float, float]:
    """The hypervisor crash-loop scenario, stopped before the operator's reset-failed."""
    model = experiment("crash-loop")
    sc = scenario_of(model, "hypervisor")
    (reset,) = sc.actions
    model = shortened(model, duration_s=reset.at_s - 1)
    system = system_of(model, shape)
    _, sim = run(model, sc.name, system)
    (fault,) = sc.faults
    return model, system, sim, fault.at_s, reset.at_s - 1


def main_socket(model: ExperimentModel, system: System) -> str:
    """The socket unit behind the first path of the hypervisor driver's URI."""
    uri = system.drivers[guest_driver(model)].uri
    return system.socket_of_path[system.routes[uri][0]]


@pytest.mark.parametrize("shape", [MODULAR, MONOLITHIC])
def test_crash_loop_hits_the_start_limit_and_fails_service_and_sockets(shape):
    model, system, sim, fault_at, _ = crash_loop_run(shape)
    hv = system.host_of[guest_driver(model)]
    unit = system.service(system.daemons[hv].unit)
    svc = sim.manager.units[unit.name]
    assert (svc.state, svc.result) == ("failed", "start-limit-hit")
    limit_at = first(events(sim, main_socket(model, system), "failed"))
    starts = [t for t in events(sim, hv, "spawned") if fault_at <= t <= limit_at]
    assert len(starts) == unit.start_limit_burst
    assert limit_at - starts[0] < unit.start_limit_interval_s
    # every socket that was listening failed with the service's result, its path removed
    enabled = [n for n in unit_sockets(system, hv) if n in system.enabled]
    assert main_socket(model, system) in enabled
    for name in enabled:
        sock = sim.manager.units[name]
        assert (sock.state, sock.result) == ("failed", "service-start-limit-hit"), name
        assert not sock.path_present, name
    assert events(sim, hv, "spawned")[-1] == starts[-1]  # never started again


def test_crash_loop_monolithic_clients_get_no_such_file():
    model, system, sim, _, until = crash_loop_run(MONOLITHIC)
    limit_at = first(events(sim, main_socket(model, system), "failed"))
    failures = client_failures(sim, limit_at, until)
    assert failures
    assert {err for _, err in failures} == {"connect: enoent"}


def test_crash_loop_modular_clients_fall_back_to_the_proxy_which_cannot_forward():
    model, system, sim, _, until = crash_loop_run(MODULAR)
    hv = system.host_of[guest_driver(model)]
    (proxy,) = system.daemons_with_role("proxy")
    uri = system.drivers[guest_driver(model)].uri
    # the hypervisor URI's fallback path belongs to the proxy daemon
    assert [d for _, d in system.candidates(uri)] == [hv, proxy]
    limit_at = first(events(sim, main_socket(model, system), "failed"))
    assert first(events(sim, proxy, "spawned"), after=limit_at) < limit_at + 10
    failures = client_failures(sim, limit_at, until)
    assert failures
    # the clients reach the proxy; its forward finds no path to the hypervisor daemon (a
    # command that fails at its lookup names that step: "domainLookupByName: enoent")
    assert {err.rsplit(": ", 1)[-1] for _, err in failures} == {"enoent"}
