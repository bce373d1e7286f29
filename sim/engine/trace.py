"""The collector: what happened in one replication.

``events`` is the trace (only kept when asked: replay, tests); calls, probe outcomes and
guest fates are always kept, compactly, for the metrics.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
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


CallKind = tuple[str, str, str, str, bool, str]
"""What a call record says besides its times: client, procedure, driver, operation, ok, error."""


class CallLog:
    """The finished calls of one replication, stored by column: two float arrays (start and end
    times) and an index into a table of the distinct *kinds* (client, procedure, driver,
    operation, outcome, error), 20 bytes a call instead of one object each (which the cyclic
    garbage collector would also have to walk).  Iterating yields :class:`CallRecord` objects,
    in the order the calls ended.
    """

    __slots__ = ("_index", "kind", "kinds", "ok_kinds", "t_end", "t_start")

    def __init__(self, records: Iterable[CallRecord] = ()) -> None:
        self.t_start = array("d")
        self.t_end = array("d")
        self.kind = array("I")
        self.kinds: list[CallKind] = []
        self._index: dict[CallKind, int] = {}
        # the kind of a success by (client, procedure): the engine's writer looks it up
        # there first (a procedure's driver and operation are fixed within a run)
        self.ok_kinds: dict[tuple[str, str], int] = {}
        for r in records:
            self.add(
                r.t_start, r.t_end, r.client, r.procedure, r.driver, r.operation, r.ok, r.error
            )

    def add(
        self,
        t_start: float,
        t_end: float,
        client: str,
        procedure: str,
        driver: str,
        operation: str,
        ok: bool,
        error: str,
    ) -> None:
        """Append one finished call."""
        self.add_kind(t_start, t_end, self.kind_of(client, procedure, driver, operation, ok, error))

    def kind_of(
        self, client: str, procedure: str, driver: str, operation: str, ok: bool, error: str
    ) -> int:
        """The index of a kind of call in :attr:`kinds` (added on first use), for
        :meth:`add_kind`."""
        key = (client, procedure, driver, operation, ok, error)
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self.kinds)
            self.kinds.append(key)
        return i

    def add_kind(self, t_start: float, t_end: float, kind: int) -> None:
        """Append one finished call of a kind from :meth:`kind_of`."""
        self.t_start.append(t_start)
        self.t_end.append(t_end)
        self.kind.append(kind)

    def __len__(self) -> int:
        return len(self.kind)

    def __iter__(self) -> Iterator[CallRecord]:
        kinds = self.kinds
        for t0, t1, i in zip(self.t_start, self.t_end, self.kind, strict=True):
            yield CallRecord(t0, t1, *kinds[i])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CallLog):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CallLog({len(self)} calls, {len(self.kinds)} kinds)"


@dataclass(slots=True)
class Collector:
    """Everything one replication records: the event trace (only with ``keep_trace``), calls,
    unmanageable intervals, probe failures, lost guests, samples and counters.
    """

    keep_trace: bool = False
    events: list[tuple[float, str, str, dict[str, Any]]] = field(default_factory=list)
    calls: CallLog = field(default_factory=CallLog)
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
