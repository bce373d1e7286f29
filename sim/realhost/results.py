"""Results of real runs (the same contract as simulated ones) and probe classes.

A real results folder holds ``runs.jsonl`` and ``summary.json`` in the engine's format (same
metric names, rows per scenario and topology), ``manifest.json`` with ``backend: real``,
``calls.jsonl`` (every call observed: start, latency, ok, error) and ``probes.json``: per
scenario and calling client, how many calls were answered, timed out or failed fast, and the
answered calls' latency.  :func:`sim_probe_rows` computes the same table for a simulated
results folder by re-running its replications (the engine is deterministic).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sim.experiment.metrics import _percentile
from sim.experiment.stats import summarize
from sim.schema.experiment import METRICS

INSTANCE = re.compile(r"-\d+$")


def summary_of(name: str, records: list[dict[str, Any]], seed: int, reps: int) -> dict[str, Any]:
    """Rows as the engine writes them (no paired comparisons: one topology per real run)."""
    keys = sorted({(r["scenario"], r["topology"]) for r in records})
    rows = []
    for sc, topo in keys:
        recs = sorted(
            (r for r in records if (r["scenario"], r["topology"]) == (sc, topo)),
            key=lambda r: r["replication"],
        )
        names = sorted({k for r in recs for k in r["metrics"]})
        ordered = [m for m in METRICS if m in names] + [m for m in names if m not in METRICS]
        rows.append(
            {
                "scenario": sc,
                "topology": topo,
                "metrics": {
                    m: summarize([r["metrics"].get(m, 0.0) for r in recs]) for m in ordered
                },
            }
        )
    return {
        "experiment": name,
        "seed": seed,
        "replications": reps,
        "rows": rows,
        "comparisons": [],
        "hypotheses": [],
    }


def probe_rows(
    calls: Iterable[tuple[str, str, str, str, float, bool, str]],
) -> list[dict[str, Any]]:
    """``calls``: (scenario, topology, client, procedure, latency_s, ok, error) of the calls
    that started in the observation window; one row per (scenario, topology, client class,
    procedure)."""
    groups: dict[tuple[str, str, str, str], list[tuple[float, bool, str]]] = {}
    for sc, topo, client, proc, lat, ok, err in calls:
        key = (sc, topo, INSTANCE.sub("", client), proc)
        groups.setdefault(key, []).append((lat, ok, err))
    rows = []
    for (sc, topo, client, proc), xs in sorted(groups.items()):
        n = len(xs)
        answered = [lat for lat, ok, _ in xs if ok]
        timed_out = sum(1 for _, ok, err in xs if not ok and err == "timeout")
        rows.append(
            {
                "scenario": sc,
                "topology": topo,
                "client": client,
                "procedure": proc,
                "n": n,
                "answered": round(len(answered) / n, 4),
                "timed_out": round(timed_out / n, 4),
                "failed_fast": round((n - len(answered) - timed_out) / n, 4),
                "p50_ms": round(1000 * _percentile(answered, 0.5), 3),
                "p99_ms": round(1000 * _percentile(answered, 0.99), 3),
            }
        )
    return rows


def sim_probe_rows(folder: Path) -> list[dict[str, Any]]:
    """The probe table of a simulated results folder, from re-running its replications."""
    from sim.experiment.replay import experiment_of, load_manifest
    from sim.experiment.runner import run_one, tasks_of

    manifest = load_manifest(folder)
    model = experiment_of(manifest)
    seed, reps = int(manifest["seed"]), int(manifest["replications"])
    exp = model.doc
    rows: list[tuple[str, str, str, str, float, bool, str]] = []
    for task in tasks_of(model, reps):
        _, sim = run_one(model, task, seed)
        rows += [
            (
                task.scenario,
                task.topology,
                c.client,
                c.procedure,
                c.t_end - c.t_start,
                c.ok,
                c.error,
            )
            for c in sim.collector.calls
            if exp.warmup_s <= c.t_start <= exp.duration_s
        ]
    return probe_rows(rows)


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
