"""Regression gate for CI: re-run an experiment and compare it with a baseline summary.

The experiment runs with the baseline's seed and number of replications (optionally with
some topology files replaced, e.g. by a model imported from a changed unit tree), so an
unchanged model reproduces the baseline exactly.  Each (scenario, topology, metric) of
:data:`GATE_METRICS` is then compared.

Statistical rule
----------------
For baseline mean ``a`` (95% interval half-width ``h_a``, ``n_a`` replications) and new mean
``b`` (``h_b``, ``n_b``), the standard errors are recovered from the Student-t intervals
the summaries hold: ``se = h / t(0.975, n - 1)``.  The difference ``d = b - a`` gets a Welch
interval ``d +- t(0.975, df) * sqrt(se_a^2 + se_b^2)`` with Welch-Satterthwaite ``df``
(a zero-width side contributes nothing; both zero-width gives ``[d, d]``).  The metric
**regresses** when ``d > tolerance`` (absolute, per metric, :data:`DEFAULT_TOLERANCES`) **and**
the interval's lower end is above zero (:func:`sim.experiment.significance.direction`, the rule
the report uses for "better" and "worse" too).  An improvement never fails the gate.  Separately,
every steady-state hypothesis the experiment declares must hold on the new summary.
"""

from __future__ import annotations

import math
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ConfigError
from sim.experiment.budget import check_size
from sim.experiment.runner import dumps, execute, hypotheses, summarize_runs, tasks_of, write_atomic
from sim.experiment.significance import TOLERANCES, direction
from sim.experiment.stats import t_quantile
from sim.model.load import load_experiment, substitute_topologies
from sim.model.loader import Limits, read_text
from sim.model.resolved import ExperimentModel, System
from sim.static.modeldiff import diff_models

DEFAULT_TOLERANCES: dict[str, float] = dict(TOLERANCES)
"""Absolute tolerance per gated metric (:data:`sim.experiment.significance.TOLERANCES`, shared with
the report)."""

GATE_METRICS = tuple(DEFAULT_TOLERANCES)
BASELINE_MAX_BYTES = 64 * 1024 * 1024
"""The largest baseline summary read (the fault matrix's is about 2 MB)."""


@dataclass(frozen=True)
class MetricVerdict:
    """One gated metric of one case: baseline and new means, their difference and interval."""

    metric: str
    old: float
    new: float
    diff: float
    ci: tuple[float, float]
    tolerance: float

    @property
    def regressed(self) -> bool:
        """Whether the metric got worse by the gate's rule (interval above 0, past tolerance)."""
        return direction(self.diff, *self.ci, self.tolerance) > 0

    def describe(self) -> str:
        """The regression in one line, with the numbers that decided it."""
        return (
            f"{self.metric} regressed: {self.old:g} -> {self.new:g} (difference {self.diff:+g}, "
            f"95% CI [{self.ci[0]:g}, {self.ci[1]:g}], tolerance {self.tolerance:g})"
        )


@dataclass(frozen=True)
class CaseVerdict:
    """One scenario in one topology: its metrics and hypotheses."""

    scenario: str
    topology: str
    metrics: tuple[MetricVerdict, ...]
    hypotheses: tuple[dict[str, Any], ...] = ()
    missing: bool = False

    @property
    def failures(self) -> list[str]:
        """Why the case fails: each regressed metric and each hypothesis that no longer holds."""
        out = [m.describe() for m in self.metrics if m.regressed]
        for h in self.hypotheses:
            if not h["held"]:
                bounds = " and ".join(
                    f"{op} {h[k]:g}" for k, op in (("min", ">="), ("max", "<=")) if h[k] is not None
                )
                out.append(
                    f"hypothesis {h['hypothesis']} deviated: {h['metric']} = {h['mean']:g}, "
                    f"expected {bounds}"
                )
        return out

    @property
    def passed(self) -> bool:
        """Whether the case has no failure."""
        return not self.failures


