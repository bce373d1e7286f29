"""Running an experiment: replications x scenarios x topologies, in parallel, to a results
folder (DESIGN 5).

``runs.jsonl`` is streamed (one line per finished run); ``summary.json`` is computed from the
runs sorted by key, so it is byte-identical whatever the number of processes or the order in
which runs finish.  An interrupted run resumes from ``runs.jsonl``.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim import __version__
from sim.engine.simulation import Simulation
from sim.errors import ResultsError
from sim.metrics import Window, compute
from sim.model import ExperimentModel, load_experiment, substitute_topologies
from sim.schema.experiment import METRICS
from sim.stats import paired, summarize

Key = tuple[str, str, int]


@dataclass(frozen=True)
class Task:
    scenario: str
    topology: str
    replication: int

    @property
    def key(self) -> Key:
        return (self.scenario, self.topology, self.replication)


def run_one(
    model: ExperimentModel,
    task: Task,
    seed: int,
    keep_trace: bool = False,
    sample_every_s: float | None = None,
) -> tuple[dict[str, Any], Simulation]:
    """One replication of one scenario in one topology."""
    exp = model.doc
    system, workload = model.resolve(task.scenario, task.topology)
    scenario = model.scenario(task.scenario)
    sim = Simulation(
        system,
        workload,
        scenario,
        seed=seed,
        replication=task.replication,
        start=exp.start,
        keep_trace=keep_trace,
        sample_every_s=sample_every_s,
    )
    window = Window.of(scenario, exp.warmup_s, exp.duration_s)
    collector = sim.run(exp.duration_s, snapshot_at=window.fault_at, snapshots=exp.snapshots_s)
    metrics = compute(collector, sim.running_at_snapshot, window)
    metrics.update(sim.boot_metrics())
    record = {
        "scenario": task.scenario,
        "topology": task.topology,
        "replication": task.replication,
        "seed": seed,
        "metrics": {k: round(v, 6) + 0.0 for k, v in sorted(metrics.items())},
        "lost": {g: reason for g, (_, reason) in sorted(collector.lost.items())},
    }
    return record, sim


# ---------------------------------------------------------------------------- workers
_WORKER: dict[str, Any] = {}


def _init_worker(
    path: str, topologies: dict[str, str] | None = None, calibration: str | None = None
) -> None:
    model = load_experiment(path, calibration)
    _WORKER["model"] = substitute_topologies(model, topologies) if topologies else model


def _work(task: Task, seed: int) -> dict[str, Any]:
    record, _ = run_one(_WORKER["model"], task, seed)
    return record


def tasks_of(model: ExperimentModel, replications: int) -> list[Task]:
    return [
        Task(sc.name, system.name, r)
        for sc in model.scenarios
        for system in model.systems
        for r in range(replications)
    ]


def execute(
    path: str | Path,
    model: ExperimentModel,
    tasks: list[Task],
    seed: int,
    jobs: int,
    topologies: Mapping[str, str | Path] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one record per task as it finishes (in-process when ``jobs`` is 1).

    ``topologies`` are the substitutions already applied to ``model``
    (:func:`sim.model.substitute_topologies`); worker processes apply them again.
    """
    if jobs <= 1:
        for task in tasks:
            yield run_one(model, task, seed)[0]
        return
    with cf.ProcessPoolExecutor(
        max_workers=jobs,
        initializer=_init_worker,
        initargs=(
            str(path),
            {k: str(v) for k, v in (topologies or {}).items()},
            None if model.calibration is None else str(model.calibration),
        ),
    ) as pool:
        futures = [pool.submit(_work, task, seed) for task in tasks]
        try:
            for fut in cf.as_completed(futures):
                yield fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


# ---------------------------------------------------------------------------- summary
def summarize_runs(
    model: ExperimentModel, records: list[dict[str, Any]], seed: int, replications: int
) -> dict[str, Any]:
    by_key = {(r["scenario"], r["topology"], r["replication"]): r for r in records}
    names = sorted({k for r in records for k in r["metrics"]})
    ordered = [m for m in METRICS if m in names] + [m for m in names if m not in METRICS]
    rows, comparisons = [], []
    topologies = [s.name for s in model.systems]
    for sc in model.scenarios:
        series: dict[str, dict[str, list[float]]] = {}
        for topo in topologies:
            recs = [by_key[(sc.name, topo, r)] for r in range(replications)]
            series[topo] = {m: [rec["metrics"].get(m, 0.0) for rec in recs] for m in ordered}
            rows.append(
                {
                    "scenario": sc.name,
                    "topology": topo,
                    "metrics": {m: summarize(series[topo][m]) for m in ordered},
                }
            )
        for i, a in enumerate(topologies):
            for b in topologies[i + 1 :]:
                for m in ordered:
                    comparisons.append(
                        {"scenario": sc.name, "metric": m, "a": a, "b": b}
                        | paired(series[a][m], series[b][m])
                    )
    return {
        "experiment": model.doc.name,
        "seed": seed,
        "replications": replications,
        "rows": rows,
        "comparisons": comparisons,
    }


