"""The report as Markdown: every sentence about the system is generated from the data
(names, descriptions, numbers), every number formatted by :mod:`sim.report.fmt`."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.experiment.metrics import HEADLINE
from sim.report import tables, trust
from sim.report.assumptions import collect, facts_link, tally
from sim.report.figures import FigureSet
from sim.report.findings import PRIMARY, all_zero, boot_metrics, findings, rule, summary_sentences
from sim.report.fmt import count, replications, seconds
from sim.report.plotting import Figured
from sim.report.results import Results
from sim.report.structure import SweepLayout, matrix_layout, plain_scenarios, sweep_layouts
from sim.report.timelines import describe, describe_action
from sim.schema.experiment import Scenario

START = {"steady": "from a host already up (steady state)", "boot": "from power-on"}


def _stopping(summary: dict[str, Any]) -> str:
    """The sequential stopping rule in words, or nothing when the count was fixed."""
    stop = summary.get("stopping")
    if not stop:
        return ""
    watched = ", ".join(f"{m} within {tol:g}" for m, tol in stop["metrics"].items())
    return (
        f" (sequential stopping: at least {stop['min']}, at most {stop['max']}, {stop['batch']}"
        f" at a time, until the 95% half-widths of {watched})"
    )


def shown(path: str | Path) -> str:
    """A path relative to the working directory when below it, else absolute."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return p.as_posix()


def figure_md(fig: Figured) -> list[str]:
    svg, png = fig.files()
    caption = fig.caption.replace("*", "\\*")
    return [f"![{fig.title}]({svg})", "", f"*{caption}* ([PNG]({png}))", ""]


def _figs(figs: FigureSet | None, section: str) -> list[str]:
    if figs is None:
        return []
    return [line for f in figs.in_section(section) for line in figure_md(f)]


def _metrics(res: Results) -> list[str]:
    return [*HEADLINE, *boot_metrics(res)]


# ------------------------------------------------------------------------------ sections
def _topologies(res: Results) -> list[str]:
    docs: list[dict[str, Any]] = res.manifest.get("topologies", [])
    text = {d.get("name"): " ".join(str(d.get("description", "")).split()) for d in docs}
    return [f"- **{t}**: {text[t]}" if text.get(t) else f"- **{t}**" for t in res.topologies]


def what_was_done(res: Results) -> list[str]:
    exp: dict[str, Any] = res.manifest.get("experiment", {})
    wl: dict[str, Any] = res.manifest.get("workload", {})
    desc = " ".join(str(exp.get("description", "")).split())
    wl_desc = " ".join(str(wl.get("description", "")).split())
    ran = (
        f"Experiment `{res.name}` ran {count(len(res.scenarios), 'scenario')} in each of "
        f"{len(res.topologies)} topologies, {replications(res.summary)} replications per "
        f"scenario and topology{_stopping(res.summary)}, seed {res.summary['seed']}. "
        "Each run simulates "
        f"{seconds(float(exp.get('duration_s', 0)))} {START.get(str(exp.get('start')), '')}, "
        f"measured after a warm-up of {seconds(float(exp.get('warmup_s', 0)))}, under the "
        f"workload `{wl.get('name', '?')}`" + (f" ({wl_desc})" if wl_desc else "") + ". "
        "Both topologies see the same random draws (common random numbers), so they are "
        "compared replication by replication: each difference is b − a with its 95% "
        "t-interval. The topologies:"
    )
    out = ["## What was done", ""] + ([desc, ""] if desc else []) + [ran, ""]
    out += [*_topologies(res), ""]
    out += [f"> Note: {n}." for n in res.notes]
    return [*out, ""] if res.notes else out


def _scenario(res: Results, name: str) -> Scenario | None:
    if res.model is not None:
        return next((s for s in res.model.scenarios if s.name == name), None)
    if res.experiment is not None:
        return next((s for s in res.experiment.scenarios if s.name == name), None)
    return None


def _scenario_block(res: Results, name: str, level: str) -> list[str]:
    out = [f"{level} Scenario `{name}`", ""]
    sc = _scenario(res, name)
    if sc is not None:
        what = "; ".join(describe(f) for f in sc.faults) or "no fault (baseline)"
        desc = " ".join(sc.description.split())
        if desc and not desc.endswith((".", "!", "?")):
            desc += "."
        text = (f"{desc} " if desc else "") + f"Faults: {what}."
        if sc.actions:
            text += " Operator actions: " + "; ".join(describe_action(a) for a in sc.actions) + "."
        out += [text, ""]
    return out + tables.scenario_table(res, name, _metrics(res)) + [""]


