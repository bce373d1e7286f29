"""``merge``: the results folders of a run's shards (``run --shard K/N``) joined into the
folder the whole run would have written, with a byte-identical ``summary.json``.

The shards must be finished runs of the same inputs (the manifests' identity, documents and
input digests agree; :func:`sim.experiment.resultsdir.differences`), one per index 1..N,
and the experiment file must still be what they ran.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.errors import ResultsError
from sim.experiment.replay import changed_inputs, experiment_of, load_manifest, read_json
from sim.experiment.resultsdir import differences, finish, prepare
from sim.experiment.runlog import Warn, read_runs, record_line
from sim.experiment.runner import (
    Outcome,
    Shard,
    dumps,
    order_key,
    summary_of,
    to_csv,
    write_atomic,
)
from sim.schema.experiment import Stopping


def _shard_of(folder: Path, manifest: dict[str, Any]) -> Shard:
    text = manifest.get("shard")
    if not isinstance(text, str):
        raise ResultsError(f"{folder} is not a shard (its manifest has no shard: run --shard)")
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise ResultsError(f"{folder}: {exc}") from None


def merge_shards(
    folders: Sequence[Path], out: Path, force: bool = False, warn: Warn | None = None
) -> Outcome:
    """Join the shard folders into ``out`` (the results folder rules of
    :func:`sim.experiment.resultsdir.prepare` apply); ResultsError when they do not make
    one whole run."""
    if not folders:
        raise ResultsError("merge needs the shard folders")
    manifests = [load_manifest(f) for f in folders]
    shards = [_shard_of(f, m) for f, m in zip(folders, manifests, strict=True)]
    count = shards[0].count
    for folder, shard in zip(folders, shards, strict=True):
        if shard.count != count:
            raise ResultsError(f"{folder} is shard {shard}, the first is of {count}")
        read_json(folder / "summary.json", f"{folder}: shard {shard} has not finished")
    seen = sorted(s.index for s in shards)
    if seen != list(range(1, count + 1)):
        missing = sorted(set(range(1, count + 1)) - set(seen))
        twice = sorted({i for i in seen if seen.count(i) > 1})
        parts = [f"missing {missing}" if missing else "", f"twice {twice}" if twice else ""]
        raise ResultsError(f"shards of {count}: " + ", ".join(p for p in parts if p))
    first = {k: v for k, v in manifests[0].items() if k != "shard"}
    for folder, manifest in zip(folders[1:], manifests[1:], strict=True):
        diff = differences(first, {k: v for k, v in manifest.items() if k != "shard"})
        if diff:
            raise ResultsError(f"{folder} ran other inputs than {folders[0]}: {'; '.join(diff)}")
    changed = changed_inputs(first)
    if changed:
        raise ResultsError(f"inputs changed since the shards ran: {', '.join(changed)}")
    model = experiment_of(first)
    seed, reps = int(first["seed"]), int(first["replications"])
    rule = Stopping.model_validate(first["stopping"]) if first.get("stopping") else None
    records: list[dict[str, Any]] = []
    counts: dict[str, int] | None = {} if rule is not None else None
    for folder in folders:
        records += read_runs(folder / "runs.jsonl", warn)
        if counts is not None:
            summary = read_json(folder / "summary.json", f"{folder}: no summary.json")
            counts |= summary["stopping"]["replications"]
    _complete(model.scenarios, [s.name for s in model.systems], records, reps, counts)
    meta = dict(first)
    meta["merged_from"] = [str(f.resolve()) for f in folders]
    meta["wall_clock"] = {"merged": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    ws = prepare(out, force, meta)
    key = order_key(model)
    write_atomic(ws.work / "manifest.json", dumps(meta))
    runs = sorted(records, key=key)
    write_atomic(ws.work / "runs.jsonl", "".join(record_line(r) for r in runs))
    summary = summary_of(model, runs, seed, reps, rule, counts)
    write_atomic(ws.work / "summary.csv", to_csv(summary))
    write_atomic(ws.work / "summary.json", dumps(summary))
    finish(ws)
    return Outcome(ws.target, summary, summary["hypotheses"], len(runs))


def _complete(
    scenarios: Sequence[Any],
    topologies: Sequence[str],
    records: Sequence[dict[str, Any]],
    reps: int,
    counts: dict[str, int] | None,
) -> None:
    """Refuse runs that are missing, doubled, or of no scenario of the experiment."""
    have: dict[tuple[str, str, int], int] = {}
    for r in records:
        k = (r["scenario"], r["topology"], r["replication"])
        have[k] = have.get(k, 0) + 1
    want = {
        (sc.name, topo, i)
        for sc in scenarios
        for topo in topologies
        for i in range(reps if counts is None else counts.get(sc.name, 0))
    }
    missing = sorted(want - have.keys())
    extra = sorted(have.keys() - want)
    doubled = sorted(k for k, n in have.items() if n > 1)
    for what, keys in (("missing", missing), ("not of this run", extra), ("twice", doubled)):
        if keys:
            s, t, i = keys[0]
            more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
            raise ResultsError(f"runs {what}: {s} / {t} / r{i}{more}")
