"""Findings: plain statements generated from the summary's numbers, never written by hand.

A difference (b - a, paired by replication) *counts* by the gate's rule
(:func:`sim.experiment.significance.direction`): its 95% interval excludes 0 and it exceeds the
metric's tolerance.  For every metric used here lower is better, so a difference that counts
as lower means topology b did better.  Scenarios are grouped by *mechanism*: a fault kind of
the matrix (one column), a sweep, or the faults of a plain scenario.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sim.experiment.metrics import HEADLINE
from sim.experiment.significance import direction, significant_only, tolerance
from sim.report.fmt import count, estimate, fixed, replications, value
from sim.report.markdown import md_table
from sim.report.results import Results, Stat
from sim.report.structure import matrix_layout, sweep_layouts

BOOT = (
    "daemon_init_cpu_ms",
    "time_to_ready_s",
    "time_to_autostart_s",
    "time_to_reconnect_s",
    "autostart_done",
)
BOOT_PREFIX = "daemons_running.t"
PRIMARY = "blast_radius"
LABEL = {PRIMARY: "the blast radius"}
SEVERE = 0.5
"""A blast radius at or above this in both topologies is reported as severe in both."""


class Verdict(enum.StrEnum):
    """Where the paired difference lies, by the gate's rule."""

    LOWER = "lower"
    HIGHER = "higher"
    SMALL = "small"
    """The interval excludes 0 but the difference is within the metric's tolerance."""
    SAME = "same"
    UNKNOWN = "unknown"


COUNTS = (Verdict.LOWER, Verdict.HIGHER)


def verdict(cmp: Stat, n: int, metric: str = "") -> Verdict:
    """LOWER/HIGHER when the difference counts (:func:`sim.experiment.significance.direction`),
    SMALL when only its interval excludes 0, UNKNOWN with fewer than 2 replications."""
    if n < 2:
        return Verdict.UNKNOWN
    lo, hi = (float(x) for x in cmp["ci95"])
    d = float(cmp["diff_mean"])
    way = direction(d, lo, hi, tolerance(metric))
    if way:
        return Verdict.LOWER if way < 0 else Verdict.HIGHER
    return Verdict.SMALL if significant_only(lo, hi) else Verdict.SAME


def rule(metric: str) -> str:
    """The rule in words, for legends."""
    tol = tolerance(metric)
    size = f" and is larger than {value(tol, metric)}" if tol else ""
    return f"its 95% interval excludes 0{size}"


SIGNIFICANCE = {
    Verdict.LOWER: "counts",
    Verdict.HIGHER: "counts",
    Verdict.SMALL: "significant at 95% but within the tolerance",
    Verdict.SAME: "not significant at 95%",
    Verdict.UNKNOWN: "no interval: a single replication",
}


def boot_metrics(res: Results) -> list[str]:
    """Boot metrics present in the summary, only for experiments that measure boot."""
    snaps = [m for m in res.metrics if m.startswith(BOOT_PREFIX)]
    if not snaps and not res.has_metric("time_to_autostart_s"):
        return []
    return [m for m in BOOT if res.has_metric(m)] + snaps


@dataclass(frozen=True)
class Compared:
    """One metric of one scenario in topologies a and b, and their paired difference."""

    scenario: str
    metric: str
    a: str
    b: str
    stat_a: Stat
    stat_b: Stat
    diff: Stat

    @property
    def verdict(self) -> Verdict:
        """Whether b is lower, higher or not different from a, by the gate's rule."""
        return verdict(self.diff, int(self.stat_a["n"]), self.metric)

    @property
    def mean_a(self) -> float:
        """The metric's mean in topology a."""
        return float(self.stat_a["mean"])

    @property
    def mean_b(self) -> float:
        """The metric's mean in topology b."""
        return float(self.stat_b["mean"])

    @property
    def all_zero(self) -> bool:
        """Zero in every replication of both topologies (the metrics are non-negative)."""
        return all(s["mean"] == 0 and s["ci95"] == [0, 0] for s in (self.stat_a, self.stat_b))

    @property
    def outcome(self) -> str:
        """``lower``, ``higher``, or for a difference that does not count: ``severe``
        (both at least :data:`SEVERE`), ``harmless`` (both within the tolerance), ``partial``."""
        if self.verdict in COUNTS:
            return str(self.verdict)
        tol = tolerance(self.metric)
        if min(self.mean_a, self.mean_b) >= SEVERE:
            return "severe"
        if max(self.mean_a, self.mean_b) <= tol:
            return "harmless"
        return "partial"

    def clause(self) -> str:
        """The metric and its difference with its interval, as a clause of a sentence."""
        return f"`{self.metric}` {estimate(self.diff, self.metric, 'diff_mean')}"


