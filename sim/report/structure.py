"""How an experiment's scenarios are organised: a fault matrix, sweeps, plain scenarios.

Matrix scenarios are named ``<target>.<fault>`` and sweep scenarios
``<sweep>.<axis>-<label>[.<axis>-<label>...]`` (:mod:`sim.model.scenarios`); this module maps the
names in a summary back onto the matrix grid and the sweep axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.report.results import Results
from sim.schema.experiment import Sweep


@dataclass(frozen=True)
class MatrixLayout:
    """Rows (targets), columns (fault kinds) and the scenario in each filled cell."""

    targets: tuple[str, ...]
    faults: tuple[str, ...]
    cells: dict[tuple[str, str], str]

    @property
    def scenarios(self) -> list[str]:
        """The filled cells' scenarios, row by row in target then fault order."""
        return [self.cells[k] for k in sorted(self.cells, key=self._order)]

    def _order(self, key: tuple[str, str]) -> tuple[int, int]:
        return self.targets.index(key[0]), self.faults.index(key[1])


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: its scenario, and each axis's label and value there."""

    scenario: str
    labels: tuple[str, ...]
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SweepLayout:
    """One sweep: its axes and the scenarios at each point."""

    name: str
    description: str
    axes: tuple[str, ...]
    points: tuple[SweepPoint, ...]

    def numeric(self, axis: int) -> bool:
        """Whether every value on ``axis`` is a number (plotted on a numeric x axis)."""
        return all(_is_number(p.values[axis]) for p in self.points)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def matrix_layout(res: Results) -> MatrixLayout | None:
    """The fault matrix of the summary's scenarios, or ``None`` when there is no matrix or none
    of its scenarios are in the summary.
    """
    exp = res.experiment
    if exp is None or exp.matrix is None:
        return None
    present = set(res.scenarios)
    cells = {}
    for t in exp.matrix.targets:
        for f in exp.matrix.faults:
            name = f"{t.name}.{f.name}"
            if getattr(t, f.on) is not None and name in present:
                cells[(t.name, f.name)] = name
    if not cells:
        return None
    targets = tuple(t.name for t in exp.matrix.targets if any(k[0] == t.name for k in cells))
    faults = tuple(f.name for f in exp.matrix.faults if any(k[1] == f.name for k in cells))
    return MatrixLayout(targets, faults, cells)


def _labels_of(sweep: Sweep, axis: int) -> list[str]:
    a = sweep.axes[axis]
    if a.labels is not None:
        return list(a.labels)
    return ["none" if v is None else str(v).lower() for v in a.values]


def _parse(sweep: Sweep, name: str) -> SweepPoint | None:
    """The point of ``name`` in ``sweep``, or None when the name is not one of its scenarios."""
    rest = name.removeprefix(f"{sweep.name}.")
    if rest == name:
        return None
    labels, values = [], []
    for i, axis in enumerate(sweep.axes):
        if not rest.startswith(f"{axis.name}-"):
            return None
        rest = rest[len(axis.name) + 1 :]
        if i + 1 < len(sweep.axes):
            cut = rest.find(f".{sweep.axes[i + 1].name}-")
            if cut < 0:
                return None
            label, rest = rest[:cut], rest[cut + 1 :]
        else:
            label, rest = rest, ""
        known = _labels_of(sweep, i)
        labels.append(label)
        values.append(axis.values[known.index(label)] if label in known else label)
    return SweepPoint(name, tuple(labels), tuple(values))


def sweep_layouts(res: Results) -> list[SweepLayout]:
    """The layout of each sweep that has scenarios in the summary."""
    if res.experiment is None:
        return []
    out = []
    for sweep in res.experiment.sweeps:
        points = [p for p in (_parse(sweep, s) for s in res.scenarios) if p is not None]
        if points:
            axes = tuple(a.name for a in sweep.axes)
            out.append(SweepLayout(sweep.name, sweep.description, axes, tuple(points)))
    return out


def plain_scenarios(res: Results) -> list[str]:
    """Scenarios that are neither matrix cells nor sweep points, in summary order."""
    matrix = matrix_layout(res)
    taken = set(matrix.scenarios) if matrix else set()
    taken |= {p.scenario for s in sweep_layouts(res) for p in s.points}
    return [s for s in res.scenarios if s not in taken]
