"""Terminal rendering (rich) of analysis results.  The CLI prints what these build."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from sim.experiment.metrics import HEADLINE
from sim.static.analysis import OPS, Analysis, OpSets, Reach, TargetReach

NONE = "-"


def guest_summary(guests: Iterable[str], groups: Mapping[str, tuple[str, ...]]) -> str:
    """``"20: db, nfs"``: how many guests, and which groups (``"web 3/20"`` when partial).

    Every guest of every group reached reads ``"50 (all)"``; no guest reads ``"-"``.
    """
    chosen = set(guests)
    if not chosen:
        return NONE
    total = sum(len(members) for members in groups.values())
    if len(chosen) == total:
        return f"{total} (all)"
    parts = []
    for group, members in groups.items():
        n = sum(1 for m in members if m in chosen)
        if n:
            parts.append(group if n == len(members) else f"{group} {n}/{len(members)}")
    return f"{len(chosen)}: {', '.join(parts)}"


def _short(node: str) -> str:
    return node.split(":", 1)[1]


def _op_cells(ops: OpSets, groups: Mapping[str, tuple[str, ...]]) -> list[str]:
    return [guest_summary(ops.of(op), groups) for op in OPS]


def _rows(tr: TargetReach, groups: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
    """Rows of one target: crash; hang (what waits on it); hang with pools exhausted."""
    where = ", ".join(tr.resolves_to)
    lives = guest_summary(tr.crash.lives, groups)
    rows = [[tr.name, where, "crash", *_op_cells(tr.crash.ops, groups), lives, NONE]]
    hang: Reach = tr.hang
    hang_lives = guest_summary(hang.lives, groups)
    if not hang.exhausted:
        rows.append(["", "", "hang", *_op_cells(hang.direct, groups), hang_lives, NONE])
        return rows
    rows.append(["", "", "hang", *_op_cells(hang.direct, groups), "", NONE])
    pools = ", ".join(_short(s) for s in hang.exhausted) + "\nby " + ", ".join(hang.exhausted_by)
    rows.append(["", "", "+ pools", *_op_cells(hang.ops, groups), hang_lives, pools])
    return rows


def reach_table(title: str, kind: str, targets: Iterable[TargetReach], analysis: Analysis) -> Table:
    """Per fault target: where it runs, what its fault reaches, lives at risk, pools exhausted."""
    table = Table(title=title, show_lines=True, title_justify="left")
    for col in (kind, "runs in", "fault", *OPS, "lives at risk", "pools exhausted"):
        table.add_column(col, overflow="fold")
    for tr in targets:
        for row in _rows(tr, analysis.groups):
            table.add_row(*row)
    return table


def spof_table(analysis: Analysis) -> Table:
    """The single points of failure of guest management, with the guests each makes unmanageable."""
    table = Table(title="Single points of failure of guest management", title_justify="left")
    for col in ("node", "kind", "guests unmanageable"):
        table.add_column(col, overflow="fold")
    for s in analysis.spofs:
        table.add_row(_short(s.node), s.kind, guest_summary(s.guests, analysis.groups))
    if not analysis.spofs:
        table.add_row(NONE, NONE, NONE)
    return table


def cycle_table(analysis: Analysis) -> Table:
    """The unit ordering and requirement cycles found."""
    table = Table(title="Unit cycles", title_justify="left")
    table.add_column("kind")
    table.add_column("units", overflow="fold")
    for c in analysis.cycles:
        table.add_row(c.kind, " -> ".join((*c.units, c.units[0])))
    if not analysis.cycles:
        table.add_row("none", NONE)
    return table


def analysis_view(analysis: Analysis) -> Group:
    """Everything ``analyze`` prints: a header, reach per daemon and per driver, SPOFs,
    cycles, and notes about the model."""
    sizes = ", ".join(f"{g} {len(m)}" for g, m in analysis.groups.items())
    header = Text.assemble(
        ("topology ", "bold"),
        analysis.system,
        ("  workload ", "bold"),
        analysis.workload,
        f"  ({len(analysis.guests)} guests: {sizes})",
    )
    legend = Text(
        "Cells: guests whose operation the fault reaches. crash: fails fast. hang: calls wait "
        "on it. + pools: worst case once waiting calls have exhausted worker pools. "
        "lives at risk: the guest's reconnect fails.",
        style="dim",
    )
    parts: list[Table | Text] = [header, legend]
    parts.append(reach_table("Faults in a daemon", "daemon", analysis.daemons, analysis))
    parts.append(reach_table("Faults in a driver", "driver", analysis.drivers, analysis))
    parts += [spof_table(analysis), cycle_table(analysis)]
    parts += [Text(f"note: {n}", style="yellow") for n in analysis.notes]
    return Group(*parts)


SUMMARY_METRICS = HEADLINE


def _fmt(m: dict[str, Any], metric: str = "") -> str:
    """``mean [lo, hi]`` as the report prints it (interval inside the metric's range);
    ``n/a`` when undefined in every run, ``*`` when in some."""
    from sim.report.fmt import estimate

    if m["mean"] is None:
        return "n/a"
    return estimate(m, metric) + ("*" if "undefined" in m else "")


WIDE = 120
"""From this console width on, the topology cells carry their 95% intervals too."""


def _diff(c: dict[str, Any] | None, metric: str) -> str:
    """``+0.50 [0.41, 0.59]``: the paired difference B - A and its 95% interval."""
    from sim.report.fmt import estimate

    if c is None or c["diff_mean"] is None:
        return "n/a"
    text = estimate(c, metric, key="diff_mean")
    return "+" + text if float(text.split(" ", 1)[0]) > 0 else text


def summary_table(summary: dict[str, Any], width: int | None = None) -> Table:
    """One block per scenario, one row per headline metric: each topology's mean (with its
    95% interval from :data:`WIDE` columns on, or when ``width`` is None) and the paired
    difference between the topologies with its 95% interval, e.g. monolithic -> modular.

    Names are never cut: at 80 columns the table keeps metric and scenario names whole
    and drops the topology intervals, not the difference's."""
    topologies = list(dict.fromkeys(row["topology"] for row in summary["rows"]))
    pairs = list(dict.fromkeys((c["a"], c["b"]) for c in summary["comparisons"]))
    by_row = {(r["scenario"], r["topology"]): r["metrics"] for r in summary["rows"]}
    by_cmp = {(c["scenario"], c["metric"], c["a"], c["b"]): c for c in summary["comparisons"]}
    intervals = width is None or width >= WIDE
    what = "mean [95% CI]" if intervals else "mean"
    if pairs:
        what += "; A -> B: the paired difference B - A [95% CI]"
    table = Table(
        title=f"{summary['experiment']}: {summary['replications']} replications, "
        f"seed {summary['seed']}",
        title_justify="left",
        caption=what,
        caption_justify="left",
    )
    table.add_column("scenario / metric", no_wrap=True)
    for topology in topologies:
        table.add_column(topology, justify="right", no_wrap=True)
    for a, b in pairs:
        table.add_column(f"{a} -> {b}", justify="right", no_wrap=True)
    scenarios = list(dict.fromkeys(row["scenario"] for row in summary["rows"]))
    for i, scenario in enumerate(scenarios):
        table.add_row(Text(scenario, style="bold"), end_section=False)
        for metric in SUMMARY_METRICS:
            cells = []
            for topology in topologies:
                m = by_row.get((scenario, topology), {}).get(metric)
                if m is None:
                    cells.append("-")
                else:
                    cells.append(_fmt(m, metric) if intervals else _mean(m, metric))
            for a, b in pairs:
                cells.append(_diff(by_cmp.get((scenario, metric, a, b)), metric))
            table.add_row("  " + metric, *cells, end_section=False)
        if i < len(scenarios) - 1:
            table.add_section()
    return table


def _mean(m: dict[str, Any], metric: str) -> str:
    """A mean alone, at the precision :func:`_fmt` would show it with its interval."""
    from sim.report.fmt import decimals, fixed, interval_of

    if m["mean"] is None:
        return "n/a"
    mid = float(m["mean"])
    places = decimals(metric, mid, *interval_of(m, metric))
    return fixed(mid, places) + ("*" if "undefined" in m else "")


def timeline(task: Any, events: list[tuple[float, str, str, dict[str, Any]]], limit: int) -> Table:
    """A readable timeline of one replay: time, subject, event, details."""
    table = Table(title=f"{task.scenario} / {task.topology} / replication {task.replication}")
    table.add_column("t (s)", justify="right")
    table.add_column("subject")
    table.add_column("event")
    table.add_column("details")
    shown = events if limit <= 0 else events[:limit]
    for t, subject, what, data in shown:
        details = ", ".join(f"{k}={v}" for k, v in sorted(data.items()))
        table.add_row(f"{t:.3f}", subject, what, details)
    if limit > 0 and len(events) > limit:
        table.add_row("...", "", f"{len(events) - limit} more in the trace file", "")
    return table
