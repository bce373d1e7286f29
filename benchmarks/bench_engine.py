"""Engine overhead and reference-scenario speed (DESIGN 6), measured side by side.

1. Per-call cost of the engine against two hand-written SimPy models of the same call path
   (client -> connection request slot -> worker -> object lock -> service time -> reply), run
   alternately in this process:
   - ``lean``: the leanest model with the engine's number of events per call (slots, workers
     and locks as counters, one timeout per uncontended call, as the engine's inline path);
     the target is a ratio <= 1.3 (issue 13);
   - ``lean+record``: ``lean`` that also keeps each call's start, end and kind in arrays, as
     the engine must (its call log is what every metric is computed from);
   - ``resource``: the same path on three ``simpy.Resource`` requests per call (7 events per
     call), a heavier reference kept for continuity with earlier numbers.
   Events per call are counted for all four (SimPy's event ids), so the comparison is fair.
2. The reference scenario (50 guests, virt-manager + VDSM + nova polling and the other
   management clients, 1 simulated hour, one fault): seconds per replication per topology;
   the target is < 0.5 s on a 2-core machine.

Run: ``python benchmarks/bench_engine.py [--repeat 5] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import functools
import math
import random
import statistics
import time
from array import array
from pathlib import Path

import simpy
from common import emit

from sim.engine.simulation import Simulation
from sim.experiment.runner import Task, run_one
from sim.model.load import load_experiment, load_system, load_workload
from sim.model.resolved import System, WorkloadModel

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
    EVENTS["resource"] = next(env._eid) / max(1, calls[0])  # type: ignore[attr-defined]
    return calls[0]


def lean(until: float, seed: int, record: bool = False) -> int:
    """The leanest SimPy model of the engine's path with its number of events per call:
    slots, workers and object locks are counters (a caller that finds none waits on an
    event, which the sequential poller never does), and a call is one service timeout.
    ``record``: also keep what the engine keeps of each call (start, end, kind), in arrays."""
    env = simpy.Environment()
    rng = random.Random(seed)
    mu, sigma = math.log(0.001), 0.5
    free = {"slots": 5, "workers": 20}
    locked = [False] * 50
    calls = [0]
    starts, ends, kinds = array("d"), array("d"), array("I")

    def poller():  # type: ignore[no-untyped-def]
        yield env.timeout(rng.uniform(0, 3))
        while True:
            for guest in range(50):
                if free["slots"] == 0 or free["workers"] == 0 or locked[guest]:
                    raise RuntimeError("contention: not expected on this path")
                free["slots"] -= 1
                free["workers"] -= 1
                locked[guest] = True
                t0 = env.now
                yield env.timeout(rng.lognormvariate(mu, sigma))
                locked[guest] = False
                free["workers"] += 1
                free["slots"] += 1
                calls[0] += 1
                if record:
                    starts.append(t0)
                    ends.append(env.now)
                    kinds.append(0)
            yield env.timeout(3)

    env.process(poller())
    env.run(until=until)
    EVENTS["lean+record" if record else "lean"] = next(env._eid) / max(1, calls[0])  # type: ignore[attr-defined]
    return calls[0]


def lean_recording(until: float, seed: int) -> int:
    """:func:`lean` keeping each call's record, as the engine does (its output)."""
    return lean(until, seed, record=True)


EVENTS: dict[str, float] = {}
"""SimPy events scheduled per call in the last run of each model."""


@functools.cache
def _models() -> tuple[System, WorkloadModel]:
    """The engine's models, loaded once (loading is startup, measured on its own)."""
    return load_system(HERE / "models" / "topology.yaml"), load_workload(
        HERE / "models" / "workload.yaml"
    )


def engine(until: float, seed: int) -> int:
    system, workload = _models()
    sim = Simulation(system, workload, None, seed=seed, replication=0)
    calls = len(sim.run(until).calls)
    EVENTS["engine"] = next(sim.env._eid) / max(1, calls)
    return calls


def timed(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    n = fn(*args)
    return time.perf_counter() - t0, n


def overhead(repeat: int, until: float) -> dict[str, float]:
    """Median microseconds per call of each model, and the engine's ratio to each baseline,
    the three run alternately ``repeat`` times."""
    us: dict[str, list[float]] = {"lean": [], "lean+record": [], "resource": [], "engine": []}
    ratios: dict[str, list[float]] = {"lean": [], "lean+record": [], "resource": []}
    _models()
    models = (
        ("lean", lean),
        ("lean+record", lean_recording),
        ("resource", baseline),
        ("engine", engine),
    )
    for i in range(repeat):
        for name, fn in models:
            t, n = timed(fn, until, i)
            us[name].append(1e6 * t / n)
        for name in ratios:
            ratios[name].append(us["engine"][-1] / us[name][-1])
    out = {f"{k}_us_per_call": statistics.median(v) for k, v in us.items()}
    out |= {f"{k}_events_per_call": v for k, v in sorted(EVENTS.items())}
    out |= {f"ratio_to_{k}": statistics.median(v) for k, v in ratios.items()}
    return out


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
    emit(result, args.json)


if __name__ == "__main__":
    main()
