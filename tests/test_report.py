"""``virtchaos report``: report.md, report.html and figures/ from a results folder.

Small experiments on the fixture models are run once per module into a temporary folder:
the determinism fixture (plain scenarios), a fault matrix, and a boot-mode sweep.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from sim.cli import main as cli
from sim.experiment.runner import run_experiment
from sim.report import FigureOptions, graphs, write_report
from sim.report.figures import first_fault
from sim.report.findings import HEADLINE
from sim.report.fmt import estimate, num
from sim.report.plotting import style
from sim.report.results import load_results
from sim.report.structure import matrix_layout, sweep_layouts

FIXTURES = Path(__file__).resolve().parent / "fixtures"
runner = CliRunner()

MODELS = f"""
topologies: [{FIXTURES / "topology-split.yaml"}, {FIXTURES / "topology-mono.yaml"}]
workload: {FIXTURES / "workload.yaml"}
replications: 2
"""
MATRIX = f"""kind: experiment
name: report-matrix
description: a two-by-two fault matrix on the fixture models
{MODELS}
duration_s: 150
warmup_s: 20
seed: 5
matrix:
  at_s: 50
  targets:
    - {{name: hv, role: hypervisor, driver: hv}}
    - {{name: net, driver: net}}
  faults:
    - {{name: crash, on: role, kind: crash}}
    - {{name: hang, on: driver, kind: hang, scope: driver, duration_s: 30}}
"""
SWEEP = f"""kind: experiment
name: report-sweep
{MODELS}
duration_s: 150
warmup_s: 20
seed: 3
start: boot
snapshots_s: [0, 50, 140]
sweeps:
  - name: pool
    description: worker pool size under a driver hang
    template:
      faults: [{{kind: hang, scope: driver, target: {{driver: net}}, at_s: 60, duration_s: 40}}]
      clients: [{{name: burst, profile: admin, count: 3, start_s: 20}}]
    axes:
      - {{name: workers, path: overrides.pool.max_workers, values: [1, 4]}}
