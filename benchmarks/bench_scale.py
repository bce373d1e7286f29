"""Scale: seconds and peak memory of one replication at 1000 guests (issue 13: < 200 MB),
beside the same scenario at 50 guests, each replication in a fresh process.

The scenario is the reference one (nodedev-hang, via-hypervisor-uri) on
``models/workloads/virt-host-1000.yaml`` (``benchmarks/models/scale-1000.yaml``) and on the
50-guest ``virt-host.yaml`` (``experiments/nodedev-hang.yaml``).  Peak memory is the child's
maximum resident set size (``getrusage``), so it includes the interpreter and the imports;
``import_mb`` is that floor (the same child, loading the models and running nothing).

Run: ``python benchmarks/bench_scale.py [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import emit

HERE = Path(__file__).parent
ROOT = HERE.parent
CASES = {
    "50": ROOT / "experiments" / "nodedev-hang.yaml",
    "1000": HERE / "models" / "scale-1000.yaml",
}
SCENARIO = "via-hypervisor-uri"

CHILD = """
import json, resource, sys, time
from sim.experiment.runner import Task, run_one
from sim.model.load import load_experiment
path, topology, run = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
model = load_experiment(path)
t0 = time.perf_counter()
calls = 0
if run:
    record, sim = run_one(model, Task(sys.argv[4], topology, 0), model.doc.seed)
    calls = len(sim.collector.calls)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"s": seconds, "peak_mb": peak, "calls": calls}))
"""


def child(path: Path, topology: str, run: bool) -> dict[str, float]:
    """One fresh process: load ``path``, run one replication of ``topology`` if ``run``."""
    argv = [sys.executable, "-c", CHILD, str(path), topology, "1" if run else "0", SCENARIO]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = ap.parse_args()
    result: dict[str, float] = {}
    for guests, path in CASES.items():
        result[f"import_mb.{guests}"] = child(path, "modular", run=False)["peak_mb"]
        for topology in ("monolithic", "modular"):
            got = child(path, topology, run=True)
            for key in ("s", "peak_mb", "calls"):
                result[f"{key}.{guests}.{topology}"] = got[key]
            print(
                f"{guests:>5} guests {topology:11s} {got['s']:7.2f} s "
                f"{got['peak_mb']:7.1f} MB peak {got['calls']:9.0f} calls",
                flush=True,
            )
    for topology in ("monolithic", "modular"):
        result[f"s_per_guest_ratio.{topology}"] = (
            result[f"s.1000.{topology}"] / 1000 / (result[f"s.50.{topology}"] / 50)
        )
    emit(result, args.json)


if __name__ == "__main__":
    main()
