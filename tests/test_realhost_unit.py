"""The real-host package without a real host: schemas, overlays, plans and refusals,
probe classes, the comparison's verdicts, lazy imports (the ``-m realhost`` suite in
``test_realhost.py`` drives a real testbed)."""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sim.errors import ConfigError, ResultsError
from sim.experiment.runner import run_experiment
from sim.model.load import load_experiment
from sim.model.loader import load_as
from sim.realhost import lv
from sim.realhost import testbed as tb
from sim.realhost.calibrate import Sample
from sim.realhost.compare import compare, to_markdown
from sim.realhost.plan import load_inputs, plan
from sim.realhost.results import probe_rows
from sim.schema.realhost import RealHost

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
FIXTURE_HOST = load_as(FIX / "realhost.yaml", RealHost).doc


def _experiment(tmp_path: Path, extra: str, scenario: str = "") -> Path:
    text = (FIX / "experiment.yaml").read_text(encoding="utf-8")
    for name in ("topology-split.yaml", "topology-mono.yaml", "workload.yaml"):
        text = text.replace(name, str(FIX / name))
    text = text.replace("seed: 1\n", f"seed: 1\n{extra}")
    if scenario:
        text = text.replace("scenarios:\n", f"scenarios:\n{scenario}")
    path = tmp_path / "exp.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ calibration overlays
def test_overlay_replaces_only_the_named_procedures(tmp_path: Path) -> None:
    plain = load_experiment(_experiment(tmp_path, ""))
    model = load_experiment(_experiment(tmp_path, f"calibration: {FIX / 'overlay.yaml'}\n"))
    assert model.calibration is not None
    for before, after in zip(plain.systems, model.systems, strict=True):
        b, a = before.procedures, after.procedures
        assert a["guestGetInfo"].service.model_dump()["median_ms"] == 400
        assert a["guestGetInfo"].source == "fixture measurement"
        assert a["guestGetInfo"].assumption is None
        assert {k: v for k, v in a.items() if k != "guestGetInfo"} == {
            k: v for k, v in b.items() if k != "guestGetInfo"
        }
    assert model.workload.catalog.doc.procedures != plain.workload.catalog.doc.procedures


def test_run_with_calibration_moves_latency_and_names_the_overlay(tmp_path: Path) -> None:
    exp = _experiment(tmp_path, "")
    plain = run_experiment(exp, tmp_path / "plain", replications=1)
    cal = run_experiment(exp, tmp_path / "cal", replications=1, calibration=FIX / "overlay.yaml")

    def p50(outcome: object) -> float:
        rows = outcome.summary["rows"]  # type: ignore[attr-defined]
        return max(r["metrics"]["api_p50_ms"]["mean"] for r in rows)

    assert p50(cal) > p50(plain)
    manifest = json.loads((tmp_path / "cal" / "manifest.json").read_text())
    assert manifest["calibration"] == str((FIX / "overlay.yaml").resolve())
    assert str((FIX / "overlay.yaml").resolve()) in manifest["inputs"]


def test_fit_is_the_median_and_the_robust_sigma() -> None:
    rng = random.Random(7)
    times = [math.exp(rng.gauss(math.log(2.0), 0.5)) for _ in range(4000)]
    fit = Sample("x", times).fit()
    assert fit["dist"] == "lognormal"
    assert fit["median_ms"] == pytest.approx(2.0, rel=0.05)
    assert fit["sigma"] == pytest.approx(0.5, rel=0.08)
    spread = Sample("x", [1.0, 2.0, 3.0, 4.0, 5.0]).spread()
    assert spread == {"n": 5, "p10_ms": 1.4, "median_ms": 3.0, "p90_ms": 4.6, "max_ms": 5.0}


# ------------------------------------------------------------------ plans and refusals
SCENARIO = """  - name: real
    faults:
      - {kind: crash, target: {role: hypervisor}, at_s: 10}
      - {kind: hang, scope: process, target: {driver: hv}, at_s: 20, duration_s: 5}
      - {kind: hang, scope: object, target: {object: slowpool}, at_s: 30, duration_s: 5}
      - {kind: guest-hang, scope: process, target: {guest: web-1}, at_s: 40, duration_s: 5}
    actions:
      - {kind: stop, target: {unit: hvd.socket}, at_s: 10}
      - {kind: restart, target: {role: hypervisor}, at_s: 15}
"""