def summary_section(res: Results, figs: FigureSet | None) -> list[str]:
    """The answer first: generated sentences, the headline figure, the fault-matrix table."""
    out = ["## Summary", "", *(f"- {line}" for line in summary_sentences(res)), ""]
    out += _figs(figs, "results")
    layout = matrix_layout(res)
    if layout is not None and res.topologies:
        arrow = " → ".join(res.topologies)
        legend = f"Each cell: blast radius in {arrow}, mean [95% Wilson interval] of "
        legend += f"{replications(res.summary)} replications"
        if res.pairs:
            a, b = res.pairs[0]
            legend += (f"; ▼ lower in {b} than in {a}, ▲ higher, where the paired difference "
                       f"counts ({rule(PRIMARY)})")  # fmt: skip
        out += ["### Fault matrix: blast radius", "", legend + ".", ""]
        out += [*tables.matrix_table(res, layout, PRIMARY), ""]
        out += ["Every metric of every matrix scenario is under *Detailed results*.", ""]
    for sweep in grid_sweeps(res):
        out += [f"### Sweep `{sweep.name}`: blast radius", "", _grid_legend(res, sweep), ""]
        out += [*tables.grid_table(res, sweep, PRIMARY), ""]
        out += ["Its costs (failed calls and operations, latency) are under *Results by "
                "scenario and sweep*.", ""]  # fmt: skip
    return out


GRID_METRICS = (PRIMARY, "api_errors", "failed_operations", "api_p99_ms")
"""What a two-axis sweep run on several variants of one topology shows per cell."""


def grid_sweeps(res: Results) -> list[SweepLayout]:
    """Sweeps of two axes run on more than two topologies (variants of a reference, the
    first): each is shown as grids, topology and second axis x first axis."""
    if len(res.topologies) <= 2:
        return []
    return [s for s in sweep_layouts(res) if len(s.axes) == 2]


def _grid_legend(res: Results, sweep: SweepLayout) -> str:
    ref = res.topologies[0]
    return (
        f"Rows: each topology with each `{sweep.axes[1]}`; columns: `{sweep.axes[0]}`. Each "
        f"cell: mean [95% interval] of {res.summary['replications']} replications (Wilson "
        f"for the blast radius); ▼ lower than {ref} in the same scenario, ▲ higher, where "
        f"the paired difference counts ({rule(PRIMARY)} for the blast radius; each "
        "metric's gate tolerance otherwise)"
    )


def results_section(res: Results, figs: FigureSet | None) -> list[str]:
    """Plain scenarios, sweeps and boot overhead (the matrix is in the summary)."""
    out: list[str] = []
    for name in plain_scenarios(res):
        out += _scenario_block(res, name, "###")
    grids = {s.name for s in grid_sweeps(res)}
    for sweep in sweep_layouts(res):
        out += [f"### Sweep `{sweep.name}`", ""]
        if sweep.description:
            out += [" ".join(sweep.description.split()), ""]
        if sweep.name in grids:
            out += [_grid_legend(res, sweep) + ".", ""]
            for m in GRID_METRICS:
                if res.has_metric(m):
                    out += [f"`{m}`:", "", *tables.grid_table(res, sweep, m), ""]
            out += _figs(figs, f"sweep:{sweep.name}")
            continue
        names = [p.scenario for p in sweep.points]
        metrics = [PRIMARY, *boot_metrics(res)]
        zero = [m for m in metrics if all_zero(res, names, m)]
        items = [((f"`{n}`", f"`{m}`"), n, m) for n in names for m in metrics if m not in zero]
        out += [*tables.compare_table(res, ["scenario", "metric"], items), ""]
        if zero:
            out += [", ".join(f"`{m}`" for m in zero) + " is 0 in every run of this sweep.", ""]
        out += _figs(figs, f"sweep:{sweep.name}")
    if boot_metrics(res):
        out += ["### Boot overhead", "", *_figs(figs, "boot")]
    return ["## Results by scenario and sweep", "", *out] if out else []


def hypotheses_section(res: Results) -> list[str]:
    checks: list[dict[str, Any]] = res.summary.get("hypotheses", [])
    out = ["## Steady-state hypotheses", ""]
    if not checks:
        return [*out, "The experiment states no steady-state hypothesis.", ""]
    bad = sum(not h["held"] for h in checks)
    verdict = "every check held" if not bad else f"{count(bad, 'check')} deviated (a finding)"
    out += [f"{count(len(checks), 'check')} of the hypotheses on the means: {verdict}.", ""]
    return out + tables.hypotheses_table(checks) + [""]


def timelines_section(res: Results, figs: FigureSet | None, wanted: bool) -> list[str]:
    out = ["## Timelines (replication 0)", ""]
    if figs is None:
        return [*out, "Figures were not drawn (`--no-figures`).", ""]
    if not wanted:
        return [*out, "Timelines were not drawn (`--no-timelines`).", ""]
    if res.model is None:
        return [*out, "Timelines need the model files, which could not be loaded.", ""]
    drawn = figs.in_section("timelines")
    n_all = len(res.scenarios)
    out += [f"Replication 0 of {len(drawn)} of the {n_all} scenarios, re-run in-process with "
            f"its trace; drawn: {figs.timeline_rule}.", ""]  # fmt: skip
    if figs.mismatched:
        out += ["Re-running gave metrics that differ from `runs.jsonl` for: "
                + ", ".join(figs.mismatched) + ".", ""]  # fmt: skip
    else:
        out += ["Every re-run reproduced its metrics in `runs.jsonl` exactly.", ""]
    return out + _figs(figs, "timelines")


