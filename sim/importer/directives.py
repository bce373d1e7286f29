"""What the assignments of a unit mean: list directives, scalars, time spans, booleans.

Rules (systemd.unit(5), systemd.service(5), systemd.socket(5), systemd.time(7)):

- list-valued directives (dependencies, ``Also=``, ``WantedBy=``, ``ListenStream=``,
  ``Environment=``, ``EnvironmentFile=``, ``ExecStart=``) accumulate over repeated
  assignments, main file first, then drop-ins; an empty assignment resets the list;
- any other directive: the last assignment wins;
- ``Documentation=`` has no effect on a model and is accepted silently;
- every other directive this module does not know is returned as *unsupported*, with file
  and line, never dropped silently.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from sim.errors import ConfigError
from sim.importer.units import Assignment, UnitFile

DEPENDENCIES = {
    "Requires": "requires",
    "BindsTo": "binds_to",
    "Wants": "wants",
    "After": "after",
    "Before": "before",
    "Conflicts": "conflicts",
}
"""[Unit] dependency directives -> topology field."""

INSTALL = {"WantedBy": "wanted_by", "Also": "also"}

LISTS: dict[str, set[str]] = {
    "Unit": set(DEPENDENCIES),
    "Install": set(INSTALL),
    "Socket": {"ListenStream"},
    "Service": {"Environment", "EnvironmentFile", "ExecStart"},
}
"""Directives whose values accumulate (an empty assignment resets them)."""

SCALARS: dict[str, dict[str, set[str]]] = {
    "service": {
        "Unit": {"Description", "StartLimitIntervalSec", "StartLimitBurst"},
        "Service": {
            "Type",
            "Restart",
            "RestartSec",
            "KillMode",
            "TimeoutStartSec",
            "TimeoutSec",
            "StartLimitInterval",
            "StartLimitBurst",
        },
    },
    "socket": {
        "Unit": {"Description"},
        "Socket": {
            "Service",
            "SocketMode",
            "RemoveOnStop",
            "TriggerLimitIntervalSec",
            "TriggerLimitBurst",
            "Accept",
        },
    },
    "target": {"Unit": {"Description"}},
}
"""Single-valued directives the importer reads, per unit type and section."""

NO_EFFECT = {("Unit", "Documentation")}
"""Directives that cannot change a model (documentation only)."""

WORD_SPLIT = {"Requires", "BindsTo", "Wants", "After", "Before", "Conflicts", "WantedBy", "Also"}


@dataclass(frozen=True)
class Unsupported:
    """A directive (or value) the importer does not model, kept for the report."""

    where: str
    unit: str
    directive: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.unit}: {self.directive} ({self.reason})"


@dataclass
class Resolved:
    """A unit's directives after accumulation, resets and overrides."""

    unit: UnitFile
    lists: dict[str, list[tuple[str, Assignment]]] = field(default_factory=dict)
    scalars: dict[str, Assignment] = field(default_factory=dict)
    unsupported: list[Unsupported] = field(default_factory=list)
    has_install: bool = False

    def words(self, key: str) -> list[str]:
        """Values of a list directive, duplicates removed, in first-seen order."""
        seen: dict[str, None] = {}
        for value, _ in self.lists.get(key, []):
            seen.setdefault(value, None)
        return list(seen)

    def scalar(self, key: str) -> Assignment | None:
        """The assignment in force for scalar directive ``key``, or ``None`` when unset."""
        return self.scalars.get(key)

    def lines(self, key: str) -> list[Assignment]:
        """The assignments in force for list directive ``key`` (after resets), in order."""
        return [a for _, a in self.lists.get(key, [])]


def _split(a: Assignment) -> list[str]:
    if a.key in WORD_SPLIT:
        return a.value.split()
    if a.key == "Environment":
        try:
            return shlex.split(a.value)
        except ValueError as exc:
            raise ConfigError.single(a.file, f"Environment=: {exc}", line=a.line) from None
    return [a.value]


def resolve(unit: UnitFile) -> Resolved:
    """Apply the accumulation and override rules to a unit's assignments."""
    out = Resolved(unit)
    known = SCALARS.get(unit.type, {})
    for a in unit.assignments:
        if a.section == "Install":
            out.has_install = True
        if a.key in LISTS.get(a.section, set()):
            if a.value == "":
                out.lists[a.key] = []
            else:
                out.lists.setdefault(a.key, []).extend((w, a) for w in _split(a))
        elif a.key in known.get(a.section, set()):
            out.scalars[a.key] = a
        elif (a.section, a.key) not in NO_EFFECT:
            what = f"[{a.section}] {a.key}={a.value}"
            out.unsupported.append(Unsupported(a.where, unit.name, what, "not modelled"))
    return out


# ---------------------------------------------------------------------------- values
_TIME_UNITS = {
    "us": 1e-6,
    "usec": 1e-6,
    "ms": 1e-3,
    "msec": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}
_SPAN_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


def time_span(a: Assignment) -> float:
    """A systemd time span in seconds (``100ms``, ``1min 30s``; a bare number is seconds)."""
    text = a.value.strip().lower()
    pos, total = 0, 0.0
    text = text.replace(" ", "")
    if not text:
        raise _bad(a, "a time span")
    while pos < len(text):
        m = _SPAN_RE.match(text, pos)
        if m is None or m.group(2) not in {**_TIME_UNITS, "": 1.0}:
            raise _bad(a, "a time span such as 100ms, 5s or 1min 30s")
        total += float(m.group(1)) * _TIME_UNITS.get(m.group(2), 1.0)
        pos = m.end()
    return total


def integer(a: Assignment) -> int:
    """The assignment's value as an integer; ConfigError at its file and line otherwise."""
    try:
        return int(a.value)
    except ValueError:
        raise _bad(a, "an integer") from None


def boolean(a: Assignment) -> bool:
    """The assignment's value as a boolean (systemd's yes/no spellings); ConfigError otherwise."""
    value = a.value.lower()
    if value in ("1", "yes", "y", "true", "t", "on"):
        return True
    if value in ("0", "no", "n", "false", "f", "off"):
        return False
    raise _bad(a, "a boolean (yes/no)")


def _bad(a: Assignment, expected: str) -> ConfigError:
    return ConfigError.single(a.file, f"{a.key}= must be {expected}, got {a.value!r}", line=a.line)
