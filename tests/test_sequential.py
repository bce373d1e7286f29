"""Sequential stopping (``replications: auto``): the rule, its rounds, and its results.

The rule: a scenario runs ``min`` replications in every topology, then ``batch`` more at a
time, until each watched metric's 95% t half-width (per topology and of each paired
difference) is within the metric's tolerance, or ``max``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.experiment.runner import Interrupted, run_experiment
from sim.experiment.sequential import Plan, half_width, precise
from sim.schema.experiment import Stopping

FIXTURE = Path(__file__).parent / "fixtures" / "sequential.yaml"


def rec(**metrics: float) -> dict[str, Any]:
    return {"metrics": metrics}


# ------------------------------------------------------------------ the rule, analytically
def test_half_width_is_the_student_t_half_width() -> None:
    # values 0, 1, 2: mean 1, s = 1, t(0.975, 2 df) = 4.302653
    assert half_width([0.0, 1.0, 2.0]) == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)


def test_half_width_of_one_value_is_infinite() -> None:
    assert half_width([1.0]) == math.inf


def test_constant_values_are_precise_at_once() -> None:
    runs = {"a": [rec(blast_radius=1.0)] * 3, "b": [rec(blast_radius=0.0)] * 3}
    assert precise(runs, ["blast_radius"])


def test_spread_beyond_the_tolerance_is_not_precise() -> None:
    runs = {"a": [rec(blast_radius=v) for v in (0.0, 0.5, 1.0)]}
    assert not precise(runs, ["blast_radius"])
    assert precise(runs, ["blast_radius"], tolerances={"blast_radius": 2.0})


def test_a_varying_paired_difference_is_not_precise() -> None:
    # each topology is tight on its own (half-width 0.0092), not their difference (0.0184)
    a = [rec(x=v) for v in (1.00, 1.01, 1.00, 1.01)]
    b = [rec(x=v) for v in (1.01, 1.00, 1.01, 1.00)]
    assert precise({"a": a}, ["x"], {"x": 0.015})
    assert precise({"b": b}, ["x"], {"x": 0.015})
    assert not precise({"a": a, "b": b}, ["x"], {"x": 0.015})


def test_a_metric_undefined_everywhere_does_not_hold_a_scenario_back() -> None:
    runs = {"a": [{"metrics": {"t": None}, "undefined": {"t": "never"}}] * 3}
    assert precise(runs, ["t"])


def test_rounds_start_at_min_grow_by_batch_and_end_at_max() -> None:
    plan = Plan(Stopping(min=3, max=8, batch=2, metrics=["blast_radius"]), ["s"], ["a"])
    seen = []
    while rnd := plan.next_round():
        seen.append(rnd["s"])
        n = rnd["s"].stop
        plan.settle("s", n, {("a", r): rec(blast_radius=r % 2) for r in range(n)})
    assert seen == [range(0, 3), range(3, 5), range(5, 7), range(7, 8)]
    assert plan.counts == {"s": 8}


@given(st.lists(st.floats(0, 1), min_size=2, max_size=30), st.integers(2, 10))
def test_a_settled_scenario_is_precise_or_at_max(values: list[float], mn: int) -> None:
    rule = Stopping(min=mn, max=30, batch=3, metrics=["blast_radius"])
    plan = Plan(rule, ["s"], ["a"])
    while rnd := plan.next_round():
        n = rnd["s"].stop
        runs = {("a", r): rec(blast_radius=values[r % len(values)]) for r in range(n)}
        plan.settle("s", n, runs)
    n = plan.counts["s"]
    assert mn <= n <= 30
    window = [rec(blast_radius=values[r % len(values)]) for r in range(n)]
    assert n == 30 or precise({"a": window}, ["blast_radius"])


# ------------------------------------------------------------------ end to end
def _summary(folder: Path) -> bytes:
    return (folder / "summary.json").read_bytes()


@pytest.fixture(scope="module")
def sequential_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seq") / "one"
    run_experiment(FIXTURE, out=out, jobs=1)
    return out


def test_a_scenario_without_variance_stops_at_min(sequential_run: Path) -> None:
    import json

    summary = json.loads(_summary(sequential_run))
    counts = summary["stopping"]["replications"]
    assert counts["baseline"] == 3
    # the crash leaves 0 or 1 guest running at the end, and vms_running has no tolerance
    assert counts["crash-hv"] == 9
    assert summary["replications"] == 9
    for row in summary["rows"]:
        assert row["metrics"]["blast_radius"]["n"] == counts[row["scenario"]]
    assert "95% t half-width" in summary["stopping"]["rule"]


def test_only_the_runs_counted_are_kept(sequential_run: Path) -> None:
    import json

    summary = json.loads(_summary(sequential_run))
    lines = (sequential_run / "runs.jsonl").read_text().splitlines()
    counts = summary["stopping"]["replications"]
    assert len(lines) == 2 * sum(counts.values())


def test_same_bytes_with_two_processes(sequential_run: Path, tmp_path: Path) -> None:
    run_experiment(FIXTURE, out=tmp_path / "two", jobs=2)
    assert _summary(tmp_path / "two") == _summary(sequential_run)


def test_interrupted_and_resumed_gives_the_same_bytes(sequential_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"

    def stop_after_seven(done: int, total: int) -> None:
        if done >= 7:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        run_experiment(FIXTURE, out=out, jobs=1, progress=stop_after_seven)
    outcome = run_experiment(FIXTURE, out=out, jobs=1)
    assert outcome.resumed == 7
    assert _summary(out) == _summary(sequential_run)


def test_a_fixed_count_on_the_command_line_overrides_auto(tmp_path: Path) -> None:
    import json

    run_experiment(FIXTURE, out=tmp_path / "fixed", replications=2, jobs=1)
    summary = json.loads(_summary(tmp_path / "fixed"))
    assert summary["replications"] == 2 and "stopping" not in summary
