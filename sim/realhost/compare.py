"""``compare``: simulated and real results side by side, with a verdict per row.

Rows: every metric of every (scenario, topology) present in both summaries, and every probe
class (client x procedure: answered / timed out / failed fast fractions, median latency).
A row **agrees** when the difference of the means is within the stated tolerance, or the
two 95% intervals overlap; otherwise it **differs**.  Tolerances (absolute unless said):
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import ResultsError
from sim.realhost.results import sim_probe_rows

TOLERANCES: dict[str, tuple[float, float]] = {
    # metric: (absolute, relative to the larger mean)
    "vms_running": (0.0, 0.0),
    "vms_lost": (0.5, 0.0),
    "vms_unmanageable": (1.0, 0.0),
    "blast_radius": (0.25, 0.0),
    "unmanageable_vm_seconds": (10.0, 0.25),
    "failed_operations": (2.0, 0.25),
    "time_to_recover_s": (5.0, 0.25),
    "api_p50_ms": (5.0, 2.0),
    "api_p99_ms": (20.0, 2.0),
    "api_errors": (2.0, 0.25),
    "answered": (0.15, 0.0),
    "timed_out": (0.15, 0.0),
    "failed_fast": (0.15, 0.0),
    "p50_ms": (5.0, 2.0),
}
DEFAULT_TOLERANCE = (2.0, 0.25)

__doc__ = (__doc__ or "") + "".join(
    f"\n- ``{m}``: {a:g}" + (f" or {r:.0%} of the larger mean" if r else "")
    for m, (a, r) in TOLERANCES.items()
)


@dataclass(frozen=True)
class Row:
    """One compared value: simulated and real means with their 95% intervals (``None``: not
    known), and the tolerance.
    """

    scenario: str
    topology: str
    what: str  # metric name, or "probe CLIENT PROCEDURE FIELD"
    sim: float
    sim_ci: tuple[float, float] | None
    real: float
    real_ci: tuple[float, float] | None
    tolerance: float

    @property
    def agrees(self) -> bool:
        """Whether the means differ by at most the tolerance, or the two intervals overlap."""
        if abs(self.sim - self.real) <= self.tolerance + 1e-9:
            return True
        if self.sim_ci and self.real_ci:
            return self.sim_ci[0] <= self.real_ci[1] and self.real_ci[0] <= self.sim_ci[1]
        return False


@dataclass
class Comparison:
    """A simulated and a real results folder compared: the rows, what only one side has, the
    scenarios refused on the real host, and the host's facts.
    """

    sim_folder: Path
    real_folder: Path
    rows: list[Row]
    only_sim: list[str]
    only_real: list[str]
    refused: dict[str, list[str]]
    host: dict[str, Any]


def tolerance(metric: str, a: float, b: float) -> float:
    """The tolerance for ``metric`` at values ``a`` and ``b``: the larger of its absolute one and
    its relative one times the larger magnitude.
    """
    key = metric.rsplit(" ", 1)[-1]
    base = key.split(".", 1)[0]
    absolute, relative = TOLERANCES.get(base, DEFAULT_TOLERANCE)
    return max(absolute, relative * max(abs(a), abs(b)))


def _load(folder: Path, name: str) -> Any:
    path = folder / name
    if not path.is_file():
        raise ResultsError(f"{path} is missing")
    return json.loads(path.read_text(encoding="utf-8"))


def _metric_rows(
    sim: dict[str, Any], real: dict[str, Any]
) -> tuple[list[Row], list[str], list[str]]:
    s_rows = {(r["scenario"], r["topology"]): r for r in sim["rows"]}
    r_rows = {(r["scenario"], r["topology"]): r for r in real["rows"]}
    rows = []
    for key in sorted(s_rows.keys() & r_rows.keys()):
        sm, rm = s_rows[key]["metrics"], r_rows[key]["metrics"]
        for m in [m for m in sm if m in rm and "." not in m]:
            a, b = sm[m]["mean"], rm[m]["mean"]
            rows.append(
                Row(
                    *key,
                    m,
                    a,
                    tuple(sm[m]["ci95"]),
                    b,
                    tuple(rm[m]["ci95"]),
                    tolerance(m, a, b),
                )
            )
    only_sim = [f"{s} / {t}" for s, t in sorted(s_rows.keys() - r_rows.keys())]
    only_real = [f"{s} / {t}" for s, t in sorted(r_rows.keys() - s_rows.keys())]
    return rows, only_sim, only_real


def _probe_rows(sim: list[dict[str, Any]], real: list[dict[str, Any]]) -> list[Row]:
    def key(r: dict[str, Any]) -> tuple[str, str, str, str]:
        return r["scenario"], r["topology"], r["client"], r["procedure"]

    s_rows, r_rows = {key(r): r for r in sim}, {key(r): r for r in real}
    out = []
    for k in sorted(s_rows.keys() & r_rows.keys()):
        for f in ("answered", "timed_out", "failed_fast", "p50_ms"):
            a, b = s_rows[k][f], r_rows[k][f]
            what = f"probe {k[2]} {k[3]} {f}"
            out.append(Row(k[0], k[1], what, a, None, b, None, tolerance(f, a, b)))
    return out


def compare(sim_folder: Path, real_folder: Path) -> Comparison:
    """Compare the simulated results in ``sim_folder`` with the real ones in ``real_folder``;
    ResultsError when either is the wrong kind of folder or lacks a file.
    """
    real_manifest = _load(real_folder, "manifest.json")
    if real_manifest.get("backend") != "real":
        raise ResultsError(f"{real_folder} is not a real run (manifest backend is not 'real')")
    if _load(sim_folder, "manifest.json").get("backend", "sim") == "real":
        raise ResultsError(f"{sim_folder} is a real run; give a simulated results folder first")
    rows, only_sim, only_real = _metric_rows(
        _load(sim_folder, "summary.json"), _load(real_folder, "summary.json")
    )
    sim_probes = sim_probe_rows(sim_folder)
    rows += _probe_rows(sim_probes, _load(real_folder, "probes.json")["rows"])
    rows.sort(key=lambda r: (r.scenario, r.topology, r.what.startswith("probe"), r.what))
    return Comparison(
        sim_folder,
        real_folder,
        rows,
        only_sim,
        only_real,
        real_manifest.get("refused", {}),
        real_manifest.get("host", {}),
    )


def _fmt(x: float, ci: tuple[float, float] | None) -> str:
    return f"{x:.4g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci and ci[0] != ci[1] else "")


def to_json(c: Comparison) -> str:
    """The rows as ``{"rows": [...]}`` (scenario, topology, metric, sim, real, tolerance,
    verdict), for the report's "How far to trust this" table."""
    rows = [
        {
            "scenario": r.scenario,
            "topology": r.topology,
            "metric": r.what,
            "sim": round(r.sim, 4),
            "real": round(r.real, 4),
            "tolerance": round(r.tolerance, 4),
            "verdict": "agree" if r.agrees else "differ",
        }
        for r in c.rows
    ]
    return json.dumps({"rows": rows}, indent=1, allow_nan=False) + "\n"