"""


def _run(path: Path, out: Path) -> Path:
    run_experiment(path, out=out)
    return out


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = _run(FIXTURES / "determinism.yaml", tmp_path_factory.mktemp("plain") / "results")
    write_report(out)
    return out


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("matrix")
    (base / "matrix.yaml").write_text(MATRIX, encoding="utf-8")
    out = _run(base / "matrix.yaml", base / "results")
    write_report(out, options=FigureOptions(timeline_scenarios=("hv.*",)))
    return out


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("sweep")
    (base / "sweep.yaml").write_text(SWEEP, encoding="utf-8")
    out = _run(base / "sweep.yaml", base / "results")
    write_report(out, options=FigureOptions(timelines=False))
    return out


def summary(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    return data


def assert_figure(folder: Path, stem: str) -> None:
    png, svg = folder / "figures" / f"{stem}.png", folder / "figures" / f"{stem}.svg"
    image = mpimg.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert ET.parse(svg).getroot().tag.endswith("svg")


def assumptions_in(node: Any) -> list[str]:
    """Every ``assumption:`` value in a parsed YAML document."""
    if isinstance(node, dict):
        own = [str(node["assumption"])] if "assumption" in node else []
        return own + [t for v in node.values() for t in assumptions_in(v)]
    if isinstance(node, list):
        return [t for v in node for t in assumptions_in(v)]
    return []


def table_rows(md: str, first_cell: str) -> list[list[str]]:
    """Rows of every Markdown table whose first cell is ``first_cell``."""
    out = []
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            out.append(cells)
    return out


# ------------------------------------------------------------------------------ numbers
def test_number_format_three_significant_digits() -> None:
    cases = {0.0: "0", 2.0: "2", 0.123456: "0.123", 83.0: "83", 70.293795: "70.3"}
    cases |= {14437.0: "14400", -0.021602: "-0.0216", 0.0056: "0.0056", 1e-7: "1.00e-07"}
    cases |= {-9.6e-05: "-0.000096", 2.5e17: "2.50e+17"}
    assert {x: num(x) for x in cases} == cases
    assert num(-0.0) == "0"


def test_report_numbers_equal_summary(plain: Path) -> None:
    md, s = (plain / "report.md").read_text(encoding="utf-8"), summary(plain)
    a, b = s["comparisons"][0]["a"], s["comparisons"][0]["b"]
    rows = {(r["scenario"], r["topology"]): r["metrics"] for r in s["rows"]}
    diffs = {(c["scenario"], c["metric"]): c for c in s["comparisons"]}
    blocks = md.split("### Scenario `")[1:]
    assert [b_.split("`")[0] for b_ in blocks] == ["baseline", "crash-hv", "hang-net"]
    for block in blocks:
        scenario = block.split("`")[0]
        for metric in HEADLINE:
            row = table_rows(block, f"`{metric}`")[0]
            assert row[1] == estimate(rows[(scenario, a)][metric], metric)
            assert row[2] == estimate(rows[(scenario, b)][metric], metric)
            assert row[3] == estimate(diffs[(scenario, metric)], metric, "diff_mean")


def test_matrix_table_cells_equal_summary(matrix: Path) -> None:
    md, s = (matrix / "report.md").read_text(encoding="utf-8"), summary(matrix)
    rows = {(r["scenario"], r["topology"]): r["metrics"] for r in s["rows"]}
    header = table_rows(md, "target")[0]
    assert header[1:] == ["crash", "hang"]
    for target in ("hv", "net"):
        cells = table_rows(md, f"**{target}**")[0]
        for fault, text in zip(header[1:], cells[1:], strict=True):
            if target == "net" and fault == "crash":
                assert text == "n/a"  # the row has no role: no such scenario
                continue
            parts = [estimate(rows[(f"{target}.{fault}", t)]["blast_radius"], "blast_radius")
                     for t in ("split", "mono")]  # fmt: skip
            assert text.rstrip(" ▼▲") == " → ".join(parts)


def test_findings_cover_every_scenario_once(plain: Path, matrix: Path) -> None:
    for folder in (plain, matrix):
        md = (folder / "report.md").read_text(encoding="utf-8")
        findings = md.split("## Findings by mechanism")[1].split("\n## ")[0]
        header = "| target |" if folder == matrix else "| scenario |"
        rows = [line for line in findings.splitlines() if line.startswith("| ")]
        rows = [r for r in rows if not r.startswith(header)]
        total = len({r["scenario"] for r in summary(folder)["rows"]})
        assert len(rows) == total
        assert md.index("## Summary") < md.index("## Findings by mechanism")
        first = md.split("## Summary")[1].split("\n## ")[0]
        assert 3 <= sum(line.startswith("- ") for line in first.splitlines()) <= 5


# ------------------------------------------------------------------------------ sections
def test_report_sections_and_provenance(plain: Path) -> None:
    md = (plain / "report.md").read_text(encoding="utf-8")
    headings = ["## Summary", "## What was done", "## Findings by mechanism"]
    headings += ["## How far to trust this"]
    headings += ["## Steady-state hypotheses", "## Assumptions", "## How to reproduce"]
    for heading in headings:
        assert heading in md
    s = summary(plain)
    assert f"--seed {s['seed']} --replications {s['replications']}" in md
    assert "virtchaos report " in md
    manifest = json.loads((plain / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["git_commit"] is None or manifest["git_commit"] in md
    dirty, flat = manifest["git_dirty"], " ".join(md.split())
    assert dirty is None or ("uncommitted changes" in flat) is dirty
    assert re.search(r"\d+ values sourced, \d+ assumed", flat)
    assert "| topology split › daemon daemon-a |" in md


def test_assumption_table_lists_every_assumption(plain: Path) -> None:
    md = (plain / "report.md").read_text(encoding="utf-8")
    table = md.split("## Assumptions")[1].split("\n## ")[0]
    texts: list[str] = []
    for path in ("catalog.yaml", "topology-split.yaml", "topology-mono.yaml", "workload.yaml"):
        texts += assumptions_in(YAML(typ="safe").load(FIXTURES / path))
    assert texts
    for text in texts:
        assert f"| {' '.join(text.split())} |" in table


def test_timelines_reproduce_runs(plain: Path) -> None:
    md = (plain / "report.md").read_text(encoding="utf-8")
    assert "Every re-run reproduced its metrics in `runs.jsonl` exactly." in " ".join(md.split())


# ------------------------------------------------------------------------------ figures
def test_plain_figures_exist_and_are_valid(plain: Path) -> None:
    stems = ["blast-radius-bars", "graph-split", "graph-mono"]
    stems += [f"timeline-{s}" for s in ("baseline", "crash-hv", "hang-net")]
    for stem in stems:
        assert_figure(plain, stem)
        assert f"figures/{stem}.svg" in (plain / "report.md").read_text(encoding="utf-8")


def test_matrix_heatmap_and_chosen_timelines(matrix: Path) -> None:
    res = load_results(matrix)
    layout = matrix_layout(res)
    assert layout is not None and layout.targets == ("hv", "net")
    assert set(layout.cells.values()) == {"hv.crash", "hv.hang", "net.hang"}
    assert_figure(matrix, "blast-radius-heatmap")
    names = sorted(p.name for p in (matrix / "figures").glob("timeline-*.png"))
    assert names == ["timeline-hv.crash.png", "timeline-hv.hang.png"]


def test_sweep_and_boot_figures(sweep: Path) -> None:
    res = load_results(sweep)
    (layout,) = sweep_layouts(res)
    assert [p.values for p in layout.points] == [(1,), (4,)]
    assert layout.axes == ("workers",)
    assert_figure(sweep, "sensitivity-pool")
    assert_figure(sweep, "boot-overhead")
    md = (sweep / "report.md").read_text(encoding="utf-8")
    assert "### Sweep `pool`" in md and "### Boot" in md
    assert "`time_to_autostart_s`" in md
    assert not list((sweep / "figures").glob("timeline-*"))


# ------------------------------------------------------------------------------ html, determinism
def test_html_is_self_contained(plain: Path) -> None:
    page = (plain / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<script" not in page.lower()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert images and all(src.startswith("data:image/svg+xml;base64,") for src in images)
    assert "<table>" in page and '<h2 id="findings-by-mechanism">Findings by mechanism</h2>' in page


def test_report_is_deterministic(plain: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(plain, copy)
    write_report(copy)
    for name in ("report.md", "report.html", "figures/timeline-crash-hv.svg",
                 "figures/graph-mono.png"):  # fmt: skip
        before = (plain / name).read_bytes()
        after = (copy / name).read_bytes()
        if name.startswith("report"):
            before = before.replace(str(plain).encode(), str(copy).encode())
        assert before == after, name


# ------------------------------------------------------------------------------ CLI
def test_cli_report_writes_without_figures(plain: Path, tmp_path: Path) -> None:
    copy = tmp_path / "results"
    shutil.copytree(plain, copy, ignore=shutil.ignore_patterns("figures", "report.*"))
    result = runner.invoke(cli.app, ["report", str(copy), "--no-figures"])
    assert result.exit_code == 0, result.output
    assert (copy / "report.md").is_file() and (copy / "report.html").is_file()
    assert not (copy / "figures").exists()
    assert "![" not in (copy / "report.md").read_text(encoding="utf-8")


def test_cli_report_on_a_non_results_folder_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a results folder" in result.stderr
    (tmp_path / "manifest.json").write_text("{}", encoding="utf-8")
    result = runner.invoke(cli.app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "summary.json" in result.stderr


def test_dependency_graph_is_the_coarse_view_on_every_machine(plain: Path, tmp_path: Path) -> None:
    res = load_results(plain)
    assert res.model is not None
    found = first_fault(res)
    assert found is not None
    scenario, fault = found
    system, workload = res.model.resolve(scenario, "mono")
    with style():
        drawn = graphs.draw(system, workload, fault, "title", tmp_path / "figures", "g")
    assert (drawn.engine, drawn.mode) == ("matplotlib", "crash")
    assert drawn.reached_guests == 2
    assert_figure(tmp_path, "g")
    dot = (tmp_path / "figures" / "g.dot").read_text(encoding="utf-8")
    assert dot.startswith("digraph") and "title" in dot


def test_report_without_model_files_still_has_tables(plain: Path, tmp_path: Path) -> None:
    copy = tmp_path / "results"
    shutil.copytree(plain, copy, ignore=shutil.ignore_patterns("figures", "report.*"))
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["experiment_file"] = str(tmp_path / "gone.yaml")
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    files = write_report(copy)
    md = files.markdown.read_text(encoding="utf-8")
    assert files.notes and "could not be loaded" in files.notes[0]
    assert "> Note: the model files could not be loaded" in md
    assert "### Scenario `crash-hv`" in md and "## Findings" in md
    assert sorted(p.name for p in (copy / "figures").iterdir()) == [
        "blast-radius-bars.png",
        "blast-radius-bars.svg",
    ]


def test_graph_shows_the_headline_fault(matrix: Path) -> None:
    from sim.report.figures import headline_fault
    from sim.report.findings import COUNTS, compared

    res = load_results(matrix)
    found = headline_fault(res)
    assert found is not None
    a, b = res.pairs[0]
    gaps = {s: compared(res, s, "blast_radius", a, b) for s in res.scenarios}
    counting = [c for c in gaps.values() if c and c.verdict in COUNTS]
    best = max(abs(float(c.diff["diff_mean"])) for c in counting or [c for c in gaps.values() if c])
    chosen = gaps[found[0]]
    assert chosen is not None and abs(float(chosen.diff["diff_mean"])) == best
    md = (matrix / "report.md").read_text(encoding="utf-8")
    assert f"(scenario `{found[0]}`)" in " ".join(md.split())


def test_timeline_panels_are_never_empty(plain: Path) -> None:
    from sim.report import timelines

    res = load_results(plain)
    assert res.model is not None
    for scenario in res.scenarios:
        tl = timelines.record(res.model, scenario, res.topologies[0], int(res.summary["seed"]))
        shown = timelines.panels(tl)
        assert ("busy" in shown) is any(any(tl.busy[n][1]) for n in tl.daemons)
        assert ("guests" in shown) is (any(tl.unmanageable[1]) or any(tl.lost[1]))


def test_prose_fits_80_columns_and_tables_stay_whole(plain: Path) -> None:
    md = (plain / "report.md").read_text(encoding="utf-8")
    code = False
    for line in md.splitlines():
        code ^= line.startswith("```")
        if not code and not line.startswith(("|", "![", "#", "```")):
            assert len(line) <= 80 or " " not in line.strip(), line


def test_facts_citations_link_into_the_repository(tmp_path: Path) -> None:
    from sim.report.assumptions import FACTS, facts_link, link_citations

    link = facts_link(tmp_path)
    assert (tmp_path / link).resolve() == FACTS
    text = link_citations("LIBVIRT-FACTS 3 and LIBVIRT-FACTS 1.2 (appendix)", link)
    assert text == f"[LIBVIRT-FACTS 3]({link}) and [LIBVIRT-FACTS 1.2]({link}) (appendix)"
