"""Replaying one replication of a results folder with its full event trace (DESIGN 5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import ResultsError
from sim.experiment.runlog import Warn, read_runs
from sim.experiment.runner import Task, run_one, sha256, write_atomic
from sim.model.load import load_experiment
from sim.model.resolved import ExperimentModel


@dataclass(frozen=True)
class Replayed:
    """One replication run again with its trace: the run, where the trace was written, the new
    run's record, whether its metrics match those in ``runs.jsonl``, and the events.
    """

    task: Task
    trace_file: Path
    record: dict[str, Any]
    matches: bool
    events: list[tuple[float, str, str, dict[str, Any]]]


def read_json(path: Path, missing: str) -> dict[str, Any]:
    """A JSON file of a results folder; ``missing`` is the error when it is absent."""
    if not path.is_file():
        raise ResultsError(missing)
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc.msg})") from None
    return data


def load_manifest(folder: Path) -> dict[str, Any]:
    """The results folder's ``manifest.json``; ResultsError when the folder has none or it is not
    valid JSON.
    """
    return read_json(
        folder / "manifest.json", f"{folder} is not a results folder (no manifest.json)"
    )


def changed_inputs(manifest: dict[str, Any]) -> list[str]:
    """Input files whose content differs from when the results were produced."""
    out = []
    for name, digest in sorted(manifest.get("inputs", {}).items()):
        p = Path(name)
        if not p.is_file() or sha256(p) != digest:
            out.append(name)
    return out


def experiment_of(manifest: dict[str, Any]) -> ExperimentModel:
    """The experiment the manifest names, loaded again with its catalog overlay; ResultsError
    when the file is gone.
    """
    path = manifest.get("experiment_file")
    if not path or not Path(path).is_file():
        raise ResultsError(f"the experiment file {path!r} named in the manifest is missing")
    return load_experiment(path, manifest.get("calibration"))


def replay(
    folder: Path,
    replication: int,
    scenario: str | None = None,
    topology: str | None = None,
    warn: Warn | None = None,
) -> Iterator[Replayed]:
    """Re-run replication ``replication`` of every (scenario, topology) selected, writing
    ``traces/<scenario>.<topology>.r<K>.jsonl`` and comparing metrics with ``runs.jsonl``
    (a broken line of it is skipped, with a warning through ``warn``)."""
    manifest = load_manifest(folder)
    model = experiment_of(manifest)
    seed, reps = int(manifest["seed"]), int(manifest["replications"])
    if not 0 <= replication < reps:
        raise ResultsError(f"replication must be in 0..{reps - 1}, got {replication}")
    recorded = {
        (r["scenario"], r["topology"], r["replication"]): r
        for r in read_runs(folder / "runs.jsonl", warn)
    }
    scenarios = [s.name for s in model.scenarios if scenario in (None, s.name)]
    topologies = [s.name for s in model.systems if topology in (None, s.name)]
    if not scenarios or not topologies:
        raise ResultsError(f"no scenario {scenario!r} / topology {topology!r} in this experiment")
    (folder / "traces").mkdir(exist_ok=True)
    for sc in scenarios:
        for topo in topologies:
            task = Task(sc, topo, replication)
            record, sim = run_one(model, task, seed, keep_trace=True, sample_every_s=5.0)
            events = sim.collector.events
            path = folder / "traces" / f"{sc}.{topo}.r{replication}.jsonl"
            lines = [
                json.dumps({"t": round(t, 6), "subject": s, "event": e, **d}, sort_keys=True)
                for t, s, e, d in events
            ]
            lines += [
                json.dumps(
                    {"t": round(t, 6), "subject": n, "event": "sample", "busy": b, "state": st}
                )
                for t, n, b, st in sim.collector.samples
            ]
            lines += [
                json.dumps(
                    {"t": round(c.t_start, 6), "subject": c.client, "event": "call",
                     "procedure": c.procedure, "driver": c.driver, "ok": c.ok, "error": c.error,
                     "latency_ms": round(1000 * (c.t_end - c.t_start), 3)}, sort_keys=True
                )
                for c in sim.collector.calls
            ]  # fmt: skip
            write_atomic(path, "\n".join(lines) + "\n")
            old = recorded.get(task.key)
            matches = old is not None and old["metrics"] == record["metrics"]
            yield Replayed(task, path, record, matches, events)