def _plans(tmp_path: Path, scenario: str) -> dict[str, object]:
    inputs = load_inputs(_experiment(tmp_path, "", scenario), "mono")
    bed = FIXTURE_HOST.topology("mono")
    return {
        sc.name: plan(FIXTURE_HOST, bed, inputs, sc, ["web-0", "web-1"]) for sc in inputs.scenarios
    }


def test_plan_turns_faults_into_signals_and_controls(tmp_path: Path) -> None:
    p = _plans(tmp_path, SCENARIO)["real"]
    assert p.refused == []  # type: ignore[attr-defined]
    steps = [(s.at_s, s.what, s.on, s.arg) for s in p.steps]  # type: ignore[attr-defined]
    assert steps == [
        (10, "signal", "daemon-mono", "SIGKILL"),
        (10, "none", "hvd.socket", ""),
        (15, "daemon-stop", "daemon-mono", ""),
        (15, "daemon-start", "daemon-mono", ""),
        (20, "signal", "daemon-mono", "SIGSTOP"),
        (25, "signal", "daemon-mono", "SIGCONT"),
        (30, "block", "slowpool", ""),
        (35, "unblock", "slowpool", ""),
        (40, "guest-signal", "web-1", "SIGSTOP"),
        (45, "guest-signal", "web-1", "SIGCONT"),
    ]


def test_faults_the_host_cannot_take_are_refused_with_the_reason(tmp_path: Path) -> None:
    plans = _plans(tmp_path, "")
    # the fixture's own scenarios: reset-failed, a driver hang, a slow fault, a guest crash
    crash = plans["crash-hv"].refused  # type: ignore[attr-defined]
    assert crash == ["reset-failed needs a service manager; this host has none"]
    hang = plans["hang-net"].refused  # type: ignore[attr-defined]
    assert "no driver hang from outside" in hang
    assert "cannot slow a real daemon" in hang
    assert any("'guest-crash' is not realised on this host" in r for r in hang)
    assert plans["baseline"].refused == []  # type: ignore[attr-defined]


def test_only_the_fuse_pool_can_hang(tmp_path: Path) -> None:
    sc = SCENARIO.replace("object: slowpool", "object: vol-0")
    assert any("only the pool 'slowpool'" in r for r in _plans(tmp_path, sc)["real"].refused)  # type: ignore[attr-defined]


def test_unknown_topology_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no topology named 'nope'"):
        load_inputs(_experiment(tmp_path, ""), "nope")


# ------------------------------------------------------------------ probes and compare
def test_probe_rows_classify_answered_timed_out_failed_fast() -> None:
    calls = [
        ("s", "t", "probe", "p", 0.001, True, ""),
        ("s", "t", "probe", "p", 0.003, True, ""),
        ("s", "t", "probe", "p", 3.0, False, "timeout"),
        ("s", "t", "probe", "p", 0.0001, False, "connect: refused"),
        ("s", "t", "caller-0", "q", 0.002, True, ""),
        ("s", "t", "caller-1", "q", 0.004, True, ""),
    ]
    rows = probe_rows(calls)
    assert rows[0] == {
        "scenario": "s",
        "topology": "t",
        "client": "caller",
        "procedure": "q",
        "n": 2,
        "answered": 1.0,
        "timed_out": 0.0,
        "failed_fast": 0.0,
        "p50_ms": 3.0,
        "p99_ms": 3.98,
    }
    assert rows[1]["answered"] == 0.5 and rows[1]["timed_out"] == 0.25
    assert rows[1]["failed_fast"] == 0.25 and rows[1]["p50_ms"] == 2.0


@pytest.fixture(scope="module")
def sim_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "r"
    run_experiment(ROOT / "experiments/validation/daemon-kill.yaml", out, replications=2)
    return out


