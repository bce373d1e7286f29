"""Timelines of one replication, re-run in-process with its trace (deterministic).

For each topology: the state of every daemon's service over time (coloured bands, with a
mark at each abnormal exit), the busy workers of every daemon (sampled), and how many guests
are unmanageable or lost.  The warm-up and the fault window are shaded.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from sim.experiment.metrics import Window
from sim.experiment.runlog import read_runs
from sim.experiment.runner import Task, run_one
from sim.model.resolved import ExperimentModel
from sim.report.findings import PRIMARY
from sim.report.fmt import num
from sim.report.plotting import PALETTE, new_figure
from sim.report.results import Results
from sim.report.structure import matrix_layout
from sim.schema.experiment import Action, Fault

SAMPLE_EVERY_S = 5.0
CAP = 24
STATES = {
    "active": "#2ca02c",
    "activating": "#f2c94c",
    "inactive": "#d9d9d9",
    "failed": "#d62728",
    "hung": "#7b3fa0",
}

Band = tuple[float, float, str]


@dataclass
class Timeline:
    """What one topology did in replication 0 of one scenario."""

    topology: str
    end: float
    window: Window
    daemons: list[str]
    bands: dict[str, list[Band]] = field(default_factory=dict)
    exits: dict[str, list[float]] = field(default_factory=dict)
    busy: dict[str, tuple[list[float], list[int]]] = field(default_factory=dict)
    unmanageable: tuple[list[float], list[int]] = ([], [])
    lost: tuple[list[float], list[int]] = ([], [])
    metrics: dict[str, float] = field(default_factory=dict)
    actions: list[float] = field(default_factory=list)


# ------------------------------------------------------------------------------ choosing
def select(res: Results, patterns: Sequence[str] = (), cap: int = CAP) -> list[str]:
    """Scenarios to draw: those matching ``patterns`` (globs), else all up to ``cap``; past
    the cap, whole matrix columns (or single scenarios) with the largest paired difference
    in blast radius first, kept in experiment order."""
    names = res.scenarios
    if patterns:
        return [s for s in names if any(fnmatch.fnmatchcase(s, p) for p in patterns)]
    if len(names) <= cap:
        return names
    layout = matrix_layout(res)
    if layout is not None:
        groups = [[layout.cells[(t, f)] for t in layout.targets if (t, f) in layout.cells]
                  for f in layout.faults]  # fmt: skip
    else:
        groups = [[s] for s in names]
    groups.sort(key=lambda g: -sum(_gap(res, s) for s in g))
    chosen: set[str] = set()
    for g in groups:
        if len(chosen) + len(g) <= cap:
            chosen |= set(g)
    return [s for s in names if s in chosen]


def _gap(res: Results, scenario: str) -> float:
    if not res.pairs:
        return 0.0
    c = res.comparison(scenario, PRIMARY, *res.pairs[0])
    return abs(float(c["diff_mean"])) if c else 0.0


# ------------------------------------------------------------------------------ data
def recorded(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Replication 0's metrics per (scenario, topology) from ``runs.jsonl``."""
    runs = read_runs(folder / "runs.jsonl")
    return {(r["scenario"], r["topology"]): r["metrics"] for r in runs if r["replication"] == 0}


Event = tuple[float, str, str, dict[str, Any]]


def _bands(events: list[Event], unit: str, end: float) -> list[Band]:
    out: list[Band] = []
    t0, state = 0.0, "inactive"
    for t, subject, what, _ in events:
        if subject == unit and what in STATES and what != state:
            if t > t0:
                out.append((t0, t, state))
            t0, state = t, what
    out.append((t0, end, state))
    return out


def _steps(changes: list[tuple[float, int]], end: float) -> tuple[list[float], list[int]]:
    xs, ys, level = [0.0], [0], 0
    for t, d in sorted(changes):
        level += d
        xs.append(t)
        ys.append(level)
    xs.append(end)
    ys.append(level)
    return xs, ys


def record(model: ExperimentModel, scenario: str, topology: str, seed: int) -> Timeline:
    """Re-run replication 0 of ``scenario`` in ``topology`` with trace and samples."""
    exp = model.doc
    rec, sim = run_one(
        model, Task(scenario, topology, 0), seed, keep_trace=True, sample_every_s=SAMPLE_EVERY_S
    )
    c, end = sim.collector, exp.duration_s
    window = Window.of(model.scenario(scenario), exp.warmup_s, exp.duration_s)
    daemons = sorted(sim.daemons)
    tl = Timeline(topology, end, window, daemons)
    tl.actions = sorted(a.at_s for a in model.scenario(scenario).actions)
    for name in daemons:
        tl.bands[name] = _bands(c.events, sim.daemons[name].spec.unit, end)
        tl.exits[name] = [t for t, s, what, d in c.events
                          if s == name and what == "exited" and d.get("code")]  # fmt: skip
        samples = [(t, b, st) for t, n, b, st in c.samples if n == name]
        tl.busy[name] = ([t for t, _, _ in samples], [b for _, b, _ in samples])
        hung = [(t, min(end, t + SAMPLE_EVERY_S), "hung") for t, _, st in samples if st == "hung"]
        tl.bands[name] += hung
    changes = [(t0, 1) for iv in c.unmanageable.values() for t0, _ in iv if t0 is not None]
    changes += [(t1, -1) for iv in c.unmanageable.values() for _, t1 in iv if t1 is not None]
    tl.unmanageable = _steps(changes, end)
    tl.lost = _steps([(t, 1) for t, _ in c.lost.values()], end)
    tl.metrics = rec["metrics"]
    return tl


