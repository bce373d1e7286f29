"""The Python API for notebooks: ``from sim import load, run, load_results``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import sim
from sim.model.resolved import ExperimentModel, System, WorkloadModel
from sim.report.results import Results

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "experiment.yaml"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    out = tmp_path_factory.mktemp("api") / "r"
    return sim.run(str(FIXTURE), out=str(out))


def test_import_sim_stays_light() -> None:
    heavy = "('simpy', 'numpy', 'scipy', 'pydantic')"
    code = f"import sys, sim; print(sorted(m for m in {heavy} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.strip() == "[]"


def test_load_reads_each_kind_from_str_paths() -> None:
    assert isinstance(sim.load(str(FIXTURE)), ExperimentModel)
    assert isinstance(sim.load(str(ROOT / "models/libvirt/modular.yaml")), System)
    assert isinstance(sim.load(str(ROOT / "models/workloads/virt-host.yaml")), WorkloadModel)
    assert sim.load("gate").doc.name == "gate"  # a shipped experiment by name


def test_run_returns_results_with_flat_rows(results: Results) -> None:
    res = sim.load_results(str(results.folder))
    summary = json.loads((res.folder / "summary.json").read_text())
    assert res.summary == summary
    rows = res.rows()
    assert len(rows) == sum(len(r["metrics"]) for r in summary["rows"])
    first = summary["rows"][0]
    blast = next(
        r for r in rows if (r["scenario"], r["topology"], r["metric"])
        == (first["scenario"], first["topology"], "blast_radius")
    )  # fmt: skip
    assert blast["mean"] == first["metrics"]["blast_radius"]["mean"]
    assert [blast["ci_low"], blast["ci_high"]] == first["metrics"]["blast_radius"]["ci95"]
    assert len(res.differences()) == len(summary["comparisons"])
    runs = res.runs()
    assert len(runs) == 3 * 2 * 2 and {
        "scenario",
        "topology",
        "replication",
        "blast_radius",
    } <= set(runs[0])


def test_to_dataframe_with_pandas(results: Results) -> None:
    pd = pytest.importorskip("pandas")
    frame = results.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns[:3]) == ["scenario", "topology", "metric"]
    assert len(results.to_dataframe("runs")) == 12


def test_to_dataframe_without_pandas_says_what_to_install(
    results: Results, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"virtchaos\[notebook\]"):
        results.to_dataframe()
    with pytest.raises(ValueError, match="table is one of"):
        results.to_dataframe("nope")