def compared(res: Results, scenario: str, metric: str, a: str, b: str) -> Compared | None:
    """The comparison of ``metric`` in ``scenario`` between topologies ``a`` and ``b``; ``None``
    when the summary lacks either value or their difference.
    """
    sa, sb = res.stat(scenario, a, metric), res.stat(scenario, b, metric)
    diff = res.comparison(scenario, metric, a, b)
    if sa is None or sb is None or diff is None:
        return None
    return Compared(scenario, metric, a, b, sa, sb, diff)


def others(res: Results, c: Compared) -> list[Compared]:
    """The other headline metrics of the scenario whose difference counts."""
    return [
        o
        for m in HEADLINE[1:]
        if (o := compared(res, c.scenario, m, c.a, c.b)) is not None and o.verdict in COUNTS
    ]


# ------------------------------------------------------------------------------ mechanisms
@dataclass(frozen=True)
class Place:
    """A scenario's mechanism (what kind of fault) and where it struck."""

    mechanism: str
    where: str
    joiner: str
    """How a sentence names the places of one mechanism: ``of`` (targets), ``at`` (points)."""


def places(res: Results) -> dict[str, Place]:
    """Every scenario's mechanism: its matrix column, its sweep, or its own faults."""
    out: dict[str, Place] = {}
    layout = matrix_layout(res)
    if layout is not None:
        for (target, fault), scenario in layout.cells.items():
            out[scenario] = Place(fault, target, "of")
    for sweep in sweep_layouts(res):
        for p in sweep.points:
            where = " ".join(f"{a}={v}" for a, v in zip(sweep.axes, p.labels, strict=True))
            out[p.scenario] = Place(f"sweep {sweep.name}", where, "at")
    for s in res.scenarios:
        out.setdefault(s, Place(_fault_kinds(res, s), s, "in"))
    return out


def _fault_kinds(res: Results, scenario: str) -> str:
    model, exp = res.model, res.experiment
    found = None
    if model is not None:
        found = next((s for s in model.scenarios if s.name == scenario), None)
    elif exp is not None:
        found = next((s for s in exp.scenarios if s.name == scenario), None)
    if found is None or not found.faults:
        return "no fault"
    kinds = [f"{f.kind} ({f.scope})" if f.scope else f.kind for f in found.faults]
    return " + ".join(dict.fromkeys(kinds))


@dataclass(frozen=True)
class Group:
    """Scenarios of one mechanism with the same outcome."""

    mechanism: str
    joiner: str
    outcome: str
    items: tuple[Compared, ...]
    wheres: tuple[str, ...]

    @property
    def gap(self) -> float:
        """The largest absolute mean difference among the group's scenarios."""
        return max(abs(float(c.diff["diff_mean"])) for c in self.items)

    def levels(self, metric: str) -> str:
        """``1.00 → 0.00`` (ranges when the scenarios differ: ``0.99–1.00 → 0.00``)."""
        return f"{span([c.mean_a for c in self.items], metric)} → " + span(
            [c.mean_b for c in self.items], metric
        )

    def phrase(self, metric: str, whole: bool) -> str:
        """``a crash-loop of network, nodedev or storage (1.00 → 0.00)``."""
        if whole:
            what = f"every {self.mechanism}"
        else:
            what = f"{article(self.mechanism)} {self.joiner} {points(self.wheres, either)}"
        return f"{what} ({self.levels(metric)})"


def span(values: Sequence[float], metric: str) -> str:
    """The range of ``values`` at the metric's precision (one number when both ends print the
    same).
    """
    lo, hi = min(values), max(values)
    a, b = value(lo, metric), value(hi, metric)
    return a if a == b else f"{a}–{b}"