# ------------------------------------------------------------------------------ drawing
def _shade(ax: Axes, tl: Timeline) -> None:
    w = tl.window
    if w.start > 0:
        ax.axvspan(0, w.start, color="#f0f0f0", zorder=0)
    if w.fault_end > w.fault_at:
        ax.axvspan(w.fault_at, w.fault_end, color="#d62728", alpha=0.10, zorder=0)
    ax.axvline(w.fault_at, color="#d62728", linestyle="--", linewidth=0.8, zorder=1)
    for t in tl.actions:
        ax.axvline(t, color="black", linestyle=":", linewidth=1.0, zorder=1)


def _states(ax: Axes, tl: Timeline) -> None:
    for i, name in enumerate(tl.daemons):
        for state in STATES:
            spans = [(a, b - a) for a, b, st in tl.bands[name] if st == state]
            ax.broken_barh(spans, (i - 0.35, 0.7), color=STATES[state], linewidth=0)
        xs = tl.exits[name]
        ax.plot(xs, [i] * len(xs), "kx", markersize=5, markeredgewidth=1.2)
    ax.set_yticks(range(len(tl.daemons)), tl.daemons)
    ax.set_ylim(len(tl.daemons) - 0.5, -0.5)
    ax.set_title(f"topology {tl.topology}", loc="left", fontweight="bold")


def _busy(ax: Axes, tl: Timeline) -> None:
    active = [n for n in tl.daemons if any(tl.busy[n][1])]
    for k, name in enumerate(active):
        xs, ys = tl.busy[name]
        ax.step(xs, ys, where="post", color=PALETTE[k % len(PALETTE)], label=name, linewidth=1.2)
    ax.set_ylabel("busy workers")
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    if active:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="daemon")
    else:
        ax.text(0.5, 0.5, "no worker busy at any sample", transform=ax.transAxes,
                ha="center", va="center", color="gray")  # fmt: skip
    ax.set_ylim(0, max(1, *(max(tl.busy[n][1], default=0) for n in tl.daemons)) * 1.08)


def _guests(ax: Axes, tl: Timeline) -> None:
    ax.step(*tl.unmanageable, where="post", color="#ff7f0e", label="unmanageable")
    ax.step(*tl.lost, where="post", color="black", linestyle="--", label="lost (cumulative)")
    ax.set_ylabel("guests")
    ax.set_ylim(0, max(1, *tl.unmanageable[1], *tl.lost[1]) * 1.08)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))


def describe(fault: Fault) -> str:
    """A fault in a few words: ``hang (driver) of driver:NAME at 180 s for 300 s``."""
    scope = f" ({fault.scope})" if fault.scope else ""
    span = f" for {num(fault.duration_s)} s" if fault.duration_s is not None else ""
    if fault.duration_s is None and fault.kind in ("hang", "slow"):
        span = " until restarted"
    return f"{fault.kind}{scope} of {fault.target} at {num(fault.at_s)} s{span}"


def describe_action(action: Action) -> str:
    """An operator action in a few words: ``restart of role:NAME at 900 s``."""
    return f"{action.kind} of {action.target} at {num(action.at_s)} s"


def panels(tl: Timeline) -> list[str]:
    """The panels of one topology that have something to show (no empty panels)."""
    out = ["states"]
    if any(any(tl.busy[n][1]) for n in tl.daemons):
        out.append("busy")
    if any(tl.unmanageable[1]) or any(tl.lost[1]):
        out.append("guests")
    return out


def _missing(shown: Sequence[str]) -> str:
    gone = [what for key, what in (("busy", "no worker busy at any sample"),
            ("guests", "no guest unmanageable or lost")) if key not in shown]  # fmt: skip
    return f" ({'; '.join(gone)})" if gone else ""


HEIGHT = {"busy": 1.1, "guests": 1.0}
DRAW = {"busy": _busy, "guests": _guests}


def figure(title: str, timelines: Sequence[Timeline]) -> Figure:
    """Topologies stacked on one time axis: states, busy workers, guests (a panel only
    when it has something to show; the topology's title says which were left out)."""
    ratios: list[float] = []
    shown = [panels(tl) for tl in timelines]
    for tl, ps in zip(timelines, shown, strict=True):
        ratios += [0.26 * len(tl.daemons) + 0.4, *(HEIGHT[p] for p in ps[1:])]
    fig = new_figure(11, sum(ratios) + 1.2)
    axes = fig.subplots(len(ratios), 1, sharex=True, height_ratios=ratios, squeeze=False)[:, 0]
    k = 0
    for tl, ps in zip(timelines, shown, strict=True):
        mine = axes[k : k + len(ps)]
        k += len(ps)
        _states(mine[0], tl)
        mine[0].set_title(f"topology {tl.topology}{_missing(ps)}", loc="left",
                          fontweight="bold")  # fmt: skip
        for ax, p in zip(mine[1:], ps[1:], strict=True):
            DRAW[p](ax, tl)
        for ax in mine:
            _shade(ax, tl)
    axes[-1].set_xlabel("simulated time (s)")
    axes[-1].set_xlim(0, max(tl.end for tl in timelines))
    handles: list[Artist] = [Patch(color=c, label=s) for s, c in STATES.items()]
    handles.append(Line2D([], [], color="k", marker="x", linestyle="", label="abnormal exit"))
    handles.append(Line2D([], [], color="#d62728", linestyle="--", label="fault"))
    if any(tl.actions for tl in timelines):
        handles.append(Line2D([], [], color="black", linestyle=":", label="operator action"))
    handles += [Patch(color="#d62728", alpha=0.25, label="fault window"),
                Patch(color="#f0f0f0", label="warm-up")]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6))
    fig.suptitle(title)
    return fig
