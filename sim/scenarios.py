"""Scenario expansion (matrix, sweeps) and per-scenario model overrides.

An experiment's scenarios are its ``scenarios`` list, then its ``matrix`` (targets x faults,
named ``<target>.<fault>``), then its ``sweeps`` (cartesian product of axis values, named
``<sweep>.<axis>-<label>...``), in that order.  Overrides produce modified copies of the
validated models; the engine never sees the difference.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from pydantic import ValidationError

from sim.errors import ConfigIssue
from sim.loader import Loaded
from sim.model import System, WorkloadModel
from sim.schema.common import SAFE_NAME
from sim.schema.experiment import Experiment, Matrix, Overrides, Scenario, Sweep
from sim.schema.workload import Host


def from_matrix(matrix: Matrix) -> list[Scenario]:
    out = []
    for target in matrix.targets:
        for fault in matrix.faults:
            value = getattr(target, fault.on)
            if value is None:
                continue
            spec = fault.model_dump(exclude={"name", "on", "actions"}, exclude_none=True)
            spec |= {"target": {fault.on: value}, "at_s": matrix.at_s}
            out.append(
                Scenario.model_validate(
                    {
                        "name": f"{target.name}.{fault.name}",
                        "clients": [c.model_dump() for c in (*matrix.clients, *target.clients)],
                        "faults": [spec],
                        "actions": [
                            a.model_dump() | {"target": {fault.on: value}} for a in fault.actions
                        ],
                    }
                )
            )
    return out


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = doc
    for part in parts[:-1]:
        key: Any = int(part) if isinstance(node, list) else part
        if isinstance(node, dict) and key not in node:
            node[key] = {}
        node = node[key]
    last: Any = int(parts[-1]) if isinstance(node, list) else parts[-1]
    node[last] = value


def _label(value: Any) -> str:
    text = "none" if value is None else str(value).lower()
    return text if SAFE_NAME.match(text) else "v"


def from_sweep(sweep: Sweep) -> list[dict[str, Any]]:
    """Scenario dicts (validated by the caller, so errors point at the sweep)."""
    out = []
    ranges = [range(len(a.values)) for a in sweep.axes]
    for combo in itertools.product(*ranges):
        doc = copy.deepcopy(sweep.template)
        name = sweep.name
        for axis, i in zip(sweep.axes, combo, strict=True):
            _set(doc, axis.path, copy.deepcopy(axis.values[i]))
            label = axis.labels[i] if axis.labels else _label(axis.values[i])
            name += f".{axis.name}-{label}"
        doc["name"] = name
        out.append(doc)
    return out


def expand(exp: Loaded[Experiment]) -> tuple[list[Scenario], list[ConfigIssue]]:
    """Every scenario of the experiment, and the problems found while expanding."""
    scenarios = list(exp.doc.scenarios)
    issues: list[ConfigIssue] = []
    if exp.doc.matrix is not None:
        try:
            scenarios += from_matrix(exp.doc.matrix)
        except ValidationError as err:
            for e in err.errors():
                issues.append(exp.issue(("matrix",), f"expanded scenario: {e['msg']}"))
    for i, sweep in enumerate(exp.doc.sweeps):
        for doc in from_sweep(sweep):
            try:
                scenarios.append(Scenario.model_validate(doc))
            except (ValidationError, ValueError, KeyError, IndexError, TypeError) as err:
                msg = f"scenario {doc.get('name')!r} does not validate: {_first(err)}"
                issues.append(exp.issue(("sweeps", i, "template"), msg))
    seen = {sc.name for sc in exp.doc.scenarios}  # duplicates there: check_experiment
    for sc in scenarios[len(exp.doc.scenarios) :]:
        if sc.name in seen:
            where = "sweeps" if exp.doc.sweeps else "matrix"
            issues.append(exp.issue((where,), f"expanded scenario name {sc.name!r} is taken"))
        seen.add(sc.name)
    return scenarios, issues


def _first(err: Exception) -> str:
    if isinstance(err, ValidationError):
        e = err.errors()[0]
        loc = ".".join(str(p) for p in e["loc"])
        return f"{loc}: {e['msg']}"
    return str(err)


# ------------------------------------------------------------------------------ overrides
def apply_system(system: System, ov: Overrides) -> System:
    if ov.pool is None:
        return system
    changes = ov.pool.model_dump(exclude_none=True)
    topo = system.topology.doc
    daemons = [
        d.model_copy(update={"servers": [s.model_copy(update=changes) for s in d.servers]})
        for d in topo.daemons
    ]
    return System(
        system.catalog, Loaded(topo.model_copy(update={"daemons": daemons}), system.topology.src)
    )


def apply_workload(workload: WorkloadModel, ov: Overrides) -> WorkloadModel:
    if not ov.counts and ov.probe is None and ov.host is None:
        return workload
    doc = workload.workload.doc
    update: dict[str, Any] = {
        "guests": [
            g.model_copy(update={"count": ov.counts[g.name]}) if g.name in ov.counts else g
            for g in doc.guests
            if ov.counts.get(g.name, 1) > 0
        ],
        "objects": [
            o.model_copy(update={"count": ov.counts[o.name]}) if o.name in ov.counts else o
            for o in doc.objects
            if ov.counts.get(o.name, 1) > 0
        ],
    }
    if ov.probe is not None:
        update["probe"] = doc.probe.model_copy(update=ov.probe.model_dump(exclude_none=True))
    if ov.host is not None:
        host = doc.host or Host(assumption="scenario override of the host")
        update["host"] = host.model_copy(update=ov.host.model_dump(exclude_none=True))
    new = Loaded(doc.model_copy(update=update), workload.workload.src)
    return WorkloadModel(new, workload.catalog, workload.imports)