def points(wheres: Sequence[str], join: Callable[[Sequence[str]], str]) -> str:
    """Sweep points ``n=17 uri=own``, ``n=18 uri=own`` as ``n=17 or 18 with uri=own`` (one
    axis varying); anything else joined as it is."""
    split = [dict(w.split("=", 1) for w in p.split()) for p in wheres if "=" in p]
    if len(split) != len(wheres) or len(wheres) < 2 or len({tuple(d) for d in split}) != 1:
        return join(wheres)
    axes = list(split[0])
    varying = [a for a in axes if len({d[a] for d in split}) > 1]
    if len(varying) != 1:
        return join(wheres)
    (axis,) = varying
    fixed_ = " ".join(f"{a}={split[0][a]}" for a in axes if a != axis)
    values = list(dict.fromkeys(d[axis] for d in split))
    return f"{axis}={join(values)}" + (f" with {fixed_}" if fixed_ else "")


def article(mechanism: str) -> str:
    """``a crash-loop``; sweeps and fault lists as they are."""
    if mechanism.startswith("sweep ") or " " in mechanism:
        return mechanism
    return ("an " if mechanism[:1] in "aeiou" else "a ") + mechanism


def both(names: Sequence[str]) -> str:
    """``a, b and c``."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


def either(names: Sequence[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" or {names[-1]}"


def groups(res: Results, a: str, b: str, metric: str = PRIMARY) -> list[Group]:
    """Scenarios grouped by (mechanism, outcome), mechanisms in experiment order."""
    where = places(res)
    keyed: dict[tuple[str, str], list[Compared]] = {}
    for s in res.scenarios:
        c = compared(res, s, metric, a, b)
        if c is not None:
            keyed.setdefault((where[s].mechanism, c.outcome), []).append(c)
    out = []
    for (mech, outcome), items in keyed.items():
        joiner = where[items[0].scenario].joiner
        wheres = tuple(where[c.scenario].where for c in items)
        out.append(Group(mech, joiner, outcome, tuple(items), wheres))
    return out


def _whole(res: Results, g: Group) -> bool:
    """Whether ``g`` holds every scenario of its mechanism (a matrix column or a sweep)."""
    if g.joiner == "in":
        return False
    where = places(res)
    return len(g.items) == sum(p.mechanism == g.mechanism for p in where.values()) > 1


def _clauses(res: Results, gs: Iterable[Group], metric: str) -> str:
    ordered = sorted(gs, key=lambda g: -g.gap)
    return "; ".join(g.phrase(metric, _whole(res, g)) for g in ordered)


# ------------------------------------------------------------------------------ summary
def summary_sentences(res: Results, metric: str = PRIMARY) -> list[str]:
    """3-5 sentences that answer the question with numbers, generated from the summary."""
    if not res.pairs:
        return [f"Only one topology was run: {', '.join(res.topologies)}; nothing to compare."]
    a, b = res.pairs[0]
    gs = groups(res, a, b, metric)
    by: dict[str, list[Group]] = {}
    for g in gs:
        by.setdefault(g.outcome, []).append(g)
    n = {k: sum(len(g.items) for g in v) for k, v in by.items()}
    total = sum(n.values())
    what = LABEL.get(metric, f"`{metric}`")
    out = [
        f"Across {count(total, 'scenario')}, {what} is lower in {b} than in {a} in "
        f"{n.get('lower', 0)}, higher in {n.get('higher', 0)} and not different in "
        f"{total - n.get('lower', 0) - n.get('higher', 0)} (a difference counts when "
        f"{rule(metric)}; values are means over {replications(res.summary)} replications, "
        f"{a} → {b})."
    ]
    if by.get("lower"):
        out.append(f"{b.capitalize()} contains " + _clauses(res, by["lower"], metric) + ".")
    if by.get("higher"):
        out.append(f"{b.capitalize()} is worse for " + _clauses(res, by["higher"], metric) + ".")
    else:
        out.append(f"In no scenario is {what} higher in {b}.")
    bad = by.get("severe", []) + by.get("partial", [])
    if bad:
        out.append("Neither topology contains " + _clauses(res, bad, metric) + ".")
    if by.get("harmless"):
        out.append(
            f"{count(n['harmless'], 'scenario').capitalize()} "
            f"{'stays' if n['harmless'] == 1 else 'stay'} within the tolerance in both: "
            + _harmless(res, by["harmless"], metric)
            + "."
        )
    return out[:5]


def _harmless(res: Results, gs: Sequence[Group], metric: str) -> str:
    whole = [g for g in gs if _whole(res, g)]
    rest = [g for g in gs if not _whole(res, g)]
    parts = [f"every {g.mechanism}" for g in whole]
    names = [f"{article(g.mechanism)} {g.joiner} {points(g.wheres, either)}" for g in rest]
    if len(names) > 3:
        parts.append(f"{len(names)} other groups")
    else:
        parts += names
    return both(parts)


# ------------------------------------------------------------------------------ findings
def _group_table(res: Results, mech: str, items: Sequence[Compared], joiner: str) -> list[str]:
    a, b, metric = items[0].a, items[0].b, items[0].metric
    where = places(res)
    head = {"of": "target", "at": "point", "in": "scenario"}[joiner]
    header = [head, f"in {a}", f"in {b}", f"{b} − {a}", "outcome", "other differences that count"]
    rows = [
        [where[c.scenario].where, estimate(c.stat_a, metric), estimate(c.stat_b, metric),
         estimate(c.diff, metric, "diff_mean"), OUTCOME[c.outcome],
         "; ".join(o.clause() for o in others(res, c)) or "–"]
        for c in items
    ]  # fmt: skip
    return md_table(header, rows)


OUTCOME = {
    "lower": "lower",
    "higher": "HIGHER",
    "severe": "severe in both",
    "partial": "no difference",
    "harmless": "harmless in both",
}


def _mechanism_findings(res: Results, a: str, b: str) -> list[str]:
    gs = groups(res, a, b)
    mechs = list(dict.fromkeys(g.mechanism for g in gs))
    out: list[str] = []
    for mech in mechs:
        mine = [g for g in gs if g.mechanism == mech]
        items = [c for s in res.scenarios for g in mine for c in g.items if c.scenario == s]
        parts = [
            f"{OUTCOME[g.outcome]} for {points(g.wheres, both)} ({g.levels(PRIMARY)})"
            for g in sorted(mine, key=lambda g: -g.gap)
        ]
        out += [f"### {mech}", "", f"{LABEL[PRIMARY].capitalize()} ({a} → {b}): "
                + "; ".join(parts) + ".", ""]  # fmt: skip
        out += [*_group_table(res, mech, items, mine[0].joiner), ""]
    return out


def all_zero(res: Results, scenarios: Sequence[str], metric: str) -> bool:
    """Whether ``metric`` is 0 in every run of these scenarios in every topology."""
    return all(
        (s := res.stat(sc, t, metric)) is None or (s["mean"] == 0 and s["ci95"] == [0, 0])
        for sc in scenarios
        for t in res.topologies
    )


def _boot_findings(res: Results, scenarios: Sequence[str], a: str, b: str) -> list[str]:
    """Per boot metric: in how many scenarios b is lower, the same, higher; the range."""
    metrics = boot_metrics(res)
    if not metrics:
        return []
    out = ["### Boot", ""]
    for m in metrics:
        items = [c for s in scenarios if (c := compared(res, s, m, a, b)) is not None]
        if not items:
            continue
        n = {v: sum(c.verdict is v for c in items) for v in Verdict}
        diffs = sorted(float(c.diff["diff_mean"]) for c in items)
        places_ = decimals_of(m, diffs)
        out.append(
            f"- `{m}` ({b} − {a}): lower in {n[Verdict.LOWER]} of "
            f"{count(len(items), 'scenario')}, not different in "
            f"{len(items) - n[Verdict.LOWER] - n[Verdict.HIGHER]}, higher in "
            f"{n[Verdict.HIGHER]}; the mean difference ranges from "
            f"{fixed(diffs[0], places_)} to {fixed(diffs[-1], places_)}."
        )
    return [*out, ""]


def decimals_of(metric: str, values: Sequence[float]) -> int:
    """The decimals that show ``values`` of ``metric`` apart (:func:`sim.report.fmt.decimals`)."""
    from sim.report.fmt import decimals

    return decimals(metric, *values)


def findings(res: Results) -> list[str]:
    """The Markdown lines of the Findings section (without its heading)."""
    lines = [
        "Differences are paired by replication (common random numbers) and given as b − a "
        f"with their 95% t-interval; a difference counts when {rule(PRIMARY)} (the gate's "
        "rule and tolerance). Intervals of the blast radius in one topology are Wilson "
        "score intervals (inside [0, 1]); counts never go below 0. For every guest-impact "
        "metric lower is better. Scenarios are grouped by mechanism.",
        "",
    ]
    pairs = res.pairs
    for a, b in pairs:
        if len(pairs) > 1:
            lines += [f"### {b} compared with {a}", ""]
        lines += _mechanism_findings(res, a, b)
        lines += _boot_findings(res, res.scenarios, a, b)
    return lines
