"""The collector: what happened in one replication.

``events`` is the trace (only kept when asked: replay, tests); calls, probe outcomes and
guest fates are always kept, compactly, for the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class CallRecord:
    """One finished client call: start and end times (s), client, procedure, driver, operation,
    outcome and error (``""`` when ok).
    """

    t_start: float
    t_end: float
    client: str
    procedure: str
    driver: str
    operation: str
    ok: bool
    error: str


@dataclass(slots=True)
class Collector:
    """Everything one replication records: the event trace (only with ``keep_trace``), calls,
    unmanageable intervals, probe failures, lost guests, samples and counters.
    """

    keep_trace: bool = False
    events: list[tuple[float, str, str, dict[str, Any]]] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    # per guest: list of [start, end] unmanageable intervals (end None while open)
    unmanageable: dict[str, list[list[float | None]]] = field(default_factory=dict)
    probe_failures: dict[str, list[float]] = field(default_factory=dict)
    # guest name -> (time, reason) when the engine killed it (not a client stop, not a control)
    lost: dict[str, tuple[float, str]] = field(default_factory=dict)
    control_killed: dict[str, float] = field(default_factory=dict)
    # time series of worker-pool occupancy and daemon states, for timelines
    samples: list[tuple[float, str, int, str]] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)

    def emit(self, t: float, subject: str, what: str, **data: Any) -> None:
        """Add ``(t, subject, what, data)`` to the trace when it is kept."""
        if self.keep_trace:
            self.events.append((t, subject, what, data))

    def add(self, counter: str, value: float = 1.0) -> None:
        """Add ``value`` to ``counter``."""
        self.counters[counter] = self.counters.get(counter, 0.0) + value
