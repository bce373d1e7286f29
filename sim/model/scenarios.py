"""Scenario expansion: an experiment's matrix and sweeps as a list of scenarios.

An experiment's scenarios are its ``scenarios`` list, then its ``matrix`` (targets x faults,
named ``<target>.<fault>``), then its ``sweeps`` (cartesian product of axis values, named
``<sweep>.<axis>-<label>...``), in that order.  A scenario's overrides are applied by
:mod:`sim.model.resolved` and produce modified copies of the validated models; the engine
never sees the difference.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

from pydantic import ValidationError

from sim.errors import ConfigIssue
from sim.model.loader import Loaded
from sim.schema.common import SAFE_NAME
from sim.schema.experiment import (
    MAX_SCENARIOS,
    Experiment,
    Matrix,
    Scenario,
    Sweep,
)


def from_matrix(matrix: Matrix) -> list[Scenario]:
    """The matrix's scenarios: each fault on each target that has the field the fault is ``on``.

    Each is named ``<target>.<fault>``, starts at the matrix's ``at_s``, with the matrix's and the
    target's clients; the fault's actions are aimed at the same target.
    """
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


class PathError(ValueError):
    """A sweep axis path that names no place in the scenario template."""


class AxisError(ValueError):
    """A :class:`PathError` of one axis (its index in the sweep)."""

    def __init__(self, axis: int, path: str, reason: str) -> None:
        super().__init__(f"path {path!r}: {reason}")
        self.axis = axis


SWEPT_FIELDS = tuple(f for f in Scenario.model_fields if f != "name")
"""The scenario fields an axis path may start with."""


def _step(node: Any, part: str) -> tuple[Any, Any]:
    """``(container, key)`` for one path part; a missing mapping key is created."""
    if part == "":
        raise PathError("a path part is empty")
    if isinstance(node, list):
        if not part.isdigit():
            raise PathError(f"{part!r} is not an index of a list")
        if int(part) >= len(node):
            items = f"{len(node)} item" + ("" if len(node) == 1 else "s")
            raise PathError(f"index {part} is out of range (the list has {items})")
        return node, int(part)
    if isinstance(node, dict):
        return node, part
    raise PathError(f"{part!r} is below a value ({node!r}), not a mapping or list")


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at the dotted ``path`` of ``doc``; raise :class:`PathError` when the
    path names no field, goes through a value, or indexes past a list's end."""
    parts = path.split(".")
    if parts[0] not in SWEPT_FIELDS:
        raise PathError(f"{parts[0]!r} is not a scenario field (one of {', '.join(SWEPT_FIELDS)})")
    node: Any = doc
    for part in parts[:-1]:
        container, key = _step(node, part)
        if isinstance(container, dict) and key not in container:
            container[key] = {}
        node = container[key]
    container, key = _step(node, parts[-1])
    container[key] = value


def _label(value: Any) -> str:
    text = "none" if value is None else str(value).lower()
    return text if SAFE_NAME.match(text) else "v"


def from_sweep(sweep: Sweep) -> list[dict[str, Any]]:
    """Scenario dicts (validated by the caller, so errors point at the sweep).

    Raises :class:`AxisError` when an axis path names no place in the template.
    """
    out = []
    ranges = [range(len(a.values)) for a in sweep.axes]
    for combo in itertools.product(*ranges):
        doc = copy.deepcopy(sweep.template)
        name = sweep.name
        for j, (axis, i) in enumerate(zip(sweep.axes, combo, strict=True)):
            try:
                _set(doc, axis.path, copy.deepcopy(axis.values[i]))
            except PathError as err:
                raise AxisError(j, axis.path, str(err)) from None
            label = axis.labels[i] if axis.labels else _label(axis.values[i])
            name += f".{axis.name}-{label}"
        doc["name"] = name
        out.append(doc)
    return out


def size_of(exp: Experiment) -> int:
    """How many scenarios ``exp`` expands to, computed without expanding it."""
    matrix = len(exp.matrix.targets) * len(exp.matrix.faults) if exp.matrix else 0
    sweeps = sum(math.prod(len(a.values) for a in s.axes) for s in exp.sweeps)
    return len(exp.scenarios) + matrix + sweeps


def expand(exp: Loaded[Experiment]) -> tuple[list[Scenario], list[ConfigIssue]]:
    """Every scenario of the experiment, and the problems found while expanding."""
    size = size_of(exp.doc)
    if size > MAX_SCENARIOS:
        msg = f"the experiment expands to {size} scenarios, more than {MAX_SCENARIOS}"
        return [], [exp.issue(("scenarios",), msg)]
    scenarios = list(exp.doc.scenarios)
    issues: list[ConfigIssue] = []
    if exp.doc.matrix is not None:
        try:
            scenarios += from_matrix(exp.doc.matrix)
        except ValidationError as err:
            for e in err.errors():
                issues.append(exp.issue(("matrix",), f"expanded scenario: {e['msg']}"))
    for i, sweep in enumerate(exp.doc.sweeps):
        scenarios += _sweep_scenarios(exp, i, sweep, issues)
    seen = {sc.name for sc in exp.doc.scenarios}  # duplicates there: check_experiment
    for sc in scenarios[len(exp.doc.scenarios) :]:
        if sc.name in seen:
            where = "sweeps" if exp.doc.sweeps else "matrix"
            issues.append(exp.issue((where,), f"expanded scenario name {sc.name!r} is taken"))
        seen.add(sc.name)
    if not scenarios and not issues:
        msg = "an experiment needs at least one scenario (scenarios, a matrix or sweeps)"
        issues.append(exp.issue(("scenarios",), msg))
    return scenarios, issues


def _sweep_scenarios(
    exp: Loaded[Experiment], i: int, sweep: Sweep, issues: list[ConfigIssue]
) -> list[Scenario]:
    try:
        docs = from_sweep(sweep)
    except AxisError as err:
        issues.append(exp.issue(("sweeps", i, "axes", err.axis, "path"), str(err)))
        return []
    out = []
    for doc in docs:
        try:
            out.append(Scenario.model_validate(doc))
        except (ValidationError, ValueError, KeyError, IndexError, TypeError) as err:
            msg = f"scenario {doc.get('name')!r} does not validate: {_first(err)}"
            issues.append(exp.issue(("sweeps", i, "template"), msg))
    return out


def _first(err: Exception) -> str:
    if isinstance(err, ValidationError):
        e = err.errors()[0]
        loc = ".".join(str(p) for p in e["loc"])
        return f"{loc}: {e['msg']}"
    return str(err)
