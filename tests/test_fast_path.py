"""The inline fast path (``rpc.begin_plain``/``end_plain``) is an optimisation only: with it
turned off every call takes ``server_job``, and each replication must produce the same event
trace, the same call log, the same metrics and the same number of SimPy events.

The experiments are those whose faults hit the fast path's conditions: a hung driver, a
crashed daemon (connections dropped mid-call), a crash loop, a hung guest monitor.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.engine import rpc
from sim.experiment.runner import Task, run_one
from sim.model.load import load_experiment

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ["nodedev-hang", "qemu-daemon-crash", "crash-loop", "guest-monitor-hang"]


def _run(model, task, fast: bool, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(rpc, "FAST_PATH", fast)
    record, sim = run_one(model, task, model.doc.seed, keep_trace=True)
    c = sim.collector
    return record, list(c.calls), c.events, c.unmanageable, c.lost, next(sim.env._eid)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_fast_path_changes_nothing(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_experiment(ROOT / "experiments" / f"{name}.yaml")
    scenario = next(s.name for s in model.doc.scenarios if s.faults)
    for system in model.systems:
        task = Task(scenario, system.name, 0)
        fast = _run(model, task, True, monkeypatch)
        general = _run(model, task, False, monkeypatch)
        assert len(fast[1]) > 100, "too few calls to compare"
        for got, want, what in zip(
            fast,
            general,
            ("record", "calls", "trace", "unmanageable", "lost", "events"),
            strict=True,
        ):
            assert got == want, f"{name}/{system.name}: {what} differs"