@dataclass
class GateResult:
    """The gate's outcome: every case, the static risks per topology, and the new summary."""

    experiment: str
    seed: int
    replications: int
    baseline: Path
    substituted: dict[str, str]
    cases: list[CaseVerdict]
    summary: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    static: dict[str, list[str]] = field(default_factory=dict)
    """Per replaced topology: the changes ``diff`` marks as risks and no allow-list entry
    accepts (empty: none)."""
    allowed: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Per replaced topology: the risks an allow-list entry accepts, with its reason."""
    where: dict[str, str] = field(default_factory=dict)
    """A risk's text -> ``file:line`` of the unit file (or drop-in) that sets it, when the
    imported model says which file it came from."""
    times: dict[tuple[str, str], float] = field(default_factory=dict)
    """Wall-clock seconds of each (scenario, topology)'s runs (from when each run's record
    arrived: exact with one job, shared out between cases with several); only here and in
    the JUnit file, never in a summary."""
    static_time: float = 0.0

    @property
    def passed(self) -> bool:
        """Whether every case passed and no topology has a static risk left."""
        return all(c.passed for c in self.cases) and not any(self.static.values())


# ---------------------------------------------------------------------------- statistics
def standard_error(entry: Mapping[str, Any]) -> tuple[float, int]:
    """(standard error, n) recovered from a summary entry's mean, ci95 and n."""
    n = int(entry["n"])
    lo, hi = (float(x) for x in entry["ci95"])
    if n < 2 or hi <= lo:
        return 0.0, n
    return (hi - lo) / 2 / t_quantile(0.975, n - 1), n