def to_markdown(c: Comparison) -> str:
    """The comparison as a Markdown report: a table with a verdict per row, the counts, and what
    was refused or is on one side only.
    """
    h = c.host
    lines = [
        f"# Simulated versus real: {c.sim_folder} vs {c.real_folder}",
        "",
        f"Real host: {h.get('host', '?')}, libvirt {h.get('libvirt', '?')}, "
        f"QEMU {h.get('hypervisor', '?')}, {h.get('date', '?')}.  A row agrees when "
        "|sim - real| is within the tolerance or the 95% intervals overlap.",
        "",
        "| scenario | topology | metric | sim | real | tolerance | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in c.rows:
        verdict = "agree" if r.agrees else "**DIFFER**"
        lines.append(
            f"| {r.scenario} | {r.topology} | {r.what} | {_fmt(r.sim, r.sim_ci)} | "
            f"{_fmt(r.real, r.real_ci)} | {r.tolerance:.3g} | {verdict} |"
        )
    n_diff = sum(not r.agrees for r in c.rows)
    lines += ["", f"{len(c.rows)} rows, {len(c.rows) - n_diff} agree, {n_diff} differ."]
    for name, why in sorted(c.refused.items()):
        lines.append(f"- refused on the real host: {name}: {'; '.join(why)}")
    for s in c.only_sim:
        lines.append(f"- simulated only (no real run): {s}")
    for s in c.only_real:
        lines.append(f"- real only (no simulated run): {s}")
    return "\n".join(lines) + "\n"
