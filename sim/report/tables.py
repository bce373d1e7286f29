"""Markdown tables of the report: per-scenario headline tables, the compact fault-matrix
table, hypotheses and assumptions.  Every number goes through :mod:`sim.report.fmt`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sim.report.assumptions import Provenance, link_citations
from sim.report.findings import Verdict, verdict
from sim.report.fmt import estimate, num
from sim.report.markdown import md_table
from sim.report.results import Results
from sim.report.structure import MatrixLayout, SweepLayout

EXCLUDES = {
    Verdict.LOWER: "yes: lower",
    Verdict.HIGHER: "yes: higher",
    Verdict.SMALL: "no: within tolerance",
    Verdict.SAME: "no",
    Verdict.UNKNOWN: "n/a",
}
MARK = {Verdict.LOWER: " ▼", Verdict.HIGHER: " ▲"}


Item = tuple[tuple[str, ...], str, str]
"""(leading cells, scenario, metric)"""


def compare_table(res: Results, first: Sequence[str], items: Sequence[Item]) -> list[str]:
    """One row per item; a column per topology (mean [95% CI]) and per compared pair."""
    topologies, pairs = res.topologies, res.pairs
    header = [*first, *topologies]
    for a, b in pairs:
        header += [f"{b} − {a}", "counts"]
    rows = []
    for lead, scenario, m in items:
        stats = [res.stat(scenario, t, m) for t in topologies]
        if all(s is None for s in stats):
            continue
        row: list[object] = [*lead, *(estimate(s, m) if s else "–" for s in stats)]
        for a, b in pairs:
            c, sa = res.comparison(scenario, m, a, b), res.stat(scenario, a, m)
            if c is None or sa is None:
                row += ["–", "–"]
            else:
                row += [estimate(c, m, "diff_mean"), EXCLUDES[verdict(c, int(sa["n"]), m)]]
        rows.append(row)
    return md_table(header, rows)


def scenario_table(res: Results, scenario: str, metrics: Sequence[str]) -> list[str]:
    """The headline table of one scenario: each of ``metrics`` in every topology, with the
    differences.
    """
    return compare_table(res, ["metric"], [((f"`{m}`",), scenario, m) for m in metrics])


def matrix_table(res: Results, layout: MatrixLayout, metric: str) -> list[str]:
    """Rows = targets, columns = fault kinds; each cell the metric in every topology."""
    rows = []
    for target in layout.targets:
        row: list[object] = [f"**{target}**"]
        for fault in layout.faults:
            scenario = layout.cells.get((target, fault))
            row.append("n/a" if scenario is None else _matrix_cell(res, scenario, metric))
        rows.append(row)
    return md_table(["target", *layout.faults], rows)


def _matrix_cell(res: Results, scenario: str, metric: str) -> str:
    stats = [res.stat(scenario, t, metric) for t in res.topologies]
    text = " → ".join(estimate(s, metric) if s else "–" for s in stats)
    if res.pairs:
        a, b = res.pairs[0]
        c, sa = res.comparison(scenario, metric, a, b), res.stat(scenario, a, metric)
        if c is not None and sa is not None:
            text += MARK.get(verdict(c, int(sa["n"]), metric), "")
    return text


def grid_table(res: Results, sweep: SweepLayout, metric: str) -> list[str]:
    """A two-axis sweep as a grid: a row per topology and value of the second axis, a
    column per value of the first; each cell the metric, marked ▼/▲ where it differs from
    the first (reference) topology's in the same scenario."""
    first = list(dict.fromkeys(p.labels[0] for p in sweep.points))
    second = list(dict.fromkeys(p.labels[1] for p in sweep.points))
    cell = {(p.labels[0], p.labels[1]): p.scenario for p in sweep.points}
    ref = res.topologies[0]
    rows = []
    for topo in res.topologies:
        for label in second:
            row: list[object] = [f"**{topo}**", f"`{label}`"]
            for col in first:
                sc = cell.get((col, label))
                row.append("–" if sc is None else _grid_cell(res, sc, topo, ref, metric))
            rows.append(row)
    return md_table(["topology", sweep.axes[1], *(f"`{c}`" for c in first)], rows)


def _grid_cell(res: Results, scenario: str, topo: str, ref: str, metric: str) -> str:
    s = res.stat(scenario, topo, metric)
    if s is None:
        return "–"
    text = estimate(s, metric)
    c, sa = res.comparison(scenario, metric, ref, topo), res.stat(scenario, ref, metric)
    if topo != ref and c is not None and sa is not None:
        text += MARK.get(verdict(c, int(sa["n"]), metric), "")
    return text


def _bound(h: dict[str, Any]) -> str:
    lo, hi = h.get("min"), h.get("max")
    if lo is not None and hi is not None:
        return f"in [{num(lo)}, {num(hi)}]"
    if hi is not None:
        return f"≤ {num(hi)}"
    return f"≥ {num(lo)}" if lo is not None else "–"


def hypotheses_table(checks: Sequence[dict[str, Any]]) -> list[str]:
    """One row per hypothesis: how many (scenario, topology) checks held, which deviated."""
    names = list(dict.fromkeys(h["hypothesis"] for h in checks))
    rows = []
    for name in names:
        mine = [h for h in checks if h["hypothesis"] == name]
        bad = [h for h in mine if not h["held"]]
        held = len(mine) - len(bad)
        where = "; ".join(
            f"`{h['scenario']}` / {h['topology']} (mean {num(h['mean'])})" for h in bad
        )
        verdict_text = "held" if not bad else "DEVIATED"
        scope = (f"`{mine[0]['scenario']}` / {mine[0]['topology']}" if len(mine) == 1
                 else f"{len(mine)} (scenario, topology) pairs")  # fmt: skip
        rows.append(
            [f"`{name}`", f"`{mine[0]['metric']}` {_bound(mine[0])}", scope, verdict_text,
             f"{held} of {len(mine)}", where or "–"]
        )  # fmt: skip
    header = ["hypothesis", "mean of", "checked on", "outcome", "checks held", "deviated in"]
    return md_table(header, rows)


def assumptions_table(items: Sequence[Provenance], facts: str | None = None) -> list[str]:
    """Every block with provenance; ``LIBVIRT-FACTS n`` linked to ``facts`` when given."""

    def cited(text: str | None) -> str:
        if not text:
            return "–"
        return link_citations(text, facts) if facts else text

    rows = [[p.obj, f"`{p.file}`", cited(p.source), cited(p.assumption)] for p in items]
    return md_table(["object", "file", "source", "assumption"], rows)
