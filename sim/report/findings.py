"""Findings: plain statements generated from the summary's numbers, never written by hand.

Every statement names the scenario, both topologies with mean and 95% interval, and the
paired difference (b - a) with its interval and whether it excludes 0.  For every metric
used here lower is better, so a difference interval entirely below 0 means topology b did
better.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sim.metrics import HEADLINE
from sim.report.fmt import count, estimate, num
from sim.report.markdown import md_table
from sim.report.results import Results, Stat

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


class Verdict(enum.StrEnum):
    """Where the paired difference's 95% interval lies."""

    LOWER = "lower"
    HIGHER = "higher"
    SAME = "same"
    UNKNOWN = "unknown"


def verdict(cmp: Stat, n: int) -> Verdict:
    """LOWER/HIGHER when the interval excludes 0; UNKNOWN with fewer than 2 replications."""
    if n < 2:
        return Verdict.UNKNOWN
    lo, hi = cmp["ci95"]
    if hi < 0:
        return Verdict.LOWER
    if lo > 0:
        return Verdict.HIGHER
    return Verdict.SAME


SIGNIFICANCE = {
    Verdict.LOWER: "significant at 95%",
    Verdict.HIGHER: "significant at 95%",
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
        return verdict(self.diff, int(self.stat_a["n"]))

    @property
    def all_zero(self) -> bool:
        """Zero in every replication of both topologies (the metrics are non-negative)."""
        return all(s["mean"] == 0 and s["ci95"] == [0, 0] for s in (self.stat_a, self.stat_b))

    def sentence(self) -> str:
        what = LABEL.get(self.metric, f"`{self.metric}`")
        return (
            f"In scenario `{self.scenario}`, {what} is {estimate(self.stat_a)} in topology "
            f"{self.a} and {estimate(self.stat_b)} in topology {self.b}; the paired difference "
            f"({self.b} − {self.a}) is {estimate(self.diff, 'diff_mean')} "
            f"({SIGNIFICANCE[self.verdict]})."
        )

    def clause(self) -> str:
        return f"`{self.metric}` {estimate(self.diff, 'diff_mean')}"


def compared(res: Results, scenario: str, metric: str, a: str, b: str) -> Compared | None:
    sa, sb = res.stat(scenario, a, metric), res.stat(scenario, b, metric)
    diff = res.comparison(scenario, metric, a, b)
    if sa is None or sb is None or diff is None:
        return None
    return Compared(scenario, metric, a, b, sa, sb, diff)


def _others(res: Results, c: Compared) -> list[Compared]:
    """The other headline metrics of the scenario whose difference excludes 0."""
    return [
        o
        for m in HEADLINE[1:]
        if (o := compared(res, c.scenario, m, c.a, c.b)) is not None
        and o.verdict in (Verdict.LOWER, Verdict.HIGHER)
    ]


def _bullet(res: Results, c: Compared) -> str:
    others = _others(res, c)
    text = f"- {c.sentence()}"
    if others:
        text += f" Other significant differences ({c.b} − {c.a}): "
        text += "; ".join(o.clause() for o in others) + "."
    return text


def _same_table(res: Results, items: Sequence[Compared]) -> list[str]:
    a, b = items[0].a, items[0].b
    header = ["scenario", f"{LABEL[PRIMARY]} in {a}", f"in {b}", f"{b} − {a}"]
    header.append(f"other significant differences ({b} − {a})")
    rows = [
        [f"`{c.scenario}`", estimate(c.stat_a), estimate(c.stat_b),
         estimate(c.diff, "diff_mean"), "; ".join(o.clause() for o in _others(res, c)) or "–"]
        for c in items
    ]  # fmt: skip
    return md_table(header, rows)


def _names(items: Iterable[Compared]) -> str:
    return ", ".join(f"`{c.scenario}`" for c in items)


def _overview(a: str, b: str, groups: dict[Verdict, list[Compared]], total: int) -> str:
    return (
        f"Across {count(total, 'scenario')}, {LABEL[PRIMARY]} in {b} is significantly lower "
        f"than in {a} in {len(groups[Verdict.LOWER])}, not significantly different in "
        f"{len(groups[Verdict.SAME])}, and significantly higher in {len(groups[Verdict.HIGHER])}"
        + (
            f" ({len(groups[Verdict.UNKNOWN])} without an interval: one replication)."
            if groups[Verdict.UNKNOWN]
            else "."
        )
    )


def _pair_findings(res: Results, scenarios: Sequence[str], a: str, b: str) -> list[str]:
    items = [c for s in scenarios if (c := compared(res, s, PRIMARY, a, b)) is not None]
    groups: dict[Verdict, list[Compared]] = {v: [] for v in Verdict}
    for c in items:
        groups[c.verdict].append(c)
    better = groups[Verdict.LOWER]
    worse = groups[Verdict.HIGHER]
    same = [c for c in groups[Verdict.SAME] + groups[Verdict.UNKNOWN] if not c.all_zero]
    untouched = [c for c in groups[Verdict.SAME] + groups[Verdict.UNKNOWN] if c.all_zero]
    out = [_overview(a, b, groups, len(items)), ""]
    out += [
        f"### Where {b} is better than {a} ({len(better)} of {count(len(items), 'scenario')})",
        "",
    ]
    out += [_bullet(res, c) for c in better] or ["- none"]
    n_not = len(worse) + len(same) + len(untouched)
    out += ["", f"### Where {b} does not help or is worse than {a} ({n_not} of {len(items)})", ""]
    if worse:
        out += [f"Worse in {b} (difference interval above 0):", ""]
        out += [_bullet(res, c) for c in worse] + [""]
    if same:
        out += [f"No significant difference in {LABEL[PRIMARY]} (the paired difference's 95% "
                "interval includes 0; mean [95% CI]):", ""]  # fmt: skip
        out += [*_same_table(res, same), ""]
    if untouched:
        out += [
            f"In {count(len(untouched), 'scenario')} no guest was lost or unmanageable in either "
            f"topology (blast radius 0 in every replication): {_names(untouched)}.",
            "",
        ]
    if not n_not:
        out += ["- none", ""]
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
        out.append(
            f"- `{m}` ({b} − {a}): significantly lower in {n[Verdict.LOWER]} of "
            f"{count(len(items), 'scenario')}, not significantly different in {n[Verdict.SAME]}, "
            f"significantly higher in {n[Verdict.HIGHER]}; the mean difference ranges "
            f"from {num(diffs[0])} to {num(diffs[-1])}."
        )
    return [*out, ""]


def findings(res: Results) -> list[str]:
    """The Markdown lines of the Findings section (without its heading)."""
    lines = [
        "Differences are paired by replication (common random numbers) and given as b − a "
        "with their 95% t-interval; for every guest-impact metric lower is better.",
        "",
    ]
    pairs = res.pairs
    for a, b in pairs:
        if len(pairs) > 1:
            lines += [f"### {b} compared with {a}", ""]
        lines += _pair_findings(res, res.scenarios, a, b)
        lines += _boot_findings(res, res.scenarios, a, b)
    return lines
