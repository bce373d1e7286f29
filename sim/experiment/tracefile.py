"""Trace files of ``virtchaos replay`` (``traces/*.jsonl``): reading, filtering by subject
and time, and export to the Chrome / Perfetto trace-event format.

A trace line is ``{"t": seconds, "subject": name, "event": kind, ...}``: state changes of
units, daemons and guests, faults and actions; ``call`` lines (one per RPC call, with its
procedure, driver, outcome and latency); ``sample`` lines (a daemon's busy workers and
state every few seconds).

The export (``{"traceEvents": [...]}``, loadable in ui.perfetto.dev or chrome://tracing)
draws one process per kind of subject and one thread per subject: calls are complete
events (``ph: "X"``, ``ts`` and ``dur`` in microseconds) on their client's thread; state
changes, faults and actions are instant events (``ph: "i"``) on their subject's thread; a
daemon's busy workers are a counter (``ph: "C"``).  Subjects are classified from the trace
alone: those with samples are daemons, those that make calls are clients, names with a
unit suffix are units, ``fault[...]`` and ``action[...]`` are faults and actions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from sim.errors import ResultsError

UNIT_SUFFIXES = (".service", ".socket", ".target", ".timer", ".path", ".mount")

PROCESSES = ("daemons", "clients", "units", "guests and others", "faults and actions")
"""The processes of the export, in this order (pid 1, 2, ...)."""


def read_trace(path: str | Path) -> list[dict[str, Any]]:
    """Every line of a trace file, in file order."""
    p = Path(path)
    if not p.is_file():
        raise ResultsError(f"{p}: no such trace file (write one with `virtchaos replay`)")
    out = []
    for number, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ResultsError(f"{p}:{number}: not a trace line ({exc.msg})") from None
        if not isinstance(event, dict) or not {"t", "subject", "event"} <= set(event):
            raise ResultsError(f"{p}:{number}: a trace line has t, subject and event")
        out.append(event)
    return out


def select(
    events: Iterable[dict[str, Any]],
    subjects: Sequence[str] = (),
    t_from: float | None = None,
    t_to: float | None = None,
    kinds: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The events whose subject matches a glob of ``subjects`` (all when none), whose
    event kind is in ``kinds`` (all when none) and whose time is in ``[t_from, t_to]``
    (a call's time is its start), sorted by time (stable)."""
    out = [
        e
        for e in events
        if (not subjects or any(fnmatchcase(str(e["subject"]), p) for p in subjects))
        and (not kinds or e["event"] in kinds)
        and (t_from is None or float(e["t"]) >= t_from)
        and (t_to is None or float(e["t"]) <= t_to)
    ]
    return sorted(out, key=lambda e: float(e["t"]))


def _classify(events: Sequence[dict[str, Any]]) -> dict[str, str]:
    daemons = {e["subject"] for e in events if e["event"] == "sample"}
    clients = {e["subject"] for e in events if e["event"] == "call"} - daemons
    kinds = {}
    for e in events:
        s = str(e["subject"])
        if s in kinds:
            continue
        if s in daemons:
            kinds[s] = "daemons"
        elif s in clients:
            kinds[s] = "clients"
        elif s.endswith(UNIT_SUFFIXES):
            kinds[s] = "units"
        elif s.startswith(("fault[", "action[")):
            kinds[s] = "faults and actions"
        else:
            kinds[s] = "guests and others"
    return kinds


def _us(seconds: float) -> float:
    return round(float(seconds) * 1e6, 3)


def to_chrome(events: Sequence[dict[str, Any]], title: str = "") -> dict[str, Any]:
    """The Chrome / Perfetto trace-event document of ``events`` (see the module doc)."""
    kinds = _classify(events)
    pids = {name: i for i, name in enumerate(PROCESSES, 1)}
    tids: dict[str, int] = {}
    for subject in sorted(kinds, key=lambda s: (pids[kinds[s]], s)):
        tids[subject] = len(tids) + 1
    trace: list[dict[str, Any]] = []
    for name, pid in pids.items():
        if name in kinds.values():
            label = f"{title}: {name}" if title else name
            trace.append({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": label}})
            trace.append(
                {"ph": "M", "name": "process_sort_index", "pid": pid, "args": {"sort_index": pid}}
            )
    for subject, tid in tids.items():
        trace.append(
            {
                "ph": "M",
                "name": "thread_name",
                "pid": pids[kinds[subject]],
                "tid": tid,
                "args": {"name": subject},
            }
        )
    for e in events:
        subject = str(e["subject"])
        pid, tid = pids[kinds[subject]], tids[subject]
        rest = {k: v for k, v in e.items() if k not in ("t", "subject", "event")}
        if e["event"] == "call":
            trace.append(
                {
                    "ph": "X",
                    "name": str(e.get("procedure", "call")),
                    "cat": "call" if e.get("ok", True) else "call,failed",
                    "ts": _us(e["t"]),
                    "dur": round(float(e.get("latency_ms", 0.0)) * 1000, 3),
                    "pid": pid,
                    "tid": tid,
                    "args": rest,
                }
            )
        elif e["event"] == "sample":
            trace.append(
                {
                    "ph": "C",
                    "name": f"{subject} busy workers",
                    "ts": _us(e["t"]),
                    "pid": pid,
                    "args": {"busy": e.get("busy", 0)},
                }
            )
        else:
            trace.append(
                {
                    "ph": "i",
                    "s": "t",
                    "name": str(e["event"]),
                    "cat": kinds[subject],
                    "ts": _us(e["t"]),
                    "pid": pid,
                    "tid": tid,
                    "args": rest,
                }
            )
    return {"traceEvents": trace, "displayTimeUnit": "ms", "otherData": {"title": title}}
