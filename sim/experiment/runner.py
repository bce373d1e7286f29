"""Running an experiment: replications x scenarios x topologies, in parallel, to a results
folder (DESIGN 5).

``runs.jsonl`` is streamed (one line per finished run); ``summary.json`` is computed from the
runs sorted by key, so it is byte-identical whatever the number of processes or the order in
which runs finish.  An interrupted run resumes from ``runs.jsonl``.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from sim.constants import VERSION as __version__
from sim.engine.simulation import Simulation
from sim.errors import ConfigError, SimError
from sim.experiment.budget import check_size
from sim.experiment.metrics import NOT_RECOVERED, Window, compute
from sim.experiment.resultsdir import finish, prepare
from sim.experiment.runlog import Warn, metric_value, read_runs, record_line
from sim.experiment.sequential import Plan
from sim.experiment.stats import paired, summarize
from sim.experiment.workers import imap_unordered
from sim.model.load import load_experiment, substitute_topologies
from sim.model.resolved import ExperimentModel
from sim.schema.experiment import METRICS, Stopping

Key = tuple[str, str, int]


@dataclass(frozen=True)
class Task:
    """One run: a scenario in a topology, one replication."""

    scenario: str
    topology: str
    replication: int

    @property
    def key(self) -> Key:
        """``(scenario, topology, replication)``, the key runs are sorted and resumed by."""
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
    values, undefined = defined(metrics)
    record: dict[str, Any] = {
        "scenario": task.scenario,
        "topology": task.topology,
        "replication": task.replication,
        "seed": seed,
        "metrics": values,
        "lost": {g: reason for g, (_, reason) in sorted(collector.lost.items())},
    }
    if undefined:
        record["undefined"] = undefined
    return record, sim


def defined(
    metrics: Mapping[str, float | None],
) -> tuple[dict[str, float | None], dict[str, str]]:
    """Metrics rounded for output, and why each undefined one (None) is undefined: strict
    JSON has no NaN or infinity, so such a value is null with its reason."""
    values: dict[str, float | None] = {}
    undefined: dict[str, str] = {}
    for k, v in sorted(metrics.items()):
        if v is None:
            undefined[k] = NOT_RECOVERED if k == "time_to_recover_s" else "undefined"
        elif not math.isfinite(v):
            undefined[k] = f"not a finite number ({v}): an input is infinite or out of range"
        values[k] = None if k in undefined else round(v, 6) + 0.0  # type: ignore[arg-type]
    return values, undefined


# ---------------------------------------------------------------------------- workers
_WORKER: dict[str, Any] = {}


def _init_worker(
    path: str, topologies: dict[str, str] | None = None, calibration: str | None = None
) -> None:
    model = load_experiment(path, calibration)
    _WORKER["model"] = substitute_topologies(model, topologies) if topologies else model


_CLUSTER_MODELS: dict[tuple[str, tuple[tuple[str, str], ...], str | None], ExperimentModel] = {}


def _cluster_work(
    task: Task, args: tuple[str, dict[str, str], str | None], seed: int
) -> dict[str, Any]:
    """One task on a cluster worker; the experiment is loaded once per worker process and
    per (experiment, substitutions, calibration)."""
    path, subst, cal = args
    key = (path, tuple(sorted(subst.items())), cal)
    if key not in _CLUSTER_MODELS:
        model = load_experiment(path, cal)
        _CLUSTER_MODELS[key] = substitute_topologies(model, subst) if subst else model
    return run_one(_CLUSTER_MODELS[key], task, seed)[0]


def _work(task: Task, seed: int) -> dict[str, Any]:
    record, _ = run_one(_WORKER["model"], task, seed)
    return record


def tasks_of(model: ExperimentModel, replications: int) -> Iterator[Task]:
    """Every task, lazily, in the canonical order (scenario, topology, replication)."""
    for sc in model.scenarios:
        for system in model.systems:
            for r in range(replications):
                yield Task(sc.name, system.name, r)


def count_tasks(model: ExperimentModel, replications: int) -> int:
    """The number of runs: scenarios x topologies x ``replications``."""
    return len(model.scenarios) * len(model.systems) * replications


def order_key(model: ExperimentModel) -> Callable[[dict[str, Any]], tuple[int, int, int]]:
    """Sort key of a run record in the order of :func:`tasks_of`."""
    sc = {s.name: i for i, s in enumerate(model.scenarios)}
    topo = {s.name: i for i, s in enumerate(model.systems)}
    return lambda r: (sc[r["scenario"]], topo[r["topology"]], r["replication"])


def execute(
    path: str | Path,
    model: ExperimentModel,
    tasks: Iterable[Task],
    seed: int,
    jobs: int,
    topologies: Mapping[str, str | Path] | None = None,
    client: Any = None,
) -> Iterator[dict[str, Any]]:
    """Yield one record per task as it finishes (in-process when ``jobs`` is 1; on a Dask
    cluster, :mod:`sim.experiment.cluster`, when given its ``client``).

    ``topologies`` are the substitutions already applied to ``model``
    (:func:`sim.model.substitute_topologies`); worker processes apply them again.  Tasks
    are taken from ``tasks`` as workers free up (:func:`sim.experiment.workers.imap_unordered`).
    """
    subst = {k: str(v) for k, v in (topologies or {}).items()}
    cal = None if model.calibration is None else str(model.calibration)
    if client is not None:
        from sim.experiment.cluster import imap_dask

        args = (str(Path(path).resolve()), subst, cal)
        yield from imap_dask(client, functools.partial(_cluster_work, args=args, seed=seed), tasks)
        return
    if jobs <= 1:
        for task in tasks:
            yield run_one(model, task, seed)[0]
        return
    work = functools.partial(_work, seed=seed)
    yield from imap_unordered(work, tasks, jobs, _init_worker, (str(path), subst, cal))


# ---------------------------------------------------------------------------- summary
def summarize_runs(
    model: ExperimentModel,
    records: list[dict[str, Any]],
    seed: int,
    replications: int,
    counts: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The summary of an experiment's runs, independent of their order.

    One row per scenario and topology with each metric summarised over the replications
    (mean, 95% interval, n; metrics in :data:`METRICS` order first), and for each scenario one
    paired comparison per metric and pair of topologies.  Every run must be in ``records``.
    ``counts`` gives each scenario's replications when they differ (sequential stopping),
    else every scenario has ``replications``.
    """
    by_key = {(r["scenario"], r["topology"], r["replication"]): r for r in records}
    names = sorted({k for r in records for k in r["metrics"]})
    ordered = [m for m in METRICS if m in names] + [m for m in names if m not in METRICS]
    rows, comparisons = [], []
    topologies = [s.name for s in model.systems]
    why: dict[str, str] = {}
    for sc in model.scenarios:
        series: dict[str, dict[str, list[float | None]]] = {}
        for topo in topologies:
            n = replications if counts is None else counts[sc.name]
            recs = [by_key[(sc.name, topo, r)] for r in range(n)]
            series[topo] = {m: [metric_value(rec, m) for rec in recs] for m in ordered}
            why |= {m: w for rec in recs for m, w in rec.get("undefined", {}).items()}
            rows.append(
                {
                    "scenario": sc.name,
                    "topology": topo,
                    "metrics": {
                        m: summarize(series[topo][m], why.get(m, "undefined")) for m in ordered
                    },
                }
            )
        for i, a in enumerate(topologies):
            for b in topologies[i + 1 :]:
                for m in ordered:
                    comparisons.append(
                        {"scenario": sc.name, "metric": m, "a": a, "b": b}
                        | paired(series[a][m], series[b][m], why.get(m, "undefined"))
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
            stat = row["metrics"].get(h.metric, {"mean": 0.0})
            mean = stat["mean"]
            held = mean is not None and "undefined" not in stat
            held = held and (h.max is None or mean <= h.max) and (h.min is None or mean >= h.min)
            result = {
                "hypothesis": h.name,
                "scenario": row["scenario"],
                "topology": row["topology"],
                "metric": h.metric,
                "mean": mean,
                "min": h.min,
                "max": h.max,
                "held": held,
            }
            if "undefined" in stat:  # cannot be shown to hold
                result["undefined"] = stat["undefined"]
            out.append(result)
    return out


def to_csv(summary: dict[str, Any]) -> str:
    """The summary's rows as CSV: one line per scenario, topology and metric."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["scenario", "topology", "metric", "mean", "ci95_lo", "ci95_hi", "n"])
    for row in summary["rows"]:
        for name, m in row["metrics"].items():
            writer.writerow([row["scenario"], row["topology"], name, m["mean"], *m["ci95"], m["n"]])
    return buf.getvalue()


def dumps(obj: Any) -> str:
    """Strict JSON text (a NaN or infinity is an error, never written)."""
    return json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: readers see the old or
    the new file, never a part.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- folder
def sha256(path: Path) -> str:
    """The file's SHA-256 digest, in hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def input_files(model: ExperimentModel) -> list[Path]:
    """Every model file the experiment was loaded from, resolved and sorted."""
    files = {model.experiment.path.resolve(), model.workload.workload.path.resolve()}
    files.add(model.workload.catalog.path.resolve())
    files |= {imp.path.resolve() for imp in model.workload.imports}
    for s in model.systems:
        files |= {s.topology.path.resolve(), s.catalog.path.resolve()}
    if model.calibration is not None:
        files.add(model.calibration.resolve())
    return sorted(files)


def run_id(
    model: ExperimentModel, seed: int, replications: int, rule: Stopping | None = None
) -> str:
    """An id for a run of these inputs (the default results folder name): seed, replications
    or the stopping rule, and a digest of the input files' names and contents."""
    h = hashlib.sha256()
    for f in input_files(model):
        h.update(f.name.encode())
        h.update(sha256(f).encode())
    h.update(f"{seed}:{replications}".encode())
    if rule is not None:
        h.update(rule.model_dump_json().encode())
        return f"seed{seed}-auto{rule.min}-{rule.max}-{h.hexdigest()[:8]}"
    return f"seed{seed}-r{replications}-{h.hexdigest()[:8]}"


def _git(*args: str) -> subprocess.CompletedProcess[str] | None:
    """``git ARGS`` in the tool's own checkout, or None when git cannot be run."""
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit() -> str | None:
    """The tool's checkout's commit, or ``None`` when it is not known."""
    out = _git("rev-parse", "HEAD")
    return None if out is None else out.stdout.strip() or None


def git_dirty() -> bool | None:
    """Whether the checkout has uncommitted changes (None: not known)."""
    out = _git("status", "--porcelain", "--untracked-files=no")
    if out is None or out.returncode != 0:
        return None
    return bool(out.stdout.strip())


def manifest(model: ExperimentModel, seed: int, replications: int, jobs: int) -> dict[str, Any]:
    """The results folder's provenance: tool, version, commit, platform, command, input digests,
    the resolved documents, seed and replications; wall-clock time only under ``wall_clock``.
    """
    return {
        "tool": "virtchaos",
        "version": __version__,
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
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


def _kept(
    model: ExperimentModel, records: list[dict[str, Any]], seed: int, reps: int, warn: Warn
) -> dict[Key, dict[str, Any]]:
    """The recorded runs that are tasks of this run (others dropped with a warning)."""
    scenarios = {s.name for s in model.scenarios}
    topologies = {s.name for s in model.systems}
    done: dict[Key, dict[str, Any]] = {}
    for rec in records:
        key = (rec["scenario"], rec["topology"], rec["replication"])
        if (
            key[0] in scenarios
            and key[1] in topologies
            and 0 <= key[2] < reps
            and rec["seed"] == seed
        ):
            done[key] = rec
        else:
            warn(
                f"runs.jsonl: {key[0]} / {key[1]} / r{key[2]} is not a run of this command: dropped"
            )
    return done


def _write_runs(path: Path, records: Iterable[dict[str, Any]], key: Any) -> None:
    write_atomic(path, "".join(record_line(r) for r in sorted(records, key=key)))


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run: what was kept, and where."""

    def __init__(self, folder: Path, done: int, total: int) -> None:
        super().__init__(f"{done} of {total} runs kept in {folder}")
        self.folder, self.done, self.total = folder, done, total


@dataclass
class Outcome:
    """A finished experiment: its results folder, summary, hypothesis results, and how many runs
    were resumed rather than run.
    """

    folder: Path
    summary: dict[str, Any]
    hypotheses: list[dict[str, Any]]
    resumed: int


def run_experiment(
    path: str | Path,
    out: Path | None = None,
    replications: int | Literal["auto"] | None = None,
    seed: int | None = None,
    jobs: int = 1,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    warn: Warn | None = None,
    size_check: bool = True,
    calibration: Path | None = None,
    shard: Shard | None = None,
    executor: str = "local",
    scheduler: str | None = None,
) -> Outcome:
    """Run ``path`` into a results folder (:mod:`sim.experiment.resultsdir` says which folders
    may be written); resume an interrupted run of the same inputs.

    ``runs.jsonl`` ends in the canonical task order and ``summary.json`` is written last, so
    a run killed at any moment and run again gives the same bytes as one never interrupted.
    ``shard`` runs only that shard's scenarios (:class:`Shard`); ``merge`` joins the shards'
    folders into the folder the whole run would have written.  ``executor="dask"`` runs the
    tasks on a Dask cluster (``scheduler``'s address, else a local one of ``jobs`` workers).
    """
    say = warn or (lambda _: None)
    model = load_experiment(path, calibration)
    if shard is not None:
        model = shard.of(model)
    rule: Stopping | None
    if replications == "auto":
        auto = model.doc.stopping or Stopping()
        rule, reps = auto, auto.max
    elif replications is None:
        rule, reps = model.doc.sequential, model.doc.max_replications
    else:
        rule, reps = None, replications
    if size_check:
        check_size(model, reps)
    seed = seed if seed is not None else model.doc.seed
    meta = manifest(model, seed, reps, jobs)
    if rule is not None:
        meta["stopping"] = rule.model_dump(mode="json")
    name = run_id(model, seed, reps, rule)
    if shard is not None:
        meta["shard"] = str(shard)
        name += f"-shard{shard.index}of{shard.count}"
    folder = out or Path("results") / model.doc.name / name
    ws = prepare(folder, force, meta)
    runs_path, key = ws.work / "runs.jsonl", order_key(model)
    done = _kept(model, read_runs(runs_path, say), seed, reps, say)
    write_atomic(ws.work / "manifest.json", dumps(meta))
    _write_runs(runs_path, done.values(), key)
    resumed = len(done)
    counts: dict[str, int] | None = None
    try:
        with (
            runs_path.open("a", encoding="utf-8") as fh,
            _executor(executor, scheduler, jobs) as client,
        ):

            def stream(todo: Iterable[Task], total: int) -> None:
                if progress:
                    progress(len(done), total)
                for rec in execute(path, model, todo, seed, jobs, client=client):
                    fh.write(record_line(rec))
                    fh.flush()
                    done[(rec["scenario"], rec["topology"], rec["replication"])] = rec
                    if progress:
                        progress(len(done), total)

            if rule is None:
                todo = (t for t in tasks_of(model, reps) if t.key not in done)
                stream(todo, count_tasks(model, reps))
            else:
                counts = _sequential(model, rule, done, stream)
        # every run done: the summary, written before summary.json marks the run finished
        # (Ctrl-C here keeps the runs too; the same command writes the summary)
        records = list(done.values())
        if counts is not None:  # runs beyond a scenario's count (from an earlier run) unused
            records = [r for r in records if r["replication"] < counts[r["scenario"]]]
        _write_runs(runs_path, records, key)
        summary = summary_of(model, records, seed, reps, rule, counts)
        if shard is not None:
            summary["shard"] = str(shard)
        held = summary["hypotheses"]
        write_atomic(ws.work / "summary.csv", to_csv(summary))
        meta["wall_clock"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_atomic(ws.work / "manifest.json", dumps(meta))
    except KeyboardInterrupt:
        total = count_tasks(model, reps) if counts is None else len(done)
        raise Interrupted(ws.work, len(done), total) from None
    write_atomic(ws.work / "summary.json", dumps(summary))  # last: marks the run finished
    finish(ws)
    return Outcome(ws.target, summary, held, resumed)


@contextmanager
def _executor(executor: str, scheduler: str | None, jobs: int) -> Iterator[Any]:
    """The Dask client a run's tasks go to (None: the local process pool)."""
    if executor == "local":
        if scheduler is not None:
            raise SimError("--scheduler is for --executor dask")
        yield None
        return
    if executor != "dask":
        raise SimError(f"unknown executor {executor!r}: local or dask")
    from sim.experiment.cluster import dask_client

    with dask_client(scheduler, jobs) as client:
        yield client


def summary_of(
    model: ExperimentModel,
    records: list[dict[str, Any]],
    seed: int,
    reps: int,
    rule: Stopping | None,
    counts: Mapping[str, int] | None,
) -> dict[str, Any]:
    """``summary.json`` of finished runs: :func:`summarize_runs`, the stopping rule and
    counts when sequential, and the hypotheses."""
    summary = summarize_runs(model, records, seed, reps, counts)
    if rule is not None and counts is not None:
        summary["replications"] = max(counts.values(), default=0)
        summary["stopping"] = _plan(model, rule, counts).describe()
    summary["hypotheses"] = hypotheses(model, summary)
    return summary


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based): the scenarios whose position in the
    experiment, counted from 0, leaves ``index - 1`` when divided by ``count``.  Whole
    scenarios, so sequential stopping decides within a shard as it would in one run."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N`` with 1 <= K <= N; ValueError otherwise."""
        k, sep, n = text.partition("/")
        if not sep or not k.strip().isdigit() or not n.strip().isdigit():
            raise ValueError(f"a shard is K/N (e.g. 1/4), got {text!r}")
        shard = cls(int(k), int(n))
        if not 1 <= shard.index <= shard.count:
            raise ValueError(f"a shard K/N needs 1 <= K <= N, got {text!r}")
        return shard

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def of(self, model: ExperimentModel) -> ExperimentModel:
        """``model`` with only this shard's scenarios; ConfigError when it has none."""
        mine = [s for i, s in enumerate(model.scenarios) if i % self.count == self.index - 1]
        if not mine:
            msg = (
                f"shard {self} has no scenario: the experiment has {len(model.scenarios)}, "
                f"so use at most {len(model.scenarios)} shards"
            )
            raise ConfigError.single(model.experiment.path, msg, field="--shard")
        return replace(model, scenarios=mine, _resolved={})


def _plan(model: ExperimentModel, rule: Stopping, counts: Mapping[str, int] | None = None) -> Plan:
    plan = Plan(rule, [s.name for s in model.scenarios], [s.name for s in model.systems])
    if counts is not None:
        plan.counts, plan.done = dict(counts), set(counts)
    return plan


def _sequential(
    model: ExperimentModel,
    rule: Stopping,
    done: Mapping[Key, dict[str, Any]],
    stream: Callable[[Iterable[Task], int], None],
) -> dict[str, int]:
    """Run rounds until every scenario stops (:mod:`sim.experiment.sequential`); each
    scenario's replication count."""
    plan = _plan(model, rule)
    while rnd := plan.next_round():
        todo = [
            Task(sc, topo, r)
            for sc, reps in rnd.items()
            for topo in plan.topologies
            for r in reps
            if (sc, topo, r) not in done
        ]
        stream(todo, plan.bound())
        for sc, reps in rnd.items():
            runs = {(t, r): done[(sc, t, r)] for t in plan.topologies for r in range(reps.stop)}
            plan.settle(sc, reps.stop, runs)
    return plan.counts
