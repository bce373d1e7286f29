"""The command line as a person sees it: help texts at 80 columns, ``--version``, shell
completion, the summary table, progress without a terminal, Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from sim import __version__
from sim.cli import render

ROOT = Path(__file__).resolve().parent.parent

VERBS = [
    "validate",
    "list",
    "init",
    "models",
    "models list",
    "analyze",
    "graph",
    "schema",
    "run",
    "merge",
    "replay",
    "report",
    "import-units",
    "diff",
    "gate",
    "calibrate",
    "realrun",
    "compare",
    "testbed",
    "testbed up",
]


def virtchaos(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m sim ARGS`` at 80 columns, stdout a pipe (not a terminal)."""
    full = {**os.environ, "COLUMNS": "80", "TERM": "dumb", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sim", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=full,
        timeout=120,
        check=False,
    )


def flat(text: str) -> str:
    """Help text with its line wrapping undone (a path may wrap after ``-`` or ``/``)."""
    return " ".join(re.sub(r"(?<=[-/])\n\s+", "", text).split())


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    out = {}
    for verb in ["", *VERBS]:
        proc = virtchaos(*verb.split(), "--help")
        assert proc.returncode == 0, proc.stderr
        out[verb] = proc.stdout
    return out


def test_every_help_fits_80_columns(helps: dict[str, str]) -> None:
    for verb, text in helps.items():
        wide = [line for line in text.splitlines() if len(line) > 80]
        assert not wide, (verb, wide)


def test_every_verb_is_listed_with_an_untruncated_summary(helps: dict[str, str]) -> None:
    top = helps[""]
    for verb in VERBS:
        if " " not in verb:
            assert f"\n  {verb} " in top
    assert "..." not in top.split("Commands:")[1]


@pytest.mark.parametrize(
    ("verb", "default"),
    [
        ("run", "Results folder [default: results/<experiment>/<run-id>]."),
        ("run", "Seed [default: the experiment's]."),
        ("run", "or 'auto': run each scenario until its intervals are narrow enough"),
        ("run", "stopping: rule) [default: the experiment's]."),
        ("run", "[default: 1; x>=1]"),
        ("run", "--executor <local|dask> Where the runs go"),
        ("merge", "Join a run's shards into one results folder."),
        ("analyze", "Workload file [default: MODEL's ../workloads/virt-host.yaml]"),
        ("graph", "[default: crash]"),
        ("import-units", "Import mapping [default: the one models/*/import-map.yaml here, else"),
        ("list", "[default: models/libvirt/modular.yaml]"),
        ("run", "--dry-run Only print the plan"),
        ("gate", "[defaults: blast_radius 0.05,"),
        ("gate", "--static / --no-static"),
        ("realrun", "Replications [default: the experiment's]."),
        ("testbed up", "Guests [default: the host's]."),
    ],
)
def test_help_shows_the_defaults_as_written(helps: dict[str, str], verb: str, default: str) -> None:
    assert default in flat(helps[verb])


def test_version() -> None:
    proc = virtchaos("--version")
    assert (proc.returncode, proc.stdout) == (0, f"virtchaos {__version__}\n")


def test_shell_completion_completes_verbs_and_options() -> None:
    env = {"_VIRTCHAOS_COMPLETE": "complete_bash", "COMP_WORDS": "virtchaos re", "COMP_CWORD": "1"}
    assert virtchaos(env=env).stdout.split() == ["replay", "report", "realrun"]
    env |= {"COMP_WORDS": "virtchaos graph m.yaml --mo", "COMP_CWORD": "3"}
    assert virtchaos(env=env).stdout.split() == ["--mode"]
    assert "_virtchaos_completion" in virtchaos("--show-completion", "bash").stdout


# ------------------------------------------------------------------ the summary of `run`
def matrix_summary(scenarios: int) -> dict[str, Any]:
    """The first ``scenarios`` scenarios of the committed FESCo matrix summary."""
    summary = json.loads((ROOT / "results/fesco/matrix/summary.json").read_text())
    keep = list(dict.fromkeys(r["scenario"] for r in summary["rows"]))[:scenarios]
    summary["rows"] = [r for r in summary["rows"] if r["scenario"] in keep]
    summary["comparisons"] = [c for c in summary["comparisons"] if c["scenario"] in keep]
    return summary


def rendered(width: int, summary: dict[str, Any]) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(render.summary_table(summary, width))
    return console.export_text()


def test_summary_table_fits_80_columns_with_whole_names_and_the_difference() -> None:
    text = rendered(80, matrix_summary(4))
    assert max(len(line) for line in text.splitlines()) <= 80
    for name in ("hypervisor.crash-loop", "hypervisor.hang-process", "monolithic", "modular"):
        assert name in text
    assert "monolithic -> modular" in text
    # hypervisor crash-loop: virtproxyd answers the fallback clients with errors in modular
    row = next(line for line in text.splitlines() if "failed_operations" in line and "4879" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells == ["failed_operations", "40.0", "4879", "+4840 [4818, 4861]"]
    assert "…" not in text


def test_summary_table_wide_shows_every_interval() -> None:
    text = rendered(160, matrix_summary(2))
    assert "49.7 [49.6, 49.9]" in text
    assert "+4840 [4818, 4861]" in text


def test_run_without_a_terminal_prints_progress_lines_and_an_80_column_table(
    tmp_path: Path,
) -> None:
    proc = virtchaos("run", "tests/fixtures/experiment.yaml", "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    progress = [line for line in proc.stderr.splitlines() if line.startswith("progress: ")]
    assert progress[-1].startswith("progress: 12/12 runs (100%), ")
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
    assert "split -> mono" in proc.stdout


# ------------------------------------------------------------------ tmux: a real terminal
def tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", *args], capture_output=True, text=True, check=True, timeout=30
    ).stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_ctrl_c_in_a_terminal_clears_the_bar_and_says_how_to_resume(tmp_path: Path) -> None:
    session = f"virtchaos-test-{os.getpid()}"
    out = tmp_path / "r"
    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", "-c", str(ROOT))
    try:
        cmd = f"{sys.executable} -m sim run experiments/nodedev-hang.yaml --out {out}"
        tmux("send-keys", "-t", session, f"clear; {cmd}", "Enter")
        deadline = time.monotonic() + 60
        while "/40" not in tmux("capture-pane", "-p", "-t", session):  # the runs started
            assert time.monotonic() < deadline, tmux("capture-pane", "-p", "-t", session)
            time.sleep(0.2)
        bar = next(line for line in tmux("capture-pane", "-p", "-t", session).splitlines() if line)
        assert bar.startswith("replications") and len(bar) <= 80
        tmux("send-keys", "-t", session, "C-c")
        deadline = time.monotonic() + 30
        while "resume" not in (screen := tmux("capture-pane", "-pJ", "-t", session)):
            assert time.monotonic() < deadline, screen
            time.sleep(0.2)
        lines = [line for line in screen.splitlines() if line.strip()]
        assert lines[-2].startswith("interrupted: ") and f"runs kept in {out}" in lines[-2]
        assert lines[-1].startswith("run the same command again to resume")
        assert "replications" not in screen and "Traceback" not in screen
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