def welch_interval(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[float, float, float]:
    """(difference new - old, lo, hi): the Welch 95% interval from two summary entries."""
    d = float(new["mean"]) - float(old["mean"])
    (se_a, n_a), (se_b, n_b) = standard_error(old), standard_error(new)
    var = se_a**2 + se_b**2
    if var == 0:
        return d, d, d
    denom = sum(se**4 / (n - 1) for se, n in ((se_a, n_a), (se_b, n_b)) if se > 0)
    df = var**2 / denom
    half = t_quantile(0.975, df) * math.sqrt(var)
    return d, d - half, d + half


def compare(
    baseline: Mapping[str, Any],
    summary: Mapping[str, Any],
    tolerances: Mapping[str, float],
    held: Sequence[dict[str, Any]] = (),
) -> list[CaseVerdict]:
    """A verdict per (scenario, topology) row of the new summary."""
    old_rows = {(r["scenario"], r["topology"]): r for r in baseline["rows"]}
    out = []
    for row in summary["rows"]:
        key = (row["scenario"], row["topology"])
        hyps = tuple(h for h in held if (h["scenario"], h["topology"]) == key)
        old = old_rows.get(key)
        if old is None:
            out.append(CaseVerdict(*key, (), hyps, missing=True))
            continue
        verdicts = []
        for m in GATE_METRICS:
            if m not in row["metrics"] or m not in old["metrics"]:
                continue
            a, b = old["metrics"][m], row["metrics"][m]
            if a["mean"] is None or b["mean"] is None:
                continue  # undefined in every run: nothing to compare
            d, lo, hi = welch_interval(a, b)
            verdicts.append(
                MetricVerdict(m, a["mean"], b["mean"], _r(d), (_r(lo), _r(hi)), tolerances[m])
            )
        out.append(CaseVerdict(*key, tuple(verdicts), hyps))
    return out


def _r(x: float) -> float:
    return round(x, 6) + 0.0


# ---------------------------------------------------------------------------- inputs
def parse_tolerances(specs: Iterable[str]) -> dict[str, float]:
    """``METRIC=X`` sets one metric's tolerance; a bare ``X`` sets every metric's."""
    out = dict(DEFAULT_TOLERANCES)
    for spec in specs:
        metric, sep, value = spec.rpartition("=")
        if sep and metric not in out:
            raise ConfigError.single(
                "--tolerance", f"unknown metric {metric!r}: use {GATE_METRICS}"
            )
        try:
            x = float(value)
        except ValueError:
            raise ConfigError.single("--tolerance", f"not a number: {value!r}") from None
        if x < 0 or not math.isfinite(x):
            raise ConfigError.single("--tolerance", f"must be a finite number >= 0, got {value}")
        out.update({metric: x} if sep else dict.fromkeys(out, x))
    return out


def parse_topologies(specs: Iterable[str]) -> dict[str, Path]:
    """``--topology NAME=MODEL.yaml`` options as a mapping; ConfigError on a malformed one."""
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigError.single("--topology", f"expected NAME=MODEL.yaml, got {spec!r}")
        out[name] = Path(path)
    return out


def read_baseline(path: Path) -> dict[str, Any]:
    """The baseline summary (bounded, strict JSON, with the keys the gate reads); ConfigError
    otherwise."""
    import json

    if not path.exists():
        raise ConfigError.single(path, "baseline summary not found")
    text = read_text(path, Limits(max_bytes=BASELINE_MAX_BYTES))  # a regular file, bounded
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ConfigError.single(path, f"baseline is not a readable summary.json: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError.single(path, "baseline must be a JSON object (a summary.json)")
    for key, kind in (("experiment", str), ("seed", int), ("replications", int), ("rows", list)):
        value = data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ConfigError.single(path, f"baseline field {key!r} missing or not {kind.__name__}")
    return data


# ---------------------------------------------------------------------------- the gate
def run_gate(
    experiment: Path,
    baseline_path: Path,
    topologies: Mapping[str, Path] | None = None,
    tolerances: Mapping[str, float] | None = None,
    scenarios: Sequence[str] = (),
    jobs: int = 1,
    need_baseline: bool = True,
    only_topologies: Sequence[str] = (),
    static: bool = True,
    size_check: bool = True,
    allow: Sequence[AllowEntry] = (),
) -> GateResult:
    """Re-run ``experiment`` (seed and replications from the baseline) and compare.

    With ``static`` (the default), each topology replaced through ``topologies`` is also
    compared with the experiment's own by :func:`sim.static.modeldiff.diff_models`; every change it
    marks as a risk (a weaker restart policy, a new hard dependency across daemons, a
    smaller pool, a disabled unit, a wider static blast radius) fails the gate too, with
    the reason: some harmful changes show no dynamic effect in a given experiment.

    Raises
    ------
    ConfigError
        the baseline is missing or unreadable, belongs to another experiment, a
        ``--topology``/``--scenario``/``--only-topology`` names something the experiment
        does not have, or (with ``size_check``) the runs are estimated too large
        (:func:`sim.experiment.budget.check_size`)
    """
    model = substitute_topologies(load_experiment(experiment), topologies or {})
    started = time.monotonic()
    risks, where = _static_risks(experiment, model, topologies or {}) if static else ({}, {})
    static_time = time.monotonic() - started
    baseline = read_baseline(baseline_path) if need_baseline or baseline_path.exists() else None
    if baseline is not None and baseline["experiment"] != model.doc.name:
        msg = f"baseline is for experiment {baseline['experiment']!r}, not {model.doc.name!r}"
        raise ConfigError.single(baseline_path, msg)
    seed = baseline["seed"] if baseline else model.doc.seed
    reps = baseline["replications"] if baseline else model.doc.max_replications
    if scenarios:
        unknown = sorted(set(scenarios) - {s.name for s in model.scenarios})
        if unknown:
            raise ConfigError.single(experiment, f"--scenario: no scenario {unknown}")
        model.scenarios = [s for s in model.scenarios if s.name in scenarios]
    if only_topologies:
        unknown = sorted(set(only_topologies) - {s.name for s in model.systems})
        if unknown:
            raise ConfigError.single(experiment, f"--only-topology: no topology {unknown}")
        model.systems = [s for s in model.systems if s.name in only_topologies]
    if size_check:
        check_size(model, reps)
    records, times = (
        [],
        dict.fromkeys(((s.name, t.name) for s in model.scenarios for t in model.systems), 0.0),
    )
    last = time.monotonic()
    for rec in execute(experiment, model, tasks_of(model, reps), seed, jobs, topologies):
        now = time.monotonic()
        key = (rec["scenario"], rec["topology"])
        times[key] = times.get(key, 0.0) + now - last
        last = now
        records.append(rec)
    summary = summarize_runs(model, records, seed, reps)
    held = hypotheses(model, summary)
    summary["hypotheses"] = held
    tol = dict(tolerances or DEFAULT_TOLERANCES)
    cases = compare(baseline or {"rows": []}, summary, tol, held)
    subst = {k: str(v) for k, v in (topologies or {}).items()}
    kept, allowed, unused = apply_allow(risks, allow)
    result = GateResult(
        model.doc.name,
        seed,
        reps,
        baseline_path,
        subst,
        cases,
        summary,
        static=kept,
        allowed=allowed,
        where=where,
        times=times,
        static_time=static_time,
    )
    for entry in unused:
        result.notes.append(f"allow-list entry {entry.where}: {entry.risk!r} matches no risk")
    if baseline is None:
        result.notes.append(f"no baseline at {baseline_path}: nothing to compare")
    missing = [f"{c.scenario} / {c.topology}" for c in cases if c.missing and baseline]
    if missing:
        result.notes.append(f"no baseline row for {', '.join(missing)}: not compared")
    return result


def _static_risks(
    experiment: Path, model: ExperimentModel, topologies: Mapping[str, Path]
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Per replaced topology, the risks ``diff`` finds; and where each was set, if known."""
    original = {s.name: s for s in load_experiment(experiment).systems}
    out, where = {}, {}
    for name in sorted(topologies):
        new = next(s for s in model.systems if s.name == name)
        found = diff_models(original[name], new, model.workload)
        out[name] = found.risks
        for change in found.changes:
            place = _where_set(new, change.subject, change.kind) if change.risk else None
            if place:
                where[f"{change.describe()}: {change.risk}"] = place
    return out, where


_SOURCE_FILE = re.compile(r"(?:imported from |, )(/?[^\s,:]+?)(?::(\d+))?(?: \(drop-in\))?(?=,|$)")


def directive_name(field_name: str) -> str:
    """The unit-file directive of a model field: ``binds_to`` -> ``BindsTo``,
    ``start_limit_interval_s`` -> ``StartLimitIntervalSec``."""
    base, sec = (field_name[:-2], "Sec") if field_name.endswith("_s") else (field_name, "")
    return "".join(part.capitalize() for part in base.split("_")) + sec


def _where_set(system: System, subject: str, kind: str) -> str | None:
    """``file:line`` of the directive behind a change of ``subject`` (a unit name, or
    ``unit -> unit`` for an edge): the last of the unit's files (drop-ins come after the
    unit file, and override it) that sets the directive; else the unit file itself."""
    unit_name = subject.split(" -> ", 1)[0].split(":", 1)[0].strip()
    unit = system.units.get(unit_name)
    source = " ".join(str(unit.source or "").split()) if unit is not None else ""
    files = [(m.group(1), int(m.group(2) or 1)) for m in _SOURCE_FILE.finditer(source)]
    files = [(f, line) for f, line in files if Path(f).is_file()]
    if not files:
        return None
    directive = directive_name(kind) + "="
    for path, _ in reversed(files):
        for number, text in enumerate(Path(path).read_text(errors="replace").splitlines(), 1):
            if text.strip().startswith(directive):
                return f"{path}:{number}"
    return f"{files[0][0]}:{files[0][1]}"


# ---------------------------------------------------------------------------- allow-list
@dataclass(frozen=True)
class AllowEntry:
    """One accepted static risk: a glob over the risk's text, and why it is accepted."""

    risk: str
    reason: str
    where: str = ""


def load_allow(path: Path) -> list[AllowEntry]:
    """The allow-list file: YAML ``allow: [{risk: GLOB, reason: TEXT}, ...]``; a reason is
    required (an accepted risk says why)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        doc = YAML(typ="safe").load(read_text(path, Limits()))
    except (OSError, YAMLError) as err:
        raise ConfigError.single(path, f"cannot read the allow-list: {err}") from None
    entries = doc.get("allow") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ConfigError.single(path, "an allow-list is a mapping with a list 'allow:'")
    out = []
    for i, entry in enumerate(entries):
        field_name = f"allow[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"risk", "reason"}:
            raise ConfigError.single(path, "needs exactly 'risk' and 'reason'", field=field_name)
        risk, reason = entry["risk"], entry["reason"]
        if not isinstance(risk, str) or not risk.strip():
            raise ConfigError.single(path, "risk: a non-empty glob", field=field_name)
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError.single(path, "reason: say why the risk is accepted", field=field_name)
        out.append(AllowEntry(risk, reason.strip(), f"{path}[{i}]"))
    return out


def apply_allow(
    risks: Mapping[str, list[str]], allow: Sequence[AllowEntry]
) -> tuple[dict[str, list[str]], dict[str, list[tuple[str, str]]], list[AllowEntry]]:
    """Split each topology's risks into those still failing and those an entry accepts
    (the first matching entry's reason); and the entries that matched nothing."""
    from fnmatch import fnmatchcase

    kept: dict[str, list[str]] = {}
    allowed: dict[str, list[tuple[str, str]]] = {}
    used: set[int] = set()
    for name, texts in risks.items():
        kept[name], allowed[name] = [], []
        for text in texts:
            hit = next((i for i, e in enumerate(allow) if fnmatchcase(text, e.risk)), None)
            if hit is None:
                kept[name].append(text)
            else:
                used.add(hit)
                allowed[name].append((text, allow[hit].reason))
    return kept, allowed, [e for i, e in enumerate(allow) if i not in used]


def write_baseline(result: GateResult, path: Path) -> None:
    """Write the new summary as the baseline (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, dumps(result.summary))


# ---------------------------------------------------------------------------- reports
def to_junit(result: GateResult) -> str:
    """JUnit XML: one testcase per scenario x topology, a failure per regression."""
    failures = sum(1 for c in result.cases if not c.passed)
    failures += sum(1 for risks in result.static.values() if risks)
    skipped = sum(1 for c in result.cases if c.missing)
    suite = ET.Element(
        "testsuite",
        name=f"virtchaos-gate.{result.experiment}",
        tests=str(len(result.cases) + len(result.static)),
        failures=str(failures),
        skipped=str(skipped),
        errors="0",
        time=f"{sum(result.times.values()) + result.static_time:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (("seed", result.seed), ("replications", result.replications)):
        ET.SubElement(props, "property", name=key, value=str(value))
    for name, path in sorted(result.substituted.items()):
        ET.SubElement(props, "property", name=f"topology.{name}", value=path)
    for case in result.cases:
        tc = ET.SubElement(
            suite,
            "testcase",
            classname=f"{result.experiment}.{case.scenario}",
            name=case.topology,
            time=f"{result.times.get((case.scenario, case.topology), 0.0):.3f}",
        )
        if case.missing:
            ET.SubElement(tc, "skipped", message="no baseline row for this scenario and topology")
        elif case.failures:
            failure = ET.SubElement(tc, "failure", message="; ".join(case.failures))
            failure.text = "\n".join(case.failures)
        lines = [
            f"{m.metric}: {m.old:g} -> {m.new:g} ({m.diff:+g}, 95% CI [{m.ci[0]:g}, {m.ci[1]:g}])"
            for m in case.metrics
        ]
        ET.SubElement(tc, "system-out").text = "\n".join(lines)
    for name, risks in sorted(result.static.items()):
        tc = ET.SubElement(
            suite,
            "testcase",
            classname=f"{result.experiment}.static-diff",
            name=name,
            time=f"{result.static_time:.3f}",
        )
        if risks:
            failure = ET.SubElement(tc, "failure", message="; ".join(risks))
            failure.text = "\n".join(placed(result, r) for r in risks)
        accepted = [f"allowed: {r} ({why})" for r, why in result.allowed.get(name, [])]
        if accepted:
            ET.SubElement(tc, "system-out").text = "\n".join(accepted)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def verdict(result: GateResult) -> str:
    """``PASS``, or ``FAIL (N of M cases[, K static risks])`` as the terminal and the
    Markdown print it (the static diff counts as a case of its own in the JUnit file)."""
    if result.passed:
        return "PASS"
    failed = sum(1 for c in result.cases if not c.passed)
    failed += sum(1 for rs in result.static.values() if rs)
    risks = sum(len(rs) for rs in result.static.values())
    tail = f", {risks} static risks" if risks else ""
    return f"FAIL ({failed} of {len(result.cases) + len(result.static)} cases{tail})"


def to_json(result: GateResult, baseline_written: bool = False) -> dict[str, Any]:
    """The verdict for programs (``gate --format json``): every case, metric and risk."""
    return {
        "experiment": result.experiment,
        "seed": result.seed,
        "replications": result.replications,
        "baseline": str(result.baseline),
        "baseline_written": baseline_written,
        "substituted": result.substituted,
        "passed": result.passed,
        "verdict": verdict(result),
        "notes": result.notes,
        "static": [
            {
                "topology": name,
                "risks": [{"risk": r, "where": result.where.get(r)} for r in risks],
                "allowed": [{"risk": r, "reason": why} for r, why in result.allowed.get(name, [])],
            }
            for name, risks in sorted(result.static.items())
        ],
        "cases": [
            {
                "scenario": c.scenario,
                "topology": c.topology,
                "status": "skip" if c.missing else ("pass" if c.passed else "fail"),
                "failures": c.failures,
                "metrics": [
                    {
                        "metric": m.metric,
                        "baseline": m.old,
                        "new": m.new,
                        "diff": m.diff,
                        "ci95": list(m.ci),
                        "tolerance": m.tolerance,
                        "regressed": m.regressed,
                    }
                    for m in c.metrics
                ],
            }
            for c in result.cases
        ],
    }


def placed(result: GateResult, risk: str) -> str:
    """``file:line: risk`` when the file that sets the risk is known, else the risk."""
    where = result.where.get(risk)
    return f"{where}: {risk}" if where else risk


def github_annotations(result: GateResult, experiment: Path) -> list[str]:
    """GitHub Actions workflow commands (``::error file=F,line=N,title=T::message``): a
    static risk on the unit file (or drop-in) that sets it, when known; a regression or a
    deviated hypothesis on the replacing topology file, else the experiment."""

    def escape(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return escape(text).replace(":", "%3A").replace(",", "%2C")

    out = []
    for name, risks in sorted(result.static.items()):
        for risk in risks:
            where = result.where.get(risk)
            loc = ""
            if where:
                path, line = where.rsplit(":", 1)
                loc = f"file={prop(path)},line={line},"
            title = prop(f"virtchaos gate: static risk in {name}")
            out.append(f"::error {loc}title={title}::{escape(risk)}")
    for case in result.cases:
        for failure in case.failures:
            path = result.substituted.get(case.topology, str(experiment))
            title = prop(f"virtchaos gate: {case.scenario} / {case.topology}")
            out.append(f"::error file={prop(path)},title={title}::{escape(failure)}")
    return out


def to_markdown(result: GateResult) -> str:
    """The verdict as Markdown, for a pull-request comment or a job summary."""
    verdict_text = verdict(result)
    failed = [c for c in result.cases if not c.passed]
    static = [(n, r) for n, rs in sorted(result.static.items()) for r in rs]
    lines = [
        f"### virtchaos gate `{result.experiment}`: {verdict_text}",
        "",
        f"Seed {result.seed}, {result.replications} replications; baseline `{result.baseline}`.",
    ]
    for name, path in sorted(result.substituted.items()):
        lines.append(f"Topology `{name}` replaced by `{path}`.")
    lines += [f"Note: {n}" for n in result.notes]
    lines += [
        "",
        "A metric regresses when the new mean exceeds the baseline mean by more than the "
        "tolerance and the Welch 95% interval of the difference excludes zero.",
        "",
    ]
    if static:
        lines += ["| topology | static risk (from `virtchaos diff`) |", "|---|---|"]
        lines += [f"| {n} | {placed(result, r)} |" for n, r in static]
        lines.append("")
    accepted = [(n, r, why) for n, rs in sorted(result.allowed.items()) for r, why in rs]
    if accepted:
        lines += ["| topology | accepted static risk | reason (allow-list) |", "|---|---|---|"]
        lines += [f"| {n} | {r} | {why} |" for n, r, why in accepted]
        lines.append("")
    if failed:
        lines += ["| scenario | topology | failure |", "|---|---|---|"]
        lines += [f"| {c.scenario} | {c.topology} | {f} |" for c in failed for f in c.failures]
        lines.append("")
    lines += [
        "<details><summary>All metrics</summary>",
        "",
        "| scenario | topology | metric | baseline | new | difference [95% CI] | tolerance | |",
        "|---|---|---|---:|---:|---|---:|---|",
    ]
    for c in result.cases:
        for m in c.metrics:
            mark = "regressed" if m.regressed else ""
            lines.append(
                f"| {c.scenario} | {c.topology} | {m.metric} | {m.old:g} | {m.new:g} | "
                f"{m.diff:+g} [{m.ci[0]:g}, {m.ci[1]:g}] | {m.tolerance:g} | {mark} |"
            )
    lines += ["", "</details>", ""]
    return "\n".join(lines)
