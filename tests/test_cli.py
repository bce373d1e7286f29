"""The ``virtchaos`` command line, through typer's CLI runner (exit codes, messages)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import main as cli
from sim.model.documents import json_schemas

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
SHIPPED = sorted(MODELS.rglob("*.yaml")) + sorted((ROOT / "experiments").glob("*.yaml"))
TOPOLOGIES = [
    p for p in sorted((MODELS / "libvirt").glob("*.yaml")) if "kind: topology" in p.read_text()
]
ISSUE_LINE = re.compile(r"^(?P<file>\S+):(?P<line>\d+): (?P<field>[\w.\[\]-]+): (?P<msg>.+)$")

runner = CliRunner()


def run(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_validate_every_shipped_file() -> None:
    code, out, err = run("validate", *SHIPPED)
    assert (code, err) == (0, "")
    assert out.count("ok: ") == len(SHIPPED)


def test_validate_reports_kind_and_counts() -> None:
    code, out, _ = run("validate", TOPOLOGIES[0])
    assert code == 0
    assert re.match(r"ok: \S+ \(topology \S+: \d+ daemons, \d+ units, \d+ routes\)", out)


def test_validate_bad_file_is_one_line_per_issue_with_file_line_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (MODELS / "libvirt" / "catalog.yaml").read_text()
    text = text.replace("lifecycle:\n", "lifecycle:\n  colour: blue\n", 1)
    bad.write_text(text)
    line = text.splitlines().index("  colour: blue") + 1
    code, out, err = run("validate", bad)
    assert code == 2
    assert "Traceback" not in out + err
    issues = [ISSUE_LINE.match(x) for x in err.splitlines()]
    assert all(issues), err
    assert any(
        m is not None
        and m["file"] == str(bad)
        and int(m["line"]) == line
        and m["field"] == "lifecycle.colour"
        and "unknown key" in m["msg"]
        for m in issues
    ), err


def test_validate_keeps_going_after_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("kind: topology\nname: [unclosed\n")
    code, out, err = run("validate", bad, TOPOLOGIES[0])
    assert code == 2
    assert out.count("ok: ") == 1
    assert str(bad) in err
    assert "Traceback" not in out + err


def test_validate_missing_file_is_invalid_input() -> None:
    code, _, err = run("validate", "no/such/file.yaml")
    assert code == 2
    assert "no/such/file.yaml: file not found" in err


def test_bad_arguments_exit_2() -> None:
    code, _, _ = run("analyze")
    assert code == 2
    code, _, _ = run("graph", TOPOLOGIES[0])  # --out is required
    assert code == 2


@pytest.mark.parametrize("model", TOPOLOGIES, ids=[p.stem for p in TOPOLOGIES])
def test_analyze_json_parses(model: Path) -> None:
    code, out, err = run("analyze", model, "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["system"] == model.stem
    assert data["daemons"] and data["drivers"]
    assert {"crash", "hang"} <= set(data["daemons"][0])


@pytest.mark.parametrize("model", TOPOLOGIES, ids=[p.stem for p in TOPOLOGIES])
def test_analyze_prints_tables(model: Path) -> None:
    code, out, _ = run("analyze", model)
    assert code == 0
    for title in ("Faults in a daemon", "Faults in a driver", "Single points of failure"):
        assert title in out


def test_analyze_without_default_workload_says_so(tmp_path: Path) -> None:
    model = tmp_path / "m.yaml"
    plain = [p for p in TOPOLOGIES if "\nextends:" not in p.read_text()]  # overlays need a base
    text = plain[0].read_text()
    model.write_text(
        text.replace("catalog: catalog.yaml", f"catalog: {MODELS}/libvirt/catalog.yaml")
    )
    code, _, err = run("analyze", model)
    assert code == 2
    assert "--workload" in err and "Traceback" not in err


def test_graph_writes_dot(tmp_path: Path) -> None:
    out = tmp_path / "g.dot"
    code, stdout, _ = run("graph", TOPOLOGIES[0], "--out", out, "--highlight", "role:hypervisor")
    assert code == 0
    text = out.read_text()
    assert text.startswith("digraph ")
    assert 'fillcolor="red"' in text
    assert str(out) in stdout


def test_graph_without_graphviz_writes_dot_beside_svg_and_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sim.static.dot.shutil.which", lambda name: None)
    code, _, err = run("graph", TOPOLOGIES[0], "--out", tmp_path / "g.svg", "--per-guest")
    assert code == 2
    assert (tmp_path / "g.dot").is_file()
    assert not (tmp_path / "g.svg").exists()
    assert err.startswith("error: Graphviz 'dot' is not on PATH:")
    assert f"{tmp_path / 'g.svg'} not drawn" in err


def test_graph_dash_writes_dot_to_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run("graph", TOPOLOGIES[0], "-o", "-")
    assert code == 0
    assert out.startswith("digraph ") and out.endswith("}\n")
    assert list(tmp_path.iterdir()) == []


def edges_of(dot: str) -> list[tuple[str, str]]:
    return re.findall(r'^  "([^"]+)" -> "([^"]+)"', dot, flags=re.M)


def test_graph_from_to_and_kind_filters_keep_the_matching_edges() -> None:
    modular = MODELS / "libvirt" / "modular.yaml"
    code, full, _ = run("graph", modular, "-o", "-")
    assert code == 0
    code, out, _ = run("graph", modular, "-o", "-", "--from", "client:nova", "--to", "proc:domain*")
    assert code == 0
    kept = edges_of(out)
    expected = [
        (a, b) for a, b in edges_of(full) if a == "client:nova" and b.startswith("proc:domain")
    ]
    assert kept == expected and kept
    code, out, _ = run("graph", modular, "-o", "-", "--kind", "unit")
    assert code == 0
    assert edges_of(out)
    assert all(a.startswith("unit:") and b.startswith("unit:") for a, b in edges_of(out))
    assert "daemon:" not in out
    code, _, err = run("graph", modular, "-o", "-", "--from", "no-such-node")
    assert code == 2 and "no edge of the graph matches" in err


@pytest.mark.parametrize("target", ["nodedev", "planet:x", "driver:no-such-driver"])
def test_graph_bad_highlight_is_invalid_input(tmp_path: Path, target: str) -> None:
    code, _, err = run("graph", TOPOLOGIES[0], "-o", tmp_path / "g.dot", "--highlight", target)
    assert code == 2
    assert err.startswith("error: --highlight:")


def test_internal_failure_is_one_line_and_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr("sim.static.analysis.analyze", boom)
    code, out, err = run("analyze", TOPOLOGIES[0])
    assert code == 3
    assert err == "internal error: RuntimeError: kaboom\n"
    assert "Traceback" not in out + err


def test_schema_lists_and_writes(tmp_path: Path) -> None:
    code, out, _ = run("schema")
    assert code == 0
    assert {line.split()[0] for line in out.splitlines()} == set(json_schemas())
    code, out, _ = run("schema", "--out", tmp_path)
    assert code == 0
    for kind, schema in json_schemas().items():
        assert json.loads((tmp_path / f"{kind}.schema.json").read_text()) == schema


def test_committed_schemas_are_current() -> None:
    """``schema/`` at the repo root is regenerated with ``virtchaos schema --out schema``."""
    for kind, schema in json_schemas().items():
        path = ROOT / "schema" / f"{kind}.schema.json"
        assert json.loads(path.read_text()) == schema, f"regenerate {path}"


def test_python_dash_m_sim_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0
    for verb in ("validate", "analyze", "graph", "schema"):
        assert verb in proc.stdout


# ------------------------------------------------------------------ discovery, --format json
FIXTURE_EXP = ROOT / "tests" / "fixtures" / "experiment.yaml"


def test_list_faults_is_the_schema() -> None:
    from typing import get_args

    from sim.schema.experiment import Action, Fault, Target

    code, out, _ = run("list", "faults", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["faults"] == list(get_args(Fault.model_fields["kind"].annotation))
    assert doc["actions"] == list(get_args(Action.model_fields["kind"].annotation))
    assert doc["targets"] == list(Target.model_fields)
    code, out, _ = run("list", "faults")
    assert code == 0 and all(kind in out for kind in doc["faults"])


def test_list_targets_and_profiles_of_a_model() -> None:
    from sim.model.load import load_system, load_workload

    modular = MODELS / "libvirt" / "modular.yaml"
    system = load_system(modular)
    workload = load_workload(MODELS / "workloads" / "virt-host.yaml")
    code, out, _ = run("list", "targets", "--model", modular, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["daemon"] == sorted(system.daemons)
    assert doc["driver"] == sorted(system.drivers)
    assert "hypervisor" in doc["role"] and doc["group"] and len(doc["guest"]) == 50
    code, out, _ = run("list", "profiles", "--model", modular, "--format", "json")
    assert code == 0
    assert [p["profile"] for p in json.loads(out)] == sorted(workload.profiles)
    code, out, _ = run("list", "targets", "--model", modular)
    assert code == 0 and "daemon (10): virtinterfaced, virtlockd," in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_list_metrics_names_every_metric_a_run_records() -> None:
    from sim.cli.discovery import METRICS

    code, out, _ = run("list", "metrics", "--format", "json")
    assert code == 0
    listed = {m["metric"] for m in json.loads(out)}
    patterns = [re.compile(re.escape(m).replace("DRIVER", r"\w+").replace("tT", r"t[\d.]+"))
                for m in METRICS]  # fmt: skip
    for summary in (ROOT / "results" / "fesco").glob("*/summary.json"):
        for row in json.loads(summary.read_text())["rows"]:
            for metric in row["metrics"]:
                assert any(p.fullmatch(metric) for p in patterns), (summary, metric)
    assert {"blast_radius", "vms_lost", "time_to_recover_s"} <= listed


def test_run_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    out_dir = tmp_path / "r"
    code, out, _ = run("run", FIXTURE_EXP, "--dry-run", "--out", out_dir, "--format", "json")
    assert code == 0
    plan = json.loads(out)
    assert plan["runs"] == 3 * 2 * 2  # scenarios x topologies x replications
    assert [s["scenario"] for s in plan["scenarios"]] == ["baseline", "crash-hv", "hang-net"]
    assert plan["estimated_events"] > 0 and plan["estimated_cpu_s"] > 0
    assert not out_dir.exists()
    code, out, _ = run("run", FIXTURE_EXP, "--dry-run", "--replications", "5")
    assert code == 0
    assert "= 30 runs" in out and "crash-hv: crash role:hypervisor at 100 s" in out


def test_run_validate_and_diff_speak_json(tmp_path: Path) -> None:
    code, out, _ = run("run", FIXTURE_EXP, "--out", tmp_path / "r", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    on_disk = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert doc["summary"] == on_disk and doc["folder"] == str(tmp_path / "r")
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: topology\nname: x\n")
    code, out, err = run("validate", FIXTURE_EXP, bad, "--format", "json")
    assert code == 2 and err == ""
    good, broken = json.loads(out)
    assert good["ok"] and good["kind"] == "experiment"
    assert not broken["ok"] and {"file", "line", "field", "message"} <= set(broken["issues"][0])
    mono, modular = MODELS / "libvirt" / "monolithic.yaml", MODELS / "libvirt" / "modular.yaml"
    code, out, _ = run("diff", mono, modular, "--format", "json")
    assert code == 0
    diff = json.loads(out)
    assert diff["a"] == "monolithic" and diff["b"] == "modular"
    assert diff["changes"] and all("risk" in c for c in diff["changes"])
    assert isinstance(diff["risks"], list)
