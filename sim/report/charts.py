"""Charts of summary numbers: the fault-matrix heatmap, blast-radius bars, boot overhead,
sensitivity curves.  Each function returns a figure; titles and labels come from the data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sim.report.findings import PRIMARY, Verdict, verdict
from sim.report.fmt import replications, value
from sim.report.plotting import colour, errors, new_figure, note
from sim.report.results import Results
from sim.report.structure import MatrixLayout, SweepLayout

MARKERS = ("o", "s", "^", "D")
LINES = ("-", "--", ":", "-.")
NICE = {
    "blast_radius": "blast radius (fraction of running guests)",
    "vms_lost": "guests lost",
    "vms_unmanageable": "guests unmanageable",
    "unmanageable_vm_seconds": "unmanageable guest-seconds (guests × s)",
    "failed_operations": "failed management operations",
    "time_to_recover_s": "time to recover (s)",
    "api_p50_ms": "API latency, median (ms)",
    "api_p99_ms": "API latency, 99th percentile (ms)",
    "daemon_init_cpu_ms": "daemon init CPU (ms)",
    "time_to_autostart_s": "time to autostart (s)",
    "time_to_ready_s": "time to ready (s)",
    "time_to_reconnect_s": "time to reconnect (s)",
    "autostart_done": "guests autostarted",
}


def label(metric: str) -> str:
    """The axis label of ``metric`` (its name when it has no nicer one)."""
    return NICE.get(metric, metric)


def _grid(res: Results, layout: MatrixLayout, value: Any) -> np.ndarray:
    grid = np.full((len(layout.targets), len(layout.faults)), np.nan)
    for (t, f), scenario in layout.cells.items():
        v = value(scenario)
        if v is not None:
            grid[layout.targets.index(t), layout.faults.index(f)] = v
    return grid


def _annotate(ax: Axes, grid: np.ndarray, texts: dict[tuple[int, int], str], dark: Any) -> None:
    for (i, j), v in np.ndenumerate(grid):
        if math.isnan(v):
            ax.text(j, i, "n/a", ha="center", va="center", color="gray", fontsize=8)
        else:
            c = "white" if dark(v) else "black"
            ax.text(j, i, texts[(i, j)], ha="center", va="center", color=c, fontsize=8)


def _axes_labels(ax: Axes, layout: MatrixLayout, first: bool) -> None:
    ax.set_xticks(range(len(layout.faults)), layout.faults, rotation=30, ha="right")
    ax.set_yticks(range(len(layout.targets)), layout.targets if first else [])
    ax.set_xlabel("fault kind")
    if first:
        ax.set_ylabel("fault target")


def heatmap(res: Results, layout: MatrixLayout) -> Figure:
    """Blast radius per target x fault kind: one panel per topology, then b - a."""
    tops, pairs = res.topologies, res.pairs[:1]
    n = len(tops) + len(pairs)
    width = max(2.4, 0.62 * len(layout.faults) + 0.5)
    fig = new_figure(width * n + 1.6, 0.42 * len(layout.targets) + 2.2)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for k, topo in enumerate(tops):
        grid = _grid(res, layout, lambda s, t=topo: _mean(res, s, t))
        top = max(1.0, float(np.nanmax(grid, initial=0)))
        im = axes[k].imshow(grid, vmin=0, vmax=top, cmap="Reds", aspect="auto")
        texts = {ij: value(v, PRIMARY) for ij, v in np.ndenumerate(grid)}
        _annotate(axes[k], grid, texts, lambda v: v > 0.6)
        axes[k].set_title(topo)
        _axes_labels(axes[k], layout, k == 0)
    fig.colorbar(im, ax=list(axes[: len(tops)]), label=label(PRIMARY), shrink=0.8)
    for k, (a, b) in enumerate(pairs, start=len(tops)):
        grid = _grid(res, layout, lambda s, a=a, b=b: _diff(res, s, a, b))
        im = axes[k].imshow(grid, vmin=-1, vmax=1, cmap="RdBu_r", aspect="auto")
        texts = {ij: _diff_text(res, layout, ij, a, b) for ij, _ in np.ndenumerate(grid)}
        _annotate(axes[k], grid, texts, lambda v: abs(v) > 0.6)
        axes[k].set_title(f"{b} − {a} (* the difference counts)")
        _axes_labels(axes[k], layout, False)
        fig.colorbar(im, ax=axes[k], label="paired difference (fraction of guests)", shrink=0.8)
    fig.suptitle(f"{res.name}: {label(PRIMARY)}, mean of {replications(res.summary)} runs")
    return fig


def _mean(res: Results, scenario: str, topology: str, metric: str = PRIMARY) -> float | None:
    s = res.stat(scenario, topology, metric)
    return None if s is None else float(s["mean"])


def _diff(res: Results, scenario: str, a: str, b: str) -> float | None:
    c = res.comparison(scenario, PRIMARY, a, b)
    return None if c is None else float(c["diff_mean"])


def _diff_text(res: Results, layout: MatrixLayout, ij: tuple[int, int], a: str, b: str) -> str:
    scenario = layout.cells.get((layout.targets[ij[0]], layout.faults[ij[1]]))
    c = res.comparison(scenario, PRIMARY, a, b) if scenario else None
    sa = res.stat(scenario, a, PRIMARY) if scenario else None
    if c is None or sa is None:
        return ""
    sig = verdict(c, int(sa["n"]), PRIMARY) in (Verdict.LOWER, Verdict.HIGHER)
    return value(float(c["diff_mean"]), PRIMARY) + ("*" if sig else "")


def bars(
    res: Results, scenarios: Sequence[str], metric: str, ax: Axes | None = None
) -> Figure | None:
    """Horizontal bars: one group per scenario, one bar per topology, 95% CI whiskers."""
    fig = None
    if ax is None:
        fig = new_figure(7.5, 0.32 * len(scenarios) * max(2, len(res.topologies)) + 1.6)
        ax = fig.subplots()
    tops = res.topologies
    height = 0.8 / len(tops)
    ends: list[float] = [0.0]
    for k, topo in enumerate(tops):
        stats = [res.stat(s, topo, metric) or _zero() for s in scenarios]
        err = errors(stats, metric)
        ends += [float(st["mean"]) + e for st, e in zip(stats, err[1], strict=True)]
        ys = [-i - (k - (len(tops) - 1) / 2) * height for i in range(len(scenarios))]
        ax.barh(
            ys, [s["mean"] for s in stats], height=height, xerr=errors(stats, metric), capsize=2,
            color=colour(tops, topo), label=topo, error_kw={"elinewidth": 0.8},
        )  # fmt: skip
    ax.set_yticks([-i for i in range(len(scenarios))], scenarios)
    top = max(ends)
    ax.set_xlim(0.0, (top or 1.0) * 1.05)
    ax.set_xlabel(f"{label(metric)}, mean with 95% CI")
    if fig is not None:
        fig.legend(loc="outside lower center", title="topology", ncols=len(tops))
        fig.suptitle(f"{res.name}: {label(metric)} per scenario")
    return fig


def _zero() -> dict[str, Any]:
    return {"mean": 0.0, "ci95": [0.0, 0.0], "n": 0}


def boot(res: Results, scenarios: Sequence[str], metrics: Sequence[str]) -> Figure:
    """Boot overhead: one bar panel per boot metric (daemons running at each snapshot too)."""
    shown = [m for m in metrics if m != "autostart_done"]
    height = 0.3 * len(scenarios) * len(res.topologies) + 2.2
    fig = new_figure(2.6 + 3.0 * len(shown), height)
    axes = fig.subplots(1, len(shown), squeeze=False, sharey=True)[0]
    for k, (ax, m) in enumerate(zip(axes, shown, strict=True)):
        bars(res, scenarios, m, ax)
        ax.set_title(_boot_title(m))
        ax.set_xlabel(_boot_unit(m) + ", mean with 95% CI")
        if k:
            ax.tick_params(labelleft=False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", title="topology", ncols=4)
    fig.suptitle(f"{res.name}: boot overhead (mean of {replications(res.summary)} runs)")
    return fig


def _boot_unit(metric: str) -> str:
    return "daemons" if metric.startswith("daemons_running.t") else label(metric)


def _boot_title(metric: str) -> str:
    if metric.startswith("daemons_running.t"):
        return f"daemons running at {metric.removeprefix('daemons_running.t')} s"
    return label(metric)


def sensitivity(res: Results, sweep: SweepLayout, metrics: Sequence[str]) -> Figure:
    """One row per metric, one column per combination of the other axes; x = first axis."""
    rest = sorted({p.labels[1:] for p in sweep.points}, key=lambda r: _first_index(sweep, r))
    rows = [m for m in metrics if _nonzero(res, sweep, m)] or [metrics[0]]
    fig = new_figure(max(5.0, 3.6 * len(rest)) + 1, 2.6 * len(rows) + 1)
    axes = fig.subplots(len(rows), len(rest), squeeze=False, sharex=True, sharey="row")
    for i, m in enumerate(rows):
        tops = [_curve(res, sweep, m, combo, axes[i][j]) for j, combo in enumerate(rest)]
        top = max(tops, default=0.0) or 1.0
        axes[i][0].set_ylim(0.0, top * 1.08)  # shared by the row: every topology in view
        for j, combo in enumerate(rest):
            if j == 0:
                axes[i][j].set_ylabel(label(m))
            if i == 0 and combo:
                axes[i][j].set_title(_combo_title(sweep, combo))
            if i == len(rows) - 1:
                axes[i][j].set_xlabel(axis_label(res, sweep.name, sweep.axes[0]))
    axes[0][0].legend(title="topology")
    fig.suptitle(f"{res.name}: sensitivity to {sweep.axes[0]} (sweep {sweep.name}), 95% CI")
    return fig


def axis_label(res: Results, sweep: str, axis: str) -> str:
    """A sweep axis in words: the parameter it sets (``clients.0.count``) and its name."""
    exp = res.experiment
    found = next((s for s in exp.sweeps if s.name == sweep), None) if exp else None
    ax = next((a for a in found.axes if a.name == axis), None) if found else None
    if ax is None:
        return axis
    unit = next((u for suffix, u in UNITS if ax.path.endswith(suffix)), "")
    return f"{axis}: {ax.path}" + (f" ({unit})" if unit else "")


UNITS = (("_ms", "ms"), ("_s", "s"), ("count", "callers"), ("workers", "workers"))


def _combo_title(sweep: SweepLayout, combo: tuple[str, ...]) -> str:
    return ", ".join(f"{a}={v}" for a, v in zip(sweep.axes[1:], combo, strict=True))


def _first_index(sweep: SweepLayout, combo: tuple[str, ...]) -> int:
    return next(i for i, p in enumerate(sweep.points) if p.labels[1:] == combo)


def _nonzero(res: Results, sweep: SweepLayout, metric: str) -> bool:
    return any(
        (s := res.stat(p.scenario, t, metric)) is not None and s["ci95"] != [0, 0]
        for p in sweep.points
        for t in res.topologies
    )


def _curve(
    res: Results, sweep: SweepLayout, metric: str, combo: tuple[str, ...], ax: Axes
) -> float:
    """Draw one panel; the top of its highest error bar."""
    points = [p for p in sweep.points if p.labels[1:] == combo]
    numeric = sweep.numeric(0)
    if numeric:
        points.sort(key=lambda p: float(p.values[0]))
    xs = [float(p.values[0]) if numeric else float(i) for i, p in enumerate(points)]
    top = 0.0
    for k, topo in enumerate(res.topologies):
        stats = [res.stat(p.scenario, topo, metric) or _zero() for p in points]
        err = errors(stats, metric)
        top = max([top, *(float(s["mean"]) + e for s, e in zip(stats, err[1], strict=True))])
        ax.errorbar(
            xs, [s["mean"] for s in stats], yerr=err, capsize=3, markersize=4,
            marker=MARKERS[k % len(MARKERS)], linestyle=LINES[k % len(LINES)],
            color=colour(res.topologies, topo), label=topo,
        )  # fmt: skip
    if not numeric:
        ax.set_xticks(xs, [p.labels[0] for p in points])
    if not points:
        note(ax, "no data")
    return top