def hypotheses(model: ExperimentModel, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Evaluate the steady-state hypotheses on the means; each result says held or not."""
    out = []
    for h in model.doc.hypotheses:
        for row in summary["rows"]:
            if h.topology not in (None, row["topology"]) or h.scenario not in (
                None,
                row["scenario"],
            ):
                continue
            mean = row["metrics"].get(h.metric, {"mean": 0.0})["mean"]
            held = (h.max is None or mean <= h.max) and (h.min is None or mean >= h.min)
            out.append(
                {
                    "hypothesis": h.name,
                    "scenario": row["scenario"],
                    "topology": row["topology"],
                    "metric": h.metric,
                    "mean": mean,
                    "min": h.min,
                    "max": h.max,
                    "held": held,
                }
            )
    return out


def to_csv(summary: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["scenario", "topology", "metric", "mean", "ci95_lo", "ci95_hi", "n"])
    for row in summary["rows"]:
        for name, m in row["metrics"].items():
            writer.writerow([row["scenario"], row["topology"], name, m["mean"], *m["ci95"], m["n"]])
    return buf.getvalue()


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- folder
def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def input_files(model: ExperimentModel) -> list[Path]:
    files = {model.experiment.path.resolve(), model.workload.workload.path.resolve()}
    files.add(model.workload.catalog.path.resolve())
    files |= {imp.path.resolve() for imp in model.workload.imports}
    for s in model.systems:
        files |= {s.topology.path.resolve(), s.catalog.path.resolve()}
    if model.calibration is not None:
        files.add(model.calibration.resolve())
    return sorted(files)


def run_id(model: ExperimentModel, seed: int, replications: int) -> str:
    h = hashlib.sha256()
    for f in input_files(model):
        h.update(f.name.encode())
        h.update(sha256(f).encode())
    h.update(f"{seed}:{replications}".encode())
    return f"seed{seed}-r{replications}-{h.hexdigest()[:8]}"


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def manifest(model: ExperimentModel, seed: int, replications: int, jobs: int) -> dict[str, Any]:
    return {
        "tool": "virtchaos",
        "version": __version__,
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "command": sys.argv,
        "experiment_file": str(model.experiment.path.resolve()),
        **({"calibration": str(model.calibration.resolve())} if model.calibration else {}),
        "inputs": {str(p): sha256(p) for p in input_files(model)},
        "experiment": model.doc.model_dump(mode="json"),
        "topologies": [s.topology.doc.model_dump(mode="json") for s in model.systems],
        "workload": model.workload.workload.doc.model_dump(mode="json"),
        "seed": seed,
        "replications": replications,
        "jobs": jobs,
        "wall_clock": {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
    }


def read_runs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut by an interruption: that run is re-done
    return records


@dataclass
class Outcome:
    folder: Path
    summary: dict[str, Any]
    hypotheses: list[dict[str, Any]]
    resumed: int


def run_experiment(
    path: str | Path,
    out: Path | None = None,
    replications: int | None = None,
    seed: int | None = None,
    jobs: int = 1,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    calibration: Path | None = None,
) -> Outcome:
    model = load_experiment(path, calibration)
    reps = replications if replications is not None else model.doc.replications
    seed = seed if seed is not None else model.doc.seed
    folder = out or Path("results") / model.doc.name / run_id(model, seed, reps)
    summary_path, runs_path = folder / "summary.json", folder / "runs.jsonl"
    if summary_path.exists() and not force:
        raise ResultsError(f"{folder} already holds a finished run; use --force to overwrite")
    if force and folder.exists():
        for name in ("summary.json", "summary.csv", "runs.jsonl", "manifest.json"):
            (folder / name).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    done = {(r["scenario"], r["topology"], r["replication"]): r for r in read_runs(runs_path)}
    done = {k: v for k, v in done.items() if v.get("seed") == seed}
    todo = [t for t in tasks_of(model, reps) if t.key not in done]
    total = len(done) + len(todo)
    meta = manifest(model, seed, reps, jobs)
    write_atomic(folder / "manifest.json", dumps(meta))
    with runs_path.open("w", encoding="utf-8") as fh:
        for rec in sorted(
            done.values(), key=lambda r: (r["scenario"], r["topology"], r["replication"])
        ):
            fh.write(json.dumps(rec, sort_keys=True) + "\n")
        fh.flush()
        records = list(done.values())
        if progress:
            progress(len(records), total)
        for rec in execute(path, model, todo, seed, jobs):
            fh.write(json.dumps(rec, sort_keys=True) + "\n")
            fh.flush()
            records.append(rec)
            if progress:
                progress(len(records), total)
    summary = summarize_runs(model, records, seed, reps)
    held = hypotheses(model, summary)
    summary["hypotheses"] = held
    write_atomic(summary_path, dumps(summary))
    write_atomic(folder / "summary.csv", to_csv(summary))
    meta["wall_clock"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_atomic(folder / "manifest.json", dumps(meta))
    return Outcome(folder, summary, held, len(done))
