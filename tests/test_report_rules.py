"""The report's rules on small synthetic summaries: bounded intervals, the significance rule
shared with the gate, the number format, summary sentences generated from the data."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.experiment.significance import TOLERANCES, direction
from sim.experiment.stats import bounded, summarize, wilson
from sim.gate import check as gate
from sim.report import html, trust
from sim.report.findings import Verdict, summary_sentences, verdict
from sim.report.fmt import decimals, estimate, interval_of
from sim.report.results import Results


# ------------------------------------------------------------------------------ intervals
@given(st.floats(0, 1), st.integers(1, 500))
def test_wilson_lies_in_unit_interval_and_holds_the_mean(p: float, n: int) -> None:
    lo, hi = wilson(p, n)
    assert 0.0 <= lo <= p + 1e-12 and p - 1e-12 <= hi <= 1.0


def test_wilson_of_all_zero_replications_is_not_a_point() -> None:
    lo, hi = wilson(0.0, 30)
    assert lo == 0.0 and 0.1 < hi < 0.12  # z^2 / (n + z^2)
    assert wilson(1.0, 30) == pytest.approx((1 - hi, 1.0))


@given(st.lists(st.floats(0, 50), min_size=2, max_size=40))
def test_counts_never_get_an_interval_below_zero(values: list[float]) -> None:
    lo, hi = bounded(summarize(values), 0.0, None)
    assert 0.0 <= lo <= hi


def test_a_proportion_uses_wilson_and_a_count_is_cut_at_zero() -> None:
    rare = summarize([0.0] * 29 + [0.02])  # t-interval below 0
    assert rare["ci95"][0] < 0  # type: ignore[index]
    assert interval_of(rare, "blast_radius") == wilson(float(rare["mean"]), 30)  # type: ignore[arg-type]
    lo, hi = interval_of(rare, "vms_lost")
    assert lo == 0.0 and hi == rare["ci95"][1]  # type: ignore[index]


# ------------------------------------------------------------------------------ format
def test_proportions_show_two_decimals_not_six_digits() -> None:
    stat = {"mean": 0.000667, "ci95": [-0.000697, 0.00203], "n": 30}
    text = estimate(stat, "blast_radius")
    assert text.startswith("0.00 [0.00, ")
    assert re.fullmatch(r"\d\.\d\d \[\d\.\d\d, \d\.\d\d\]", text)


@pytest.mark.parametrize(
    ("mean", "lo", "hi", "text"),
    [(1125.83, 1123.45, 1128.22, "1126 [1123, 1128]"), (49.73, 49.57, 49.9, "49.7 [49.6, 49.9]"),
     (0.0333, -0.0348, 0.1015, "0.033 [0.000, 0.102]"), (0.0, 0.0, 0.0, "0 [0, 0]")],
)  # fmt: skip
def test_counts_show_three_significant_digits_of_the_largest(
    mean: float, lo: float, hi: float, text: str
) -> None:
    assert estimate({"mean": mean, "ci95": [lo, hi], "n": 30}, "vms_unmanageable") == text


@given(st.floats(-1e6, 1e6), st.floats(0, 1e6))
def test_decimals_give_two_or_three_significant_digits(x: float, y: float) -> None:
    places = decimals("failed_operations", x, y)
    scale = max(abs(x), abs(y))
    assert 0 <= places <= 3
    if scale >= 1:
        assert places == max(0, 2 - math.floor(math.log10(scale)))


# ------------------------------------------------------------------------------ the rule
@given(st.floats(-2, 2), st.floats(0, 1), st.floats(0, 1), st.floats(0, 0.5))
def test_report_and_gate_apply_the_same_rule(
    d: float, below: float, above: float, tol: float
) -> None:
    lo, hi = d - below, d + above
    cmp = {"diff_mean": d, "ci95": [lo, hi]}
    tols = dict(TOLERANCES, blast_radius=tol)
    regressed = gate.MetricVerdict("blast_radius", 0, d, d, (lo, hi), tol).regressed
    way = direction(d, lo, hi, tols["blast_radius"])
    assert regressed is (way > 0)
    if tol == TOLERANCES["blast_radius"]:
        v = verdict(cmp, 30, "blast_radius")
        assert (v is Verdict.HIGHER) is regressed
        assert (v is Verdict.LOWER) is (way < 0)


def test_a_tiny_significant_difference_does_not_count() -> None:
    cmp = {"diff_mean": -0.008, "ci95": [-0.01, -0.006]}
    assert verdict(cmp, 30, "blast_radius") is Verdict.SMALL
    assert verdict({"diff_mean": -1.0, "ci95": [-1.0, -1.0]}, 30, "blast_radius") is Verdict.LOWER
    assert gate.DEFAULT_TOLERANCES == TOLERANCES


# ------------------------------------------------------------------------------ summary
def _stat(x: float) -> dict[str, Any]:
    return {"mean": x, "ci95": [x, x], "n": 10}


def _results(cells: dict[str, tuple[float, float]], tmp: Path) -> Results:
    rows, cmps = [], []
    for name, (a, b) in cells.items():
        rows += [{"scenario": name, "topology": t, "metrics": {"blast_radius": _stat(v)}}
                 for t, v in (("one", a), ("two", b))]  # fmt: skip
        cmps.append({"scenario": name, "metric": "blast_radius", "a": "one", "b": "two",
                     "diff_mean": b - a, "ci95": [b - a, b - a]})  # fmt: skip
    summary = {"experiment": "x", "seed": 1, "replications": 10, "rows": rows,
               "comparisons": cmps}  # fmt: skip
    return Results(tmp, {}, summary, None, None)


@given(st.lists(st.tuples(st.sampled_from([0.0, 0.3, 1.0]), st.sampled_from([0.0, 0.3, 1.0])),
                min_size=1, max_size=12))  # fmt: skip
def test_summary_sentences_count_what_the_data_says(pairs: list[tuple[float, float]]) -> None:
    res = _results({f"s{i}": p for i, p in enumerate(pairs)}, Path("."))
    lines = summary_sentences(res)
    assert 1 <= len(lines) <= 5
    lower = sum(b < a - 0.05 for a, b in pairs)
    higher = sum(b > a + 0.05 for a, b in pairs)
    assert (
        f"in {lower}, higher in {higher} and not different in {len(pairs) - lower - higher}"
        in (lines[0])
    )
    text = " ".join(lines)
    assert ("Two contains" in text) is (lower > 0)
    assert ("Two is worse" in text) is (higher > 0)
    for i, (a, b) in enumerate(pairs):
        if b < a - 0.05:
            assert re.search(rf"\bs{i}\b", text)


def test_summary_names_levels_and_groups_by_mechanism(tmp_path: Path) -> None:
    res = _results({"a": (1.0, 0.0), "b": (1.0, 0.0), "c": (1.0, 1.0), "d": (0.0, 0.0)}, tmp_path)
    text = " ".join(summary_sentences(res))
    assert "Two contains" in text and "a or b (1.00 → 0.00)" in text
    assert "Neither topology contains" in text and "c (1.00 → 1.00)" in text
    assert "1 scenario stay" in text or "1 scenario stays" in text or "d" in text


# ------------------------------------------------------------------------------ variants
def _variants(tmp: Path) -> Results:
    """Three topologies (a reference and two variants) x a two-axis sweep's four points."""
    value = {("ref", "a"): 1.0, ("v1", "a"): 0.0, ("v2", "a"): 1.0}
    rows, cmps = [], []
    for f in ("none", "hang"):
        for c in ("x", "y"):
            name = f"m.fault-{f}.callers-{c}"
            vals = {t: (value[(t, "a")] if f == "hang" and c == "x" else 0.0)
                    for t in ("ref", "v1", "v2")}  # fmt: skip
            rows += [{"scenario": name, "topology": t, "metrics": {"blast_radius": _stat(v)}}
                     for t, v in vals.items()]  # fmt: skip
            for a, b in (("ref", "v1"), ("ref", "v2"), ("v1", "v2")):
                d = vals[b] - vals[a]
                cmps.append({"scenario": name, "metric": "blast_radius", "a": a, "b": b,
                             "diff_mean": d, "ci95": [d, d]})  # fmt: skip
    summary = {"experiment": "x", "seed": 1, "replications": 10, "rows": rows,
               "comparisons": cmps}  # fmt: skip
    return Results(tmp, {}, summary, None, None)


