"""Engine overhead and reference-scenario speed (DESIGN 6), measured side by side.

1. Per-call cost of the engine against a minimal hand-written SimPy model of the same call
   path (client -> connection request slot -> worker -> object lock -> service time -> reply),
   run alternately in this process; the target is a ratio <= 1.5.
2. The reference scenario (50 guests, virt-manager + VDSM + nova polling and the other
   management clients, 1 simulated hour, one fault): seconds per replication per topology;
   the target is < 0.5 s on a 2-core machine.

Run: ``python benchmarks/bench_engine.py [--repeat 5] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from pathlib import Path

import simpy

from sim.engine.simulation import Simulation
from sim.experiment.runner import Task, run_one
from sim.model.load import load_experiment, load_system, load_workload

HERE = Path(__file__).parent
ROOT = HERE.parent


def baseline(until: float, seed: int) -> int:
    """The minimal SimPy model: same guests, period, pool sizes and service distribution."""
    env = simpy.Environment()
    rng = random.Random(seed)
    slots = simpy.Resource(env, capacity=5)
    workers = simpy.Resource(env, capacity=20)
    locks = [simpy.Resource(env, capacity=1) for _ in range(50)]
    mu, sigma = math.log(0.001), 0.5
    calls = [0]

    def call(guest: int):  # type: ignore[no-untyped-def]
        with slots.request() as s:
            yield s
            with workers.request() as w:
                yield w
                with locks[guest].request() as lk:
                    yield lk
                    yield env.timeout(rng.lognormvariate(mu, sigma))
        calls[0] += 1

    def poller():  # type: ignore[no-untyped-def]
        yield env.timeout(rng.uniform(0, 3))
        while True:
            for guest in range(50):
                yield from call(guest)
            yield env.timeout(3)

    env.process(poller())
    env.run(until=until)
    return calls[0]


def engine(until: float, seed: int) -> int:
    system = load_system(HERE / "models" / "topology.yaml")
    workload = load_workload(HERE / "models" / "workload.yaml")
    sim = Simulation(system, workload, None, seed=seed, replication=0)
    return len(sim.run(until).calls)


def timed(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    n = fn(*args)
    return time.perf_counter() - t0, n


def overhead(repeat: int, until: float) -> dict[str, float]:
    ratios, eng_us, base_us = [], [], []
    for i in range(repeat):
        tb, nb = timed(baseline, until, i)
        te, ne = timed(engine, until, i)
        base_us.append(1e6 * tb / nb)
        eng_us.append(1e6 * te / ne)
        ratios.append(eng_us[-1] / base_us[-1])
    return {
        "baseline_us_per_call": statistics.median(base_us),
        "engine_us_per_call": statistics.median(eng_us),
        "ratio": statistics.median(ratios),
    }


def reference(repeat: int) -> dict[str, float]:
    model = load_experiment(ROOT / "experiments" / "nodedev-hang.yaml")
    out = {}
    for system in model.systems:
        times = []
        for r in range(repeat):
            t0 = time.perf_counter()
            run_one(model, Task("via-hypervisor-uri", system.name, r), model.doc.seed)
            times.append(time.perf_counter() - t0)
        out[f"reference_s_per_replication.{system.name}"] = statistics.median(times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--until", type=float, default=3600.0, help="simulated seconds per run")
    ap.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = ap.parse_args()
    result = overhead(args.repeat, args.until) | reference(args.repeat)
    for key, value in result.items():
        print(f"{key:48s} {value:10.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
