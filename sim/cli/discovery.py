"""What an experiment can name, for ``virtchaos list`` and ``run --dry-run``: fault and
action kinds (from the schema), targets of a topology and workload, metrics, client
profiles, and an experiment's plan (scenarios, runs, estimated size).

Everything here is read from the schema and the loaded models; nothing is listed by hand
except the metrics' one-line meanings (:data:`METRICS`)."""

from __future__ import annotations

import inspect
from typing import Any, get_args

from sim.experiment.metrics import HEADLINE
from sim.model.resolved import ExperimentModel, System, WorkloadModel

METRICS: dict[str, str] = {
    "blast_radius": "fraction of the guests running at the fault that were lost or "
    "unmanageable in the observation window",
    "vms_lost": "guests running at the fault that died at or after it",
    "vms_unmanageable": "guests running at the fault, not lost, whose management failed in "
    "the window",
    "unmanageable_vm_seconds": "guest-seconds of failed management in the window (guests x s)",
    "failed_operations": "management operations (start, stop, manage, config, reconnect, "
    "connect) of clients and daemons that failed in the window",
    "time_to_recover_s": "seconds from the last fault's end until every guest not lost is "
    "manageable again (null when one is not by the end)",
    "vms_running": "guests running at the fault",
    "api_p50_ms": "median latency of the clients' successful API calls (ms)",
    "api_p99_ms": "99th percentile latency of the clients' successful API calls (ms)",
    "api_errors": "client API calls that failed",
    "api_errors.DRIVER": "client API calls into DRIVER that failed (connect: connecting)",
    "daemon_init_cpu_ms": "CPU the daemons spent initialising over the run (ms)",
    "daemons_running": "daemon processes running at the end of the run",
    "daemons_running.tT": "daemon processes running at time T (experiments that ask)",
    "time_to_ready_s": "from power-on until every daemon the boot started was ready",
    "time_to_autostart_s": "from power-on until every autostart guest ran",
    "autostart_done": "autostart guests that were started by the end of a power-on run",
    "time_to_reconnect_s": "after a daemon restart with running guests: readiness to the "
    "end of its last guest reconnect",
}
"""The metrics a run records (:func:`sim.experiment.metrics.compute`; boot experiments add their
``time_to_*`` metrics), with what each measures."""


def _literal(model: Any, field: str) -> list[str]:
    return list(get_args(model.model_fields[field].annotation))


def _scopes(model: Any) -> list[str]:
    return [a for a in get_args(model.model_fields["scope"].annotation) if a is not type(None)]


def faults() -> dict[str, Any]:
    """Fault kinds, hang scopes, action kinds and target fields, with their documentation."""
    from sim.schema.experiment import Action, Fault, Target

    scopes = [a for t in _scopes(Fault) for a in get_args(t)]
    return {
        "faults": _literal(Fault, "kind"),
        "scopes": scopes,
        "actions": _literal(Action, "kind"),
        "targets": list(Target.model_fields),
        "faults_doc": inspect.cleandoc(Fault.__doc__ or ""),
        "actions_doc": inspect.cleandoc(Action.__doc__ or ""),
    }


def targets(system: System, workload: WorkloadModel) -> dict[str, list[str]]:
    """Every name each target field can take in this topology and workload."""
    roles = sorted({r for d in system.topology.doc.daemons for r in d.roles})
    return {
        "role": roles,
        "daemon": sorted(system.daemons),
        "unit": sorted(system.units),
        "driver": sorted(system.drivers),
        "procedure": sorted(system.procedures),
        "object": sorted(workload.objects),
        "group": sorted({g.group for g in workload.guests}),
        "guest": [g.name for g in workload.guests],
    }


def metrics() -> list[dict[str, Any]]:
    """Every metric, whether it is a headline metric, and what it measures."""
    return [
        {"metric": name, "headline": name in HEADLINE, "meaning": meaning}
        for name, meaning in METRICS.items()
    ]


def profiles(workload: WorkloadModel) -> list[dict[str, Any]]:
    """The client profiles a scenario's ``clients:`` can name, with what they call."""
    out = []
    for name, p in sorted(workload.profiles.items()):
        calls = sorted({c.procedure or c.command or "?" for c in p.calls})
        out.append(
            {"profile": name, "description": " ".join(p.description.split()), "calls": calls}
        )
    return out


def plan(model: ExperimentModel, replications: int, jobs: int) -> dict[str, Any]:
    """What ``run`` would do: scenarios, topologies, runs and the estimated size and time
    (:mod:`sim.experiment.budget`: an order of magnitude, not a prediction)."""
    from sim.experiment.budget import EVENTS_PER_SECOND, estimate

    size = estimate(model, replications)
    cpu_s = size.events / EVENTS_PER_SECOND
    scenarios = [
        {
            "scenario": s.name,
            "faults": [f"{f.kind} {f.target} at {f.at_s:g} s" for f in s.faults],
            "actions": [f"{a.kind} {a.target} at {a.at_s:g} s" for a in s.actions],
            "clients": [f"{c.count} x {c.profile}" for c in s.clients],
        }
        for s in model.scenarios
    ]
    return {
        "experiment": model.doc.name,
        "topologies": [s.name for s in model.systems],
        "workload": model.workload.name,
        "duration_s": model.doc.duration_s,
        "replications": replications,
        "scenarios": scenarios,
        "runs": size.runs,
        "estimated_events": size.events,
        "estimated_cpu_s": cpu_s,
        "estimated_wall_s": cpu_s / max(1, jobs),
        "jobs": jobs,
    }
