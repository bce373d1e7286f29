"""Golden runs: every shipped experiment, run small (2 replications) with its own seed, must
reproduce its committed summary byte for byte (CONVENTIONS 15).

A change that moves any number shows up here.  When the change is intended, regenerate with
``VIRTCHAOS_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py -m ''`` and commit the new
files together with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sim.experiment.runner import run_experiment

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden"
SLOW = {"fesco-matrix", "sensitivity", "fesco-cases", "fesco-mitigations"}
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))


def _params() -> list[object]:
    return [
        pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in SLOW else [])
        for p in EXPERIMENTS
    ]


@pytest.mark.parametrize("experiment", _params())
def test_shipped_experiment_reproduces_its_golden_summary(experiment: Path, tmp_path: Path):
    out = run_experiment(experiment, tmp_path / "out", replications=2, jobs=1)
    produced = (out.folder / "summary.json").read_text(encoding="utf-8")
    golden = GOLDEN / f"{experiment.stem}.summary.json"
    if os.environ.get("VIRTCHAOS_UPDATE_GOLDEN") == "1":
        golden.write_text(produced, encoding="utf-8")
    assert golden.is_file(), f"no golden summary for {experiment.name}; see the module docstring"
    assert produced == golden.read_text(encoding="utf-8")
