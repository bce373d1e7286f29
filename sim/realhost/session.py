"""``realrun``: every runnable scenario of an experiment, on the testbed, to a results folder."""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.constants import VERSION as __version__
from sim.experiment.runner import git_commit
from sim.realhost import testbed as tb
from sim.realhost.calibrate import host_facts
from sim.realhost.lv import RealHostError, connect
from sim.realhost.plan import Plan, load_inputs, plan, workload_guests
from sim.realhost.realrun import run_replication
from sim.realhost.results import probe_rows, summary_of, write_json
from sim.schema.realhost import RealHost


@dataclass
class RealOutcome:
    """A finished real run: its results folder, summary, the scenarios refused with reasons, and
    notes.
    """

    folder: Path
    summary: dict[str, Any]
    refused: dict[str, list[str]]
    notes: list[str]


def _facts(host: RealHost, paths: tb.Paths) -> dict[str, str]:
    bed = host.topology(tb.State.read(paths).topology)
    conn = connect(paths.uri(bed, next(iter(bed.uris))))
    try:
        return host_facts(conn)
    finally:
        conn.close()


def realrun(
    experiment: Path,
    topology: str,
    host: RealHost,
    prefix: Path,
    out: Path | None,
    replications: int | None,
    only: list[str],
    progress: Callable[[str], None] | None = None,
) -> RealOutcome:
    """Run every runnable scenario of ``experiment`` (or those in ``only``) on the testbed at
    ``prefix`` and write a results folder; RealHostError when the testbed is down, lacks the
    workload's guests, or no scenario can run.
    """
    paths = tb.Paths(prefix)
    st = tb.status(host, prefix)
    if not st["up"]:
        raise RealHostError(f"the testbed is not up at {prefix}: run `virtchaos testbed up`")
    inputs = load_inputs(experiment, topology)
    bed = host.topology(st["topology"])
    guests = workload_guests(inputs.workload)
    missing = sorted(set(guests) - set(st["guests"]))
    if missing:
        raise RealHostError(
            f"the workload's guests {missing} are not on the testbed "
            f"(it has {sorted(st['guests'])}): testbed up --guests N"
        )
    plans: list[Plan] = []
    refused: dict[str, list[str]] = {}
    for sc in inputs.scenarios:
        if only and sc.name not in only:
            continue
        p = plan(host, bed, inputs, sc, sorted(st["guests"]))
        if p.refused:
            refused[sc.name] = p.refused
        else:
            plans.append(p)
    if not plans:
        lines = [f"{k}: {'; '.join(v)}" for k, v in refused.items()]
        raise RealHostError(
            "no scenario can run on this host:\n  " + "\n  ".join(lines or ["(none selected)"])
        )
    reps = replications or inputs.exp.replications
    seed = inputs.exp.seed
    folder = out or Path("results") / inputs.exp.name / f"real-{topology}-r{reps}"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = _manifest(inputs, host, paths, topology, reps, refused)
    write_json(folder / "manifest.json", manifest)
    records, notes = [], []
    probe_calls: list[tuple[str, str, str, str, float, bool, str]] = []
    exp = inputs.exp
    with (
        (folder / "runs.jsonl").open("w", encoding="utf-8") as runs,
        (folder / "calls.jsonl").open("w", encoding="utf-8") as calls_fh,
    ):
        for p in plans:
            for rep in range(reps):
                if progress:
                    progress(f"{p.scenario.name} r{rep}")
                rec, calls, n = run_replication(host, inputs, paths, p, rep, seed)
                records.append(rec)
                notes += [f"{p.scenario.name} r{rep}: {x}" for x in n]
                runs.write(json.dumps(rec, sort_keys=True) + "\n")
                runs.flush()
                for c in sorted(calls, key=lambda c: c.t_start):
                    calls_fh.write(
                        json.dumps(
                            {"scenario": p.scenario.name, "replication": rep, **c.row()},
                            sort_keys=True,
                        )
                        + "\n"
                    )
                    if (
                        c.t_end is not None
                        and exp.warmup_s <= c.t_start <= exp.duration_s
                        and c.t_end <= exp.duration_s
                    ):
                        probe_calls.append(
                            (
                                p.scenario.name,
                                topology,
                                c.client,
                                c.procedure,
                                c.t_end - c.t_start,
                                c.ok,
                                c.error,
                            )
                        )
    summary = summary_of(exp.name, records, seed, reps)
    write_json(folder / "summary.json", summary)
    write_json(folder / "probes.json", {"rows": probe_rows(probe_calls)})
    manifest["wall_clock"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    manifest["notes"] = notes
    write_json(folder / "manifest.json", manifest)
    return RealOutcome(folder, summary, refused, notes)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(
    inputs: Any,
    host: RealHost,
    paths: tb.Paths,
    topology: str,
    reps: int,
    refused: dict[str, list[str]],
) -> dict[str, Any]:
    return {
        "tool": "virtchaos",
        "version": __version__,
        "git_commit": git_commit(),
        "backend": "real",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "command": sys.argv,
        "experiment_file": str(inputs.path.resolve()),
        "inputs": {str(inputs.path.resolve()): _sha(inputs.path)},
        "topology": topology,
        "host": _facts(host, paths) | {"description": host.name},
        "testbed": tb.status(host, paths.prefix),
        "replications": reps,
        "seed": inputs.exp.seed,
        "refused": refused,
        "wall_clock": {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
    }
