"""Startup: wall seconds of ``virtchaos --help`` (target < 0.3 s) and of ``virtchaos
validate`` of the reference experiment (< 0.5 s: it loads both topologies, the workload,
its client profiles and the catalog, with every cross-reference check), each beside a bare
``python -c pass`` (the interpreter's own start, the floor) run alternately in this command.

Run: ``python benchmarks/bench_startup.py [--repeat 7] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import emit

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "python": [sys.executable, "-c", "pass"],
    "help": [sys.executable, "-m", "sim", "--help"],
    "validate": [sys.executable, "-m", "sim", "validate", "experiments/nodedev-hang.yaml"],
}


def wall(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = ap.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for argv in COMMANDS.values():
        wall(argv)  # warm the file cache
    for _ in range(args.repeat):
        for name, argv in COMMANDS.items():
            times[name].append(wall(argv))
    result = {f"{name}_s": statistics.median(t) for name, t in times.items()}
    for name in ("help", "validate"):
        ratios = [a / b for a, b in zip(times[name], times["python"], strict=True)]
        result[f"{name}_ratio_to_python"] = statistics.median(ratios)
    emit(result, args.json)


if __name__ == "__main__":
    main()