def graphs_section(figs: FigureSet | None) -> list[str]:
    body = _figs(figs, "graphs")
    return ["## Dependency graphs", "", *body] if body else []


def details_section(res: Results) -> list[str]:
    layout = matrix_layout(res)
    names = list(layout.scenarios) if layout else []
    names += [p.scenario for s in sweep_layouts(res) for p in s.points]
    if not names:
        return []
    out = ["## Detailed results", ""]
    for name in names:
        out += _scenario_block(res, name, "###")
    return out


def assumptions_section(res: Results) -> list[str]:
    out = ["## Assumptions", ""]
    if res.model is None:
        return [*out, "The model files could not be loaded: no provenance to list.", ""]
    items = collect(res.model)
    out += [
        "Every block of the models this run used that carries a `source:` (a cited document "
        "section or upstream reference) or an `assumption:` (a value nobody measured, with "
        "the reason). " + tally(items).sentence(),
        "",
    ]
    link = facts_link(res.folder)
    return out + tables.assumptions_table(items, link) + [""]


def reproduce_section(res: Results) -> list[str]:
    m = res.manifest
    exp = shown(m.get("experiment_file", "EXPERIMENT"))
    folder = shown(res.folder)
    run = f"virtchaos run {exp} --seed {res.summary['seed']} "
    if "stopping" not in res.summary:
        run += f"--replications {res.summary['replications']} "
    run += f"--out {folder}"
    facts = [
        f"- tool: {m.get('tool', 'virtchaos')} {m.get('version', '?')}",
        f"- git commit: {commit_line(m)}",
        f"- Python: {m.get('python', '?')} on {m.get('platform', '?')}",
        "- inputs and their SHA-256: `manifest.json`; every run: `runs.jsonl`",
    ]
    return ["## How to reproduce", "", "```sh", run, f"virtchaos report {folder}", "```", "",
            *facts, ""]  # fmt: skip


WIDTH = 80
RISKY = re.compile(r"^(\d+[.)]|[-+*>#|]|=+$|!\[)(\s|$)")
"""A continuation line that starts like this would change the Markdown's meaning."""


def wrap(lines: list[str], width: int = WIDTH) -> list[str]:
    """Prose paragraphs, bullets and notes filled to ``width`` columns for a terminal;
    tables, figures, headings and code blocks as they are."""
    out: list[str] = []
    code = False
    for line in lines:
        if line.startswith("```"):
            code = not code
        if code or len(line) <= width or line.startswith(("|", "![", "#", "```")):
            out.append(line)
            continue
        lead = "- " if line.startswith("- ") else "> " if line.startswith("> ") else ""
        rest = "  " if lead == "- " else lead
        filled = textwrap.wrap(line[len(lead):], width - len(lead), break_long_words=False,
                               break_on_hyphens=False)  # fmt: skip
        if any(RISKY.match(f) for f in filled[1:]):
            out.append(line)
            continue
        out += [lead + filled[0], *(rest + f for f in filled[1:])]
    return out


def commit_line(m: dict[str, Any]) -> str:
    """The commit that produced the results, and whether its tree had other changes."""
    commit = m.get("git_commit")
    if not commit:
        return "unknown (not run from a git checkout)"
    dirty = m.get("git_dirty")
    if dirty is None:
        return f"`{commit}` (whether the tree had uncommitted changes was not recorded)"
    if dirty:
        return (
            f"`{commit}`, **with uncommitted changes** in the tree: the results may not be "
            "reproducible from the commit alone"
        )
    return f"`{commit}` (clean tree)"


def render(
    res: Results,
    figs: FigureSet | None,
    timelines: bool = True,
    sensitivity: Path | None = None,
    validation: Path | None = None,
) -> str:
    """The whole report.md."""
    parts: Sequence[list[str]] = (
        [f"# {res.name}: fault-isolation report", ""],
        summary_section(res, figs),
        ["## Findings by mechanism", "", *findings(res)],
        trust.section(res, sensitivity, validation),
        what_was_done(res),
        results_section(res, figs),
        hypotheses_section(res),
        timelines_section(res, figs, timelines),
        graphs_section(figs),
        details_section(res),
        assumptions_section(res),
        reproduce_section(res),
    )
    lines = wrap([line for part in parts for line in part])
    text = "\n".join(lines).rstrip() + "\n"
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


__all__ = ["render", "shown"]