def _fake_real(sim: Path, dest: Path, bump: dict[str, float]) -> Path:
    from sim.realhost.results import sim_probe_rows

    dest.mkdir()
    summary = json.loads((sim / "summary.json").read_text())
    for row in summary["rows"]:
        for m, delta in bump.items():
            row["metrics"][m]["mean"] += delta
            row["metrics"][m]["ci95"] = [row["metrics"][m]["mean"]] * 2
    (dest / "summary.json").write_text(json.dumps(summary))
    (dest / "probes.json").write_text(json.dumps({"rows": sim_probe_rows(sim)}))
    (dest / "manifest.json").write_text(json.dumps({"backend": "real", "host": {}, "refused": {}}))
    return dest


def test_compare_agrees_with_itself_and_flags_a_gap(sim_folder: Path, tmp_path: Path) -> None:
    same = compare(sim_folder, _fake_real(sim_folder, tmp_path / "same", {}))
    assert same.rows and all(r.agrees for r in same.rows)
    assert any(r.what.startswith("probe probe domainGetInfo") for r in same.rows)
    gap = compare(sim_folder, _fake_real(sim_folder, tmp_path / "gap", {"vms_lost": 2.0}))
    bad = [r.what for r in gap.rows if not r.agrees]
    assert bad == ["vms_lost"]
    assert "**DIFFER**" in to_markdown(gap)


def test_compare_refuses_a_simulated_folder_as_real(sim_folder: Path) -> None:
    with pytest.raises(ResultsError, match="not a real run"):
        compare(sim_folder, sim_folder)


# ------------------------------------------------------------------ host checks
def test_preflight_names_what_is_missing() -> None:
    problems = tb.preflight(FIXTURE_HOST)
    assert any("'no-such-program-xyz' not found" in p for p in problems)


def test_status_of_an_absent_testbed_is_down(tmp_path: Path) -> None:
    st = tb.status(FIXTURE_HOST, tmp_path / "none")
    assert st["up"] is False
    assert st["daemons"] == {
        "daemon-mono": {"pid": None, "state": "dead"},
        "logd": {"pid": None, "state": "dead"},
    }
    assert tb.down(FIXTURE_HOST, tmp_path / "none") == [
        f"nothing to do: no testbed at {tmp_path / 'none'}"
    ]


def test_a_missing_binding_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "libvirt", None)
    with pytest.raises(lv.RealHostError, match=r"pip install '\.\[realhost\]'"):
        lv.library()


def test_the_base_install_does_not_import_the_binding() -> None:
    code = (
        "import sys, sim.cli.main, sim.experiment.runner; "
        "print('libvirt' in sys.modules, 'fuse' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.split() == ["False", "False"]


def test_engine_code_names_no_daemon() -> None:
    """Daemon names live in models/ only: no non-comment line of sim/ names one."""
    names: set[str] = set()
    for topo in (ROOT / "models/libvirt").glob("*.yaml"):
        names |= set(re.findall(r"^  - name: (\w+)\n    unit:", topo.read_text(), re.MULTILINE))
    host = load_as(ROOT / "models/libvirt/realhost.yaml", RealHost).doc
    names |= {Path(d.binary).name for t in host.topologies for d in t.daemons}
    assert {"libvirtd", "virtlogd", "virtqemud"} <= names
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\b")
    hits = []
    for py in sorted((ROOT / "sim").rglob("*.py")):
        for i, line in enumerate(py.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code):
                hits.append(f"{py.relative_to(ROOT)}:{i}: {line.strip()}")
    assert hits == []


@pytest.mark.skipif(shutil.which("fusermount") is None, reason="needs fusermount")
def test_is_mounted_reads_the_mount_table(tmp_path: Path) -> None:
    assert tb.is_mounted(Path("/proc")) and not tb.is_mounted(tmp_path)


def test_cli_run_takes_a_calibration_and_compare_reports_errors(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sim.cli import main as cli

    runner = CliRunner()
    exp = _experiment(tmp_path, "")
    args = ["run", str(exp), "--replications", "1", "--out", str(tmp_path / "r")]
    result = runner.invoke(cli.app, [*args, "--calibration", str(FIX / "overlay.yaml")])
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["calibration"].endswith("overlay.yaml")
    bad = runner.invoke(cli.app, ["compare", str(tmp_path / "r"), str(tmp_path / "r")])
    assert bad.exit_code == 2 and "not a real run" in bad.stderr
