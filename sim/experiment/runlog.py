"""``runs.jsonl``: one JSON object per finished run, read back after an interruption.

Recovery rules (a run cut by ``kill -9`` or a full disk must never lose the others):

- a last line without its newline was cut while being written: it is dropped;
- a line that is not a run record (not JSON, not an object, a field missing or of the wrong
  type) is dropped on its own, with a warning naming its line; the lines after it are kept;
- the runs dropped are simply missing, so ``run`` does them again.

Warnings name the file and line, never the line's content.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

Warn = Callable[[str], None]
Record = dict[str, Any]


def _nowarn(_: str) -> None:
    return None


def problem(rec: Any) -> str | None:
    """Why ``rec`` is not a run record, or None when it is one."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    for key, kind in (("scenario", str), ("topology", str), ("replication", int), ("seed", int)):
        value = rec.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"{key} missing or not a {kind.__name__}"
    metrics = rec.get("metrics")
    if not isinstance(metrics, dict):
        return "metrics missing or not an object"
    for name, value in metrics.items():
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            return f"metric {name} is not a finite number"
    return None


def parse_lines(data: bytes, name: str, warn: Warn) -> list[Record]:
    """The run records in ``data`` (the bytes of a ``runs.jsonl``), broken lines dropped."""
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    out = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            rec: Any = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            why: str | None = "not valid JSON"
        else:
            why = problem(rec)
        if why is not None:
            warn(f"{name}:{number}: {why}: line dropped, that run is done again")
            continue
        out.append(rec)
    if tail.strip():
        warn(
            f"{name}:{len(lines) + 1}: the last line is incomplete (an interrupted write): "
            "dropped, that run is done again"
        )
    return out


def read_runs(path: Path, warn: Warn | None = None) -> list[Record]:
    """Every valid run record of ``path`` (none when it is absent), in file order."""
    if not path.is_file():
        return []
    return parse_lines(path.read_bytes(), str(path), warn or _nowarn)


def record_line(rec: Record) -> str:
    """One line of ``runs.jsonl`` (strict JSON: a non-finite number is an error)."""
    return json.dumps(rec, sort_keys=True, allow_nan=False) + "\n"


def metric_value(rec: Mapping[str, Any], metric: str) -> float | None:
    """A run's value of ``metric``: None when undefined, 0 when the run has no such metric
    (a per-driver counter that never counted)."""
    if metric in rec.get("undefined", {}):
        return None
    value: float | None = rec["metrics"].get(metric, 0.0)
    return value
