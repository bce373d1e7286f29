"""``virtchaos gate``: the statistical rule, JUnit/Markdown output, exit codes, and the
verdict on each harmful mutation class of the fixture host.

Which mutation the *dynamic* gate catches (experiments/gate.yaml against its committed
baseline) and which only ``diff`` flags (tests/test_diff.py):

======================================  ======================================================
mutation                                verdict
======================================  ======================================================
BindsTo=virtnodedevd.service on qemu    FAIL: nodedev-crash-loop / modular, blast_radius 0 -> 1
two daemons merged (mapping)            FAIL: nodedev-crash-loop / modular, blast_radius 0 -> 1
virtqemud.conf max_workers = 2          FAIL: nodedev-hang / modular, unmanageable_vm_seconds
virtnetworkd.socket disabled (preset)   FAIL: every modular scenario, failed_operations 0 -> 2.8
KillMode=process removed (qemu), or     FAIL: hypervisor-restart-without-machined / modular,
KillMode=mixed in a drop-in             vms_lost 0 -> every running guest (guests in the
                                        daemon's cgroup die with it), and the hypothesis
                                        no-guest-lost-to-a-daemon-fault
Restart=on-failure removed (qemu)       PASS (diff only): the next probe connection
                                        socket-activates the daemon 0.1 s after the crash,
                                        as soon as Restart= would have
Requires=virtnodedevd.socket on qemu    PASS (diff only): Requires= propagates an explicit
                                        stop, not the socket's start-limit failure
======================================  ======================================================
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner
from unitkit import (
    BASELINE,
    GATE,
    binds_to_nodedev_service,
    binds_to_nodedev_socket,
    comments_and_order,
    import_host,
    kill_mode_mixed_dropin,
    merged_mapping,
    network_socket_disabled,
    no_kill_mode_process,
    no_restart,
    pool_of_two,
    requires_nodedev_socket,
)

from sim.cli import main as cli
from sim.errors import ConfigError
from sim.experiment.stats import summarize
from sim.gate import check as g

runner = CliRunner()


def entry(values: list[float]) -> dict[str, Any]:
    return summarize(values)


# ---------------------------------------------------------------------------- the rule
def test_welch_interval_from_summaries_matches_the_one_from_raw_samples() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(10, 2, 5).tolist(), rng.normal(12, 4, 8).tolist()
    d, lo, hi = g.welch_interval(entry(a), entry(b))
    ci = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert d == pytest.approx(np.mean(b) - np.mean(a), abs=1e-5)
    assert (lo, hi) == pytest.approx((ci.low, ci.high), abs=1e-4)


def test_zero_width_intervals_give_a_point_difference() -> None:
    assert g.welch_interval(entry([0.0] * 5), entry([2.0] * 5)) == (2.0, 2.0, 2.0)
    d, lo, hi = g.welch_interval(entry([0.0] * 5), entry([1.0, 2.0, 3.0, 2.0, 2.0]))
    assert d == 2.0 and lo < d < hi  # only the new side varies: df = n - 1


def verdict(old: list[float], new: list[float], tol: float) -> g.MetricVerdict:
    d, lo, hi = g.welch_interval(entry(old), entry(new))
    return g.MetricVerdict("m", 0, 0, d, (lo, hi), tol)


@pytest.mark.parametrize(
    ("old", "new", "tol", "regressed"),
    [
        ([0, 0, 0, 0, 0], [1, 1, 1, 1, 1], 0.05, True),  # above tolerance, CI excludes 0
        ([0, 0, 0, 0, 0], [0.03, 0.03, 0.03, 0.03, 0.03], 0.05, False),  # within tolerance
        ([0.1, 0.2, 0.1, 0.2, 0.1], [0, 1, 0, 1, 0], 0.05, False),  # CI includes zero
        ([1, 1, 1, 1, 1], [0, 0, 0, 0, 0], 0.05, False),  # an improvement
        ([10, 11, 9, 10, 10], [14, 15, 13, 14, 14], 1.0, True),
    ],
)
def test_regression_needs_both_tolerance_and_an_interval_excluding_zero(
    old: list[float], new: list[float], tol: float, regressed: bool
) -> None:
    assert verdict(old, new, tol).regressed is regressed


def test_tolerance_and_topology_options() -> None:
    tol = g.parse_tolerances(["0.2", "blast_radius=0.01"])
    assert tol["blast_radius"] == 0.01 and tol["unmanageable_vm_seconds"] == 0.2
    assert g.parse_tolerances([]) == g.DEFAULT_TOLERANCES
    for bad in (["speed=1"], ["x"], ["-1"]):
        with pytest.raises(ConfigError):
            g.parse_tolerances(bad)
    assert g.parse_topologies(["modular=a/b.yaml"]) == {"modular": Path("a/b.yaml")}
    with pytest.raises(ConfigError, match="NAME=MODEL"):
        g.parse_topologies(["modular"])


# ---------------------------------------------------------------------------- mutations
@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate")


def gate(model: Path, *scenarios: str, only: tuple[str, ...] = ("modular",)) -> g.GateResult:
    return g.run_gate(GATE, BASELINE, {"modular": model}, scenarios=scenarios, only_topologies=only)


def failures(result: g.GateResult) -> dict[tuple[str, str], list[str]]:
    return {(c.scenario, c.topology): c.failures for c in result.cases if c.failures}


@pytest.fixture(scope="module")
def binds_to(tmp: Path) -> tuple[Path, g.GateResult]:
    model = import_host(tmp, "binds-to", binds_to_nodedev_service)
    return model, gate(model, "nodedev-crash-loop")


def test_original_import_passes_and_reproduces_the_baseline(tmp: Path) -> None:
    result = gate(import_host(tmp, "original"), only=())
    assert result.passed, failures(result)
    baseline = json.loads(BASELINE.read_text())
    assert result.summary["rows"] == baseline["rows"]


def test_harmless_edits_pass(tmp: Path) -> None:
    result = gate(import_host(tmp, "harmless", comments_and_order), "nodedev-crash-loop")
    assert result.passed


def test_binds_to_another_daemons_service_fails_the_gate(
    binds_to: tuple[Path, g.GateResult],
) -> None:
    found = failures(binds_to[1])
    assert list(found) == [("nodedev-crash-loop", "modular")], found
    assert found[("nodedev-crash-loop", "modular")][0].startswith("blast_radius regressed: 0 -> 1")


@pytest.mark.parametrize(
    ("name", "scenario", "metric"),
    [
        ("merged", "nodedev-crash-loop", "blast_radius"),
        ("pool-of-two", "nodedev-hang", "unmanageable_vm_seconds"),
        ("preset-disabled", "network-crash", "failed_operations"),
    ],
)
def test_harmful_mutation_fails_the_gate(name: str, scenario: str, metric: str, tmp: Path) -> None:
    edits = {"pool-of-two": [pool_of_two], "preset-disabled": [network_socket_disabled]}
    mapping = {"mapping": merged_mapping(tmp)} if name == "merged" else {}
    model = import_host(tmp, name, *edits.get(name, []), **mapping)  # type: ignore[arg-type]
    found = failures(gate(model, scenario))
    assert list(found) == [(scenario, "modular")], found
    assert any(f.startswith(f"{metric} regressed") for f in found[(scenario, "modular")])


@pytest.mark.parametrize(
    "edit", [no_kill_mode_process, kill_mode_mixed_dropin], ids=["no-process", "mixed-dropin"]
)
def test_kill_mode_mutation_fails_the_gate_dynamically_with_guests_lost(
    edit: Any, tmp: Path
) -> None:
    """Without KillMode=process, restarting the hypervisor daemon on a host whose guests live
    in its cgroup (no machined) kills every running guest: a dynamic regression of vms_lost,
    not only the static risk diff reports."""
    scenario = "hypervisor-restart-without-machined"
    result = gate(import_host(tmp, f"kill-{edit.__name__}", edit), scenario)
    found = failures(result)
    assert list(found) == [(scenario, "modular")], found
    assert any(f.startswith("vms_lost regressed: 0 -> ") for f in found[(scenario, "modular")])
    row = next(r for r in result.summary["rows"] if r["scenario"] == scenario)
    assert row["metrics"]["vms_lost"]["mean"] > 0


@pytest.mark.parametrize(
    ("edit", "scenario"),
    [(no_restart, "hypervisor-crash"), (requires_nodedev_socket, "nodedev-crash-loop")],
    ids=["no-restart", "requires-socket"],
)
def test_mutations_without_a_dynamic_effect_fail_the_gate_on_static_risk(
    edit: Any, scenario: str, tmp: Path
) -> None:
    """No dynamic regression in the gate experiment (socket activation restarts a daemon
    without Restart=; Requires= does not follow a socket's start-limit failure), but the
    static comparison with the experiment's own model flags the change."""
    result = gate(import_host(tmp, f"quiet-{scenario}", edit), scenario)
    assert failures(result) == {}
    assert not result.passed
    risks = result.static["modular"]
    assert risks and all(":" in r for r in risks)
    assert g.to_junit(result).count("<failure") == 1


def test_binds_to_another_daemons_socket_only_briefly_stops_the_hypervisor(tmp: Path) -> None:
    """``BindsTo=virtnodedevd.socket``: when that socket fails at the start limit, the
    hypervisor daemon is stopped (not restarted: systemd stopped it), but its own socket
    still listens, so the next probe re-activates it, and starting it starts the bound
    socket again.  The dynamic effect stays under the gate's tolerance; ``diff`` flags the
    new cross-daemon edge (tests/test_diff.py)."""
    result = gate(import_host(tmp, "binds-socket", binds_to_nodedev_socket), "nodedev-crash-loop")
    assert failures(result) == {}
    stops = [r for r in result.summary["rows"] if r["topology"] == "modular"]
    assert stops and all(r["metrics"]["vms_lost"]["mean"] == 0 for r in stops)
    assert not result.passed and any("binds_to" in r for r in result.static["modular"])


def test_verdict_is_stable_across_repeated_runs(binds_to: tuple[Path, g.GateResult]) -> None:
    model, first = binds_to
    second = gate(model, "nodedev-crash-loop")
    assert first.summary == second.summary
    assert failures(first) == failures(second) != {}


# ---------------------------------------------------------------------------- outputs
def test_junit_has_one_testcase_per_scenario_and_topology(
    binds_to: tuple[Path, g.GateResult],
) -> None:
    result = binds_to[1]
    suite = ET.fromstring(g.to_junit(result)).find("testsuite")
    assert suite is not None and suite.get("failures") == "2"
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert set(cases) == {
        ("gate.nodedev-crash-loop", "modular"),
        ("gate.static-diff", "modular"),
    }
    for case in cases.values():  # wall-clock seconds, as JUnit readers expect
        assert float(case.get("time", "")) >= 0
    assert float(suite.get("time", "")) > 0
    failure = cases[("gate.nodedev-crash-loop", "modular")].find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert "blast_radius regressed: 0 -> 1" in message and "95% CI [" in message
    assert "hypothesis modular-contains-nodedev-crash-loop deviated" in message
    md = g.to_markdown(result)
    # the static diff is a case of its own, in the verdict as in the JUnit file
    assert "FAIL (2 of 2 cases, 1 static risks)" in md
    assert g.verdict(result) == "FAIL (2 of 2 cases, 1 static risks)"
    assert "| nodedev-crash-loop | modular | blast_radius" in md


def test_static_risk_names_the_unit_file_line_that_sets_it(
    binds_to: tuple[Path, g.GateResult],
) -> None:
    """The binds-to mutation is a drop-in ``[Unit] BindsTo=virtnodedevd.service``: the
    risk, its annotation and the Markdown point at that line."""
    result = binds_to[1]
    (risk,) = result.static["modular"]
    path, line = result.where[risk].rsplit(":", 1)
    assert Path(path).read_text().splitlines()[int(line) - 1].startswith("BindsTo=")
    (static_note, *dynamic) = g.github_annotations(result, GATE)
    assert static_note.startswith(f"::error file={path},line={line},title=virtchaos gate%3A ")
    assert static_note.endswith("::" + risk.replace("%", "%25"))
    assert dynamic and all(a.startswith(f"::error file={binds_to[0]},") for a in dynamic)
    assert f"{path}:{line}: {risk}" in g.to_markdown(result)


def test_allow_list_accepts_a_known_risk_with_its_reason(
    tmp: Path, binds_to: tuple[Path, g.GateResult]
) -> None:
    model, result = binds_to
    (risk,) = result.static["modular"]
    allow = tmp / "allow.yaml"
    allow.write_text(
        "allow:\n"
        "  - {risk: 'added binds_to virtqemud.service*', reason: 'reviewed: wanted'}\n"
        "  - {risk: 'no such risk*', reason: stale}\n"
    )
    entries = g.load_allow(allow)
    kept, allowed, unused = g.apply_allow(result.static, entries)
    assert kept == {"modular": []} and allowed == {"modular": [(risk, "reviewed: wanted")]}
    assert [e.risk for e in unused] == ["no such risk*"]
    code, out, _ = invoke(
        "gate", GATE, "--baseline", BASELINE, "--topology", f"modular={model}",
        "--only-topology", "modular", "--scenario", "hypervisor-crash", "--allow", allow,
        "--annotations", "none",
    )  # fmt: skip
    assert code == 0, out
    assert f"allowed: {risk} (reviewed: wanted)" in out
    assert "'no such risk*' matches no risk" in out and "result: PASS" in out
    for text, message in (
        ("allow:\n  - {risk: 'x*'}\n", "needs exactly 'risk' and 'reason'"),
        ("allow:\n  - {risk: 'x*', reason: ' '}\n", "say why the risk is accepted"),
        ("risks: []\n", "a list 'allow:'"),
    ):
        allow.write_text(text)
        code, _, err = invoke("gate", GATE, "--baseline", BASELINE, "--allow", allow)
        assert code == 2 and message in err, err


def test_annotations_only_when_asked_or_on_github(
    binds_to: tuple[Path, g.GateResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["gate", GATE, "--baseline", BASELINE, "--topology", f"modular={binds_to[0]}"]
    args += ["--only-topology", "modular", "--scenario", "hypervisor-crash"]
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    assert "::error" not in invoke(*args)[1]
    assert invoke(*args, "--annotations", "github")[1].startswith("::error file=")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert invoke(*args)[1].startswith("::error file=")
    assert "::error" not in invoke(*args, "--annotations", "none")[1]
    code, out, _ = invoke(*args, "--annotations", "none", "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["verdict"] == "FAIL (1 of 2 cases, 1 static risks)" and not doc["passed"]
    assert (
        doc["static"][0]["risks"][0]["where"]
        == binds_to[1].where[doc["static"][0]["risks"][0]["risk"]]
    )
    assert [c["status"] for c in doc["cases"]] == ["pass"]


def invoke(*args: str | Path) -> tuple[int, str, str]:
    r = runner.invoke(cli.app, [str(a) for a in args])
    return r.exit_code, r.stdout, r.stderr


def test_cli_exit_codes_and_files(tmp: Path, binds_to: tuple[Path, g.GateResult]) -> None:
    junit, md = tmp / "out" / "gate.xml", tmp / "out" / "gate.md"
    base = ["gate", GATE, "--baseline", BASELINE, "--scenario", "nodedev-crash-loop"]
    base += ["--only-topology", "modular"]
    bad = ["--topology", f"modular={binds_to[0]}", "--junit", junit, "--markdown", md]
    code, out, _ = invoke(*base, *bad, "--tolerance", "1e9")
    assert code == 1 and "FAIL  nodedev-crash-loop / modular" in out
    assert "regressed" not in out and "hypothesis" in out  # invariants hold whatever the tolerance
    assert ET.parse(junit).getroot().tag == "testsuites" and md.read_text().startswith("###")
    for args in (
        ["gate", GATE, "--baseline", tmp / "none.json"],
        [*base, "--topology", "nosuch=x.yaml"],
        [*base, "--topology", "modular"],
        [*base, "--scenario", "nosuch"],
        [*base, "--tolerance", "speed=3"],
        [*base, "--only-topology", "nosuch"],
    ):
        code, _, err = invoke(*args)
        assert code == 2 and "Traceback" not in err, (args, err)


def test_update_baseline_is_explicit(tmp: Path) -> None:
    path = tmp / "new" / "baseline.json"
    exp = tmp / "small.yaml"
    exp.write_text(
        GATE.read_text()
        .replace("../models", str(GATE.parent.parent / "models"))
        .replace("replications: 5", "replications: 2")
        .replace("duration_s: 900", "duration_s: 400")
    )
    code, _, _ = invoke("gate", exp, "--baseline", path, "--scenario", "hypervisor-crash")
    assert code == 2 and not path.exists()  # no baseline yet, and never written implicitly
    code, out, _ = invoke("gate", exp, "--baseline", path, "--update-baseline")
    assert code == 0 and "baseline written" in out
    written = json.loads(path.read_text())
    assert (written["experiment"], written["replications"]) == ("gate", 2)
    code, out, _ = invoke("gate", exp, "--baseline", path, "--scenario", "hypervisor-crash")
    assert code == 0 and "result: PASS" in out
    assert not math.isnan(written["rows"][0]["metrics"]["blast_radius"]["mean"])
    code, _, err = invoke("gate", exp, "--baseline", path, "--update-baseline", "--scenario", "x")
    assert code == 2 and "some scenarios or topologies" in err


@pytest.mark.slow
def test_readme_worked_example_runs_as_written(tmp_path: Path) -> None:
    """The README's "Worked example" block, run in a folder that links the repository's
    tests/, models/ and experiments/ (so build/ lands in the temporary folder)."""
    import re
    import subprocess
    import sys

    root = GATE.parent.parent
    readme = (root / "README.md").read_text()
    section = readme[readme.index("### Worked example") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    for name in ("tests", "models", "experiments"):
        (tmp_path / name).symlink_to(root / name)
    script = f'virtchaos() {{ "{sys.executable}" -m sim "$@"; }}\n' + block.group(1)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)}
    out = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.stdout.count("result: ") == 2, out.stdout + out.stderr
    assert "FAIL  nodedev-crash-loop / modular" in out.stdout
    assert out.stdout.rstrip().endswith("result: PASS")
    assert (tmp_path / "build" / "gate.xml").is_file() and (
        tmp_path / "build" / "diff.md"
    ).is_file()