def test_with_more_than_two_topologies_the_first_is_the_reference_of_every_pair() -> None:
    res = _variants(Path("."))
    assert res.pairs == [("ref", "v1"), ("ref", "v2")]


def test_a_two_axis_sweep_grid_has_a_row_per_topology_and_second_axis_value() -> None:
    from sim.report.structure import SweepLayout, SweepPoint
    from sim.report.tables import grid_table

    res = _variants(Path("."))
    points = tuple(SweepPoint(f"m.fault-{f}.callers-{c}", (f, c), (f, c))
                   for f in ("none", "hang") for c in ("x", "y"))  # fmt: skip
    table = grid_table(res, SweepLayout("m", "", ("fault", "callers"), points), "blast_radius")
    assert table[0] == "| topology | callers | `none` | `hang` |"
    body = table[2:]
    assert len(body) == 6
    assert body[0].startswith("| **ref** | `x` | 0.00")
    assert body[0].endswith("1.00 [0.72, 1.00] |")  # a Wilson interval
    assert "▼" in body[2] and body[2].startswith("| **v1** | `x` |")  # lower than ref
    assert "▼" not in body[4] and "▲" not in body[4]  # v2 is the same as ref
    assert "▼" not in body[0]  # the reference row is not compared with itself


# ------------------------------------------------------------------------------ trust, html
def test_validation_table_from_compare_json(tmp_path: Path) -> None:
    assert "No sim-versus-real comparison" in trust.validation_lines(None)[0]
    assert "holds no rows" in trust.validation_lines(tmp_path)[0]
    rows = [{"case": "hang", "sim": 0.99, "real": 1.0}, {"case": "crash", "sim": 0.0}]
    (tmp_path / "compare.json").write_text(json.dumps({"rows": rows}), encoding="utf-8")
    lines = trust.validation_lines(tmp_path)
    assert "| case | sim | real |" in lines and "| crash | 0 | – |" in lines


def test_html_has_anchors_and_a_table_of_contents(tmp_path: Path) -> None:
    page = html.render("# T\n\n## One `a`\n\n### Sub\n\n## One `a`\n", tmp_path, "T")
    assert 'id="one-a"' in page and 'id="one-a-2"' in page and 'id="sub"' in page
    assert '<nav class="toc">' in page and 'href="#one-a-2"' in page
