"""Which figures a results folder gets, drawn into ``figures/`` (SVG and PNG each).

- the fault matrix as a heatmap (matrix experiments), or blast-radius bars per scenario;
- boot overhead bars (when boot metrics were measured);
- sensitivity curves (one per sweep);
- timelines of replication 0 (re-run in-process, deterministic);
- the dependency graph of each topology with the headline fault's static reach.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from sim.report import charts, graphs, timelines
from sim.report.findings import BOOT_PREFIX, COUNTS, PRIMARY, boot_metrics, compared, rule
from sim.report.fmt import replications
from sim.report.plotting import Figured, save, style
from sim.report.results import Results
from sim.report.structure import matrix_layout, plain_scenarios, sweep_layouts
from sim.report.timelines import CAP as TIMELINE_CAP
from sim.schema.experiment import Fault

PREFIXES = ("blast-radius-", "boot-", "sensitivity-", "timeline-", "graph-")
SWEEP_METRICS = (PRIMARY, "unmanageable_vm_seconds")
BOOT_SWEEP_METRICS = ("time_to_autostart_s", "daemon_init_cpu_ms")


@dataclass(frozen=True)
class FigureOptions:
    """``timelines``: draw them; ``timeline_scenarios``: globs choosing which (default:
    all, or at most ``timeline_cap`` chosen by :func:`sim.report.timelines.select`)."""

    timelines: bool = True
    timeline_scenarios: tuple[str, ...] = ()
    timeline_cap: int = TIMELINE_CAP


@dataclass
class FigureSet:
    """The figures drawn for a report, the timeline runs whose re-run metrics differ from
    ``runs.jsonl`` (``mismatched``), the rule that chose the timelines, and the graph engine
    used.
    """

    figures: list[Figured] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    timeline_rule: str = ""
    graph_engine: str = ""

    def in_section(self, section: str) -> list[Figured]:
        """The figures of report section ``section``, in drawing order."""
        return [f for f in self.figures if f.section == section]


def _clean(folder: Path) -> None:
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            if p.name.startswith(PREFIXES) and p.suffix in (".svg", ".png", ".dot"):
                p.unlink()


def _runs(res: Results) -> str:
    return f"mean of {replications(res.summary)} replications with 95% CI"


def _summary_figures(res: Results, out: Path, fs: FigureSet) -> None:
    layout = matrix_layout(res)
    if layout is not None:
        save(charts.heatmap(res, layout), out, "blast-radius-heatmap")
        pair = f"; the last panel is {res.pairs[0][1]} − {res.pairs[0][0]}" if res.pairs else ""
        caption = (
            f"Blast radius per fault target (rows) and fault kind (columns), mean of "
            f"{replications(res.summary)} replications, one panel per topology{pair} "
            f"(* where the paired difference counts: {rule(PRIMARY)}; n/a: no such target)."
        )
        fs.figures.append(Figured("blast-radius-heatmap", "Fault matrix", caption, "results"))
    plain = plain_scenarios(res)
    if plain:
        fig = charts.bars(res, plain, PRIMARY)
        assert fig is not None
        save(fig, out, "blast-radius-bars")
        caption = f"Blast radius per scenario and topology ({_runs(res)})."
        fs.figures.append(Figured("blast-radius-bars", "Blast radius", caption, "results"))


def _boot_figure(res: Results, out: Path, fs: FigureSet) -> None:
    metrics = boot_metrics(res)
    if not metrics:
        return
    save(charts.boot(res, res.scenarios, metrics), out, "boot-overhead")
    names = ", ".join(f"`{m}`" for m in metrics if not m.startswith(BOOT_PREFIX))
    caption = f"Boot overhead per scenario and topology: {names} and daemons running over time "
    caption += f"({_runs(res)})."
    fs.figures.append(Figured("boot-overhead", "Boot overhead", caption, "boot"))


def _sweep_figures(res: Results, out: Path, fs: FigureSet) -> None:
    boot = boot_metrics(res)
    metrics = [m for m in SWEEP_METRICS if res.has_metric(m)]
    metrics += [m for m in BOOT_SWEEP_METRICS if m in boot]
    for sweep in sweep_layouts(res):
        stem = f"sensitivity-{sweep.name}"
        save(charts.sensitivity(res, sweep, metrics), out, stem)
        caption = (
            f"Sweep `{sweep.name}`: metrics against `{sweep.axes[0]}`, one line per "
            f"topology ({_runs(res)}); metrics that are 0 throughout are left out."
        )
        title = f"Sensitivity: {sweep.name}"
        fs.figures.append(Figured(stem, title, caption, f"sweep:{sweep.name}"))


def _timeline_figures(res: Results, out: Path, opts: FigureOptions, fs: FigureSet) -> None:
    model = res.model
    if model is None or not opts.timelines:
        return
    seed = int(res.summary["seed"])
    recorded = timelines.recorded(res.folder)
    chosen = timelines.select(res, opts.timeline_scenarios, opts.timeline_cap)
    fs.timeline_rule = _rule(res, opts, len(chosen))
    for scenario in chosen:
        tls = [timelines.record(model, scenario, t, seed) for t in res.topologies]
        for tl in tls:
            if recorded.get((scenario, tl.topology)) != tl.metrics:
                fs.mismatched.append(f"{scenario} / {tl.topology}")
        sc = model.scenario(scenario)
        what = "; ".join(timelines.describe(f) for f in sc.faults) or "no fault"
        if sc.actions:
            what += "; " + "; ".join(timelines.describe_action(a) for a in sc.actions)
        title = f"{res.name} / {scenario}: replication 0\n" + textwrap.fill(what, 120)
        stem = f"timeline-{scenario}"
        save(timelines.figure(title, tls), out, stem)
        caption = (
            f"Scenario `{scenario}`, replication 0 ({what}): daemon service states "
            "(× abnormal exit), busy workers sampled every "
            f"{timelines.SAMPLE_EVERY_S:g} s, unmanageable and lost guests."
        )
        fs.figures.append(Figured(stem, f"Timeline: {scenario}", caption, "timelines"))


def _rule(res: Results, opts: FigureOptions, n: int) -> str:
    if opts.timeline_scenarios:
        return "the scenarios matching " + ", ".join(f"`{p}`" for p in opts.timeline_scenarios)
    if n == len(res.scenarios):
        return "every scenario"
    unit = "whole fault kinds (matrix columns)" if matrix_layout(res) else "scenarios"
    return (
        f"{unit} with the largest paired difference in blast radius, at most "
        f"{opts.timeline_cap} scenarios (others: `virtchaos report --timeline GLOB`)"
    )


def first_fault(res: Results) -> tuple[str, Fault] | None:
    """The first scenario with a fault that the summary holds, and its first fault; ``None``
    without a model or such a scenario.
    """
    if res.model is None:
        return None
    for sc in res.model.scenarios:
        if sc.faults and sc.name in res.scenarios:
            return sc.name, sc.faults[0]
    return None


def headline_fault(res: Results) -> tuple[str, Fault] | None:
    """The fault of the headline finding: the scenario whose blast-radius difference
    counts and is largest (then the largest blast radius), else the first fault."""
    if res.model is None:
        return None
    faulty = [s for s in res.model.scenarios if s.faults and s.name in res.scenarios]
    if not faulty or not res.pairs:
        return first_fault(res)
    a, b = res.pairs[0]

    def weight(name: str) -> tuple[bool, float, float]:
        c = compared(res, name, PRIMARY, a, b)
        if c is None:
            return False, 0.0, 0.0
        return c.verdict in COUNTS, abs(float(c.diff["diff_mean"])), max(c.mean_a, c.mean_b)

    best = max(faulty, key=lambda s: weight(s.name))
    return best.name, best.faults[0]


def _graph_figures(res: Results, out: Path, fs: FigureSet) -> None:
    found = headline_fault(res)
    if found is None or res.model is None:
        return
    scenario, fault = found
    what = timelines.describe(fault)
    for topo in res.topologies:
        system, workload = res.model.resolve(scenario, topo)
        stem = f"graph-{topo}"
        drawn = graphs.draw(system, workload, fault, f"{topo}: reach of {what}", out, stem)
        fs.graph_engine = drawn.engine
        caption = (
            f"Dependency graph of topology {topo} ({drawn.engine}); coloured: what "
            f"{what} (scenario `{scenario}`) can reach as a {drawn.mode}, a static "
            f"upper bound: {drawn.reached_guests} guests."
        )
        fs.figures.append(Figured(stem, f"Dependency graph: {topo}", caption, "graphs"))


def make_figures(res: Results, opts: FigureOptions) -> FigureSet:
    """Draw every figure that applies into ``res.folder / 'figures'``."""
    out = res.folder / "figures"
    _clean(out)
    fs = FigureSet()
    with style():
        _summary_figures(res, out, fs)
        _boot_figure(res, out, fs)
        _sweep_figures(res, out, fs)
        _timeline_figures(res, out, opts, fs)
        _graph_figures(res, out, fs)
    return fs
