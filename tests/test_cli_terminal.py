"""The command line as a person sees it: help texts at 80 columns, ``--version``, shell
completion, the summary table, progress without a terminal, Ctrl-C."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim import __version__

ROOT = Path(__file__).resolve().parent.parent

VERBS = [
    "validate",
    "analyze",
    "graph",
    "schema",
    "run",
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
        ("run", "Replications [default: the experiment's]."),
        ("run", "[default: 1; x>=1]"),
        ("analyze", "Workload file [default: MODEL's ../workloads/virt-host.yaml]"),
        ("graph", "[default: crash]"),
        ("import-units", "Import mapping [default: the one models/*/import-map.yaml]."),
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
