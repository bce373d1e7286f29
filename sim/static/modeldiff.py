"""Differences between two topologies: dependency edges, policies, limits, preset, routes,
and the change in static blast radius (:mod:`sim.static.analysis`) per daemon and driver.

Comparison is semantic: list order, descriptions and provenance do not count, so a reordered
or re-commented unit file gives no difference.  A change is marked ``risk`` when it can
widen a fault's reach:

- a new ``Requires=``/``BindsTo=`` edge from one daemon's unit to another daemon's unit
  (the other's stop or failure now takes this one down);
- a driver moved into a daemon that hosts other drivers (shared process and worker pool);
- a weaker restart policy (``Restart=`` removed, a longer ``RestartSec``, a tighter start
  limit), a ``KillMode`` other than ``process`` on a daemon whose drivers host guests;
- a smaller worker pool, client or request limit, trigger limit;
- a unit no longer enabled by the preset, a service or socket unit removed;
- a static blast radius that grows (more guests reached, or more guests' lives at risk).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, get_args

from sim.model.checks import UNIT_REFS
from sim.model.resolved import System, WorkloadModel
from sim.schema.importmap import ServerField
from sim.schema.topology import ServiceUnit, SocketUnit
from sim.static.analysis import Analysis, TargetReach, analyze

EDGE_KINDS = (*UNIT_REFS, "socket->service", "daemon->driver", "daemon->unit", "server->socket")
POLICY_FIELDS = (
    "restart",
    "restart_sec",
    "start_limit_interval_s",
    "start_limit_burst",
    "kill_mode",
    "notify",
    "timeout_start_s",
)
DAEMON_FIELDS = ("idle_timeout_s", "start_cpu_ms", "stop_grace_s", "roles")
POOL_FIELDS: tuple[str, ...] = get_args(ServerField)
SOCKET_FIELDS = ("remove_on_stop", "trigger_limit_interval_s", "trigger_limit_burst")
SMALLER_IS_RISK = {
    "max_workers",
    "prio_workers",
    "max_clients",
    "max_client_requests",
    "trigger_limit_burst",
    "start_limit_burst",
}
LARGER_IS_RISK = {"restart_sec", "start_limit_interval_s"}


@dataclass(frozen=True)
class Change:
    """One difference.  ``section``: edges, units, daemons, policies, limits, sockets,
    routes or preset; ``kind``: the edge kind or field; ``change``: added, removed or
    changed; ``risk``: why it may widen the blast radius (empty when it does not)."""

    section: str
    kind: str
    subject: str
    change: str
    old: Any = None
    new: Any = None
    risk: str = ""

    def describe(self) -> str:
        """The change in one line, without its risk mark."""
        if self.change == "changed":
            return f"{self.subject}: {self.kind} {_fmt(self.old)} -> {_fmt(self.new)}"
        return f"{self.change} {self.kind} {self.subject}"

    def __str__(self) -> str:
        mark = "! " if self.risk else "  "
        return mark + self.describe() + (f"  [{self.risk}]" if self.risk else "")


@dataclass(frozen=True)
class BlastChange:
    """The static reach of one daemon or driver fault in A and in B."""

    target: str
    mode: str
    old_guests: int | None
    new_guests: int | None
    old_lives: int | None
    new_lives: int | None

    @property
    def risk(self) -> str:
        """``"blast radius grows"`` when B reaches more guests, or puts more guest lives at risk,
        than A; else empty (a target missing in one counts as 0).
        """
        grew = (self.new_guests or 0) > (self.old_guests or 0)
        grew = grew or (self.new_lives or 0) > (self.old_lives or 0)
        return "blast radius grows" if grew else ""


@dataclass(frozen=True)
class ModelDiff:
    """Everything that differs from topology ``a`` to topology ``b`` under a workload of
    ``guests`` guests.
    """

    a: str
    b: str
    changes: tuple[Change, ...]
    blast: tuple[BlastChange, ...]
    guests: int

    @property
    def risks(self) -> list[str]:
        """One line per change or blast-radius change that may widen a fault's reach."""
        return [f"{c.describe()}: {c.risk}" for c in self.changes if c.risk] + [
            f"{b.target} ({b.mode}): {b.risk}" for b in self.blast if b.risk
        ]


def _fmt(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


# ---------------------------------------------------------------------------- ownership
def _owner(system: System, unit: str) -> str | None:
    """The daemon a unit belongs to (a service's daemon, a socket's service's daemon)."""
    u = system.units.get(unit)
    if isinstance(u, SocketUnit):
        u = system.units.get(u.service)
    if isinstance(u, ServiceUnit):
        return u.daemon
    return None


def edges(system: System) -> set[tuple[str, str, str]]:
    """(kind, from, to) for every dependency edge of the topology."""
    out = set()
    for u in system.topology.doc.units:
        for kind in UNIT_REFS:
            out |= {(kind, u.name, other) for other in getattr(u, kind)}
        if isinstance(u, SocketUnit):
            out.add(("socket->service", u.name, u.service))
    for d in system.topology.doc.daemons:
        out |= {("daemon->driver", d.name, drv) for drv in d.drivers}
        out.add(("daemon->unit", d.name, d.unit))
        for s in d.servers:
            out |= {("server->socket", f"{d.name}/{s.name}", sock) for sock in s.sockets}
    return out


def _edge_risk(a: System, b: System, kind: str, src: str, dst: str) -> str:
    if kind in ("requires", "binds_to"):
        mine, theirs = _owner(b, src), _owner(b, dst)
        if mine is not None and theirs is not None and mine != theirs:
            return f"{mine} now stops when {theirs}'s {dst} stops or fails"
    if kind == "daemon->driver":
        others = sorted(set(b.daemons[src].drivers) - {dst})
        was = a.host_of.get(dst)
        if others and was != src:
            return f"{dst} now shares {src}'s process and worker pool with {', '.join(others)}"
    return ""


def _edge_changes(a: System, b: System) -> list[Change]:
    ea, eb = edges(a), edges(b)
    out = []
    for kind, src, dst in sorted(eb - ea):
        risk = _edge_risk(a, b, kind, src, dst)
        out.append(Change("edges", kind, f"{src} -> {dst}", "added", risk=risk))
    out += [Change("edges", k, f"{s} -> {d}", "removed") for k, s, d in sorted(ea - eb)]
    return out


# ---------------------------------------------------------------------------- fields
def _field_risk(system: System, subject: str, fld: str, old: Any, new: Any) -> str:
    if fld in SMALLER_IS_RISK and isinstance(old, int | float) and isinstance(new, int | float):
        return f"{fld} shrinks" if new < old else ""
    if fld in LARGER_IS_RISK and isinstance(old, int | float) and isinstance(new, int | float):
        return f"{fld} grows" if new > old else ""
    if fld == "restart" and new == "no" and old != "no":
        return "no restart after a crash"
    if fld == "kill_mode" and old in ("process", "none") and new in ("control-group", "mixed"):
        daemon = _owner(system, subject)
        hosts = daemon and any(
            system.drivers[d].hosts_guests
            for d in system.daemons[daemon].drivers
            if d in system.drivers
        )
        return "a daemon restart kills its guests' processes" if hosts else ""
    return ""


def _compare_fields(
    section: str, subject: str, fields: Iterable[str], old: Any, new: Any, system: System
) -> list[Change]:
    out = []
    for fld in fields:
        va, vb = getattr(old, fld), getattr(new, fld)
        if isinstance(va, list):
            va, vb = sorted(va), sorted(vb)
        if va != vb:
            risk = _field_risk(system, subject, fld, va, vb)
            out.append(Change(section, fld, subject, "changed", va, vb, risk))
    return out


def _unit_changes(a: System, b: System) -> list[Change]:
    out = []
    for name in sorted(set(a.units) | set(b.units)):
        ua, ub = a.units.get(name), b.units.get(name)
        if ua is None or ub is None:
            kind = (ua or ub).type  # type: ignore[union-attr]
            risk = "" if ub is not None or kind == "target" else f"{kind} unit removed"
            out.append(Change("units", kind, name, "added" if ua is None else "removed", risk=risk))
        elif ua.type != ub.type:
            out.append(Change("units", "type", name, "changed", ua.type, ub.type))
        elif isinstance(ua, ServiceUnit) and isinstance(ub, ServiceUnit):
            out += _compare_fields("policies", name, POLICY_FIELDS, ua, ub, b)
        elif isinstance(ua, SocketUnit) and isinstance(ub, SocketUnit):
            out += _compare_fields("sockets", name, SOCKET_FIELDS, ua, ub, b)
            la = sorted((x.path, x.mode or "") for x in ua.listen)
            lb = sorted((x.path, x.mode or "") for x in ub.listen)
            if la != lb:
                old = [f"{p} {m}".strip() for p, m in la]
                new = [f"{p} {m}".strip() for p, m in lb]
                out.append(Change("sockets", "listen", name, "changed", old, new))
    ext_a, ext_b = set(a.topology.doc.external_units), set(b.topology.doc.external_units)
    out += [Change("units", "external", n, "added") for n in sorted(ext_b - ext_a)]
    out += [Change("units", "external", n, "removed") for n in sorted(ext_a - ext_b)]
    return out


def _daemon_changes(a: System, b: System) -> list[Change]:
    out = []
    for name in sorted(set(a.daemons) | set(b.daemons)):
        da, db = a.daemons.get(name), b.daemons.get(name)
        if da is None or db is None:
            out.append(Change("daemons", "daemon", name, "added" if da is None else "removed"))
            continue
        out += _compare_fields("daemons", name, DAEMON_FIELDS, da, db, b)
        servers_a, servers_b = {s.name: s for s in da.servers}, {s.name: s for s in db.servers}
        for s in sorted(set(servers_a) | set(servers_b)):
            subject = f"{name}/{s}"
            if s not in servers_a or s not in servers_b:
                change = "added" if s not in servers_a else "removed"
                out.append(Change("limits", "server", subject, change))
                continue
            out += _compare_fields("limits", subject, POOL_FIELDS, servers_a[s], servers_b[s], b)
    return out


def _route_changes(a: System, b: System) -> list[Change]:
    out = []
    for uri in sorted(set(a.routes) | set(b.routes)):
        ra, rb = a.routes.get(uri), b.routes.get(uri)
        if ra != rb:
            change = "added" if ra is None else "removed" if rb is None else "changed"
            out.append(Change("routes", "route", uri, change, ra, rb))
    return out


def _preset_changes(a: System, b: System) -> list[Change]:
    out = []
    for name in sorted(set(a.units) & set(b.units)):
        ea, eb = name in a.enabled, name in b.enabled
        if ea != eb:
            state = {True: "enabled", False: "disabled"}
            risk = "no longer enabled at boot" if ea else ""
            out.append(Change("preset", "state", name, "changed", state[ea], state[eb], risk))
    return out


def compare_models(a: System, b: System) -> list[Change]:
    """Every semantic difference between two topologies (no workload needed)."""
    return (
        _edge_changes(a, b)
        + _unit_changes(a, b)
        + _daemon_changes(a, b)
        + _route_changes(a, b)
        + _preset_changes(a, b)
    )


# ---------------------------------------------------------------------------- blast radius
def _reaches(an: Analysis) -> dict[str, TargetReach]:
    return {f"{t.kind}:{t.name}": t for t in (*an.daemons, *an.drivers)}


def blast_changes(an_a: Analysis, an_b: Analysis) -> list[BlastChange]:
    """Per daemon and driver target and fault mode, where the reach differs."""
    ra, rb = _reaches(an_a), _reaches(an_b)
    out = []
    for key in sorted(set(ra) | set(rb)):
        ta, tb = ra.get(key), rb.get(key)
        for mode in ("crash", "hang"):
            a = getattr(ta, mode) if ta else None
            b = getattr(tb, mode) if tb else None
            row = BlastChange(
                key,
                mode,
                len(a.guests) if a else None,
                len(b.guests) if b else None,
                len(a.lives) if a else None,
                len(b.lives) if b else None,
            )
            if (row.old_guests, row.old_lives) != (row.new_guests, row.new_lives):
                out.append(row)
    return out


def diff_models(a: System, b: System, workload: WorkloadModel) -> ModelDiff:
    """Structure and static blast-radius differences from ``a`` to ``b``."""
    blast = blast_changes(analyze(a, workload), analyze(b, workload))
    return ModelDiff(
        a.name, b.name, tuple(compare_models(a, b)), tuple(blast), len(workload.guests)
    )


# ---------------------------------------------------------------------------- rendering
SECTIONS = (
    ("edges", "Dependency edges"),
    ("units", "Units"),
    ("daemons", "Daemons"),
    ("policies", "Restart and start policies"),
    ("limits", "Pool sizes and limits"),
    ("sockets", "Sockets"),
    ("routes", "Routes"),
    ("preset", "Preset enablement"),
)


def _blast_cell(old: int | None, new: int | None) -> str:
    return f"{'-' if old is None else old} -> {'-' if new is None else new}"


def to_text(d: ModelDiff) -> str:
    """A plain-text report: changes by section (``!`` marks a risk), then blast radius."""
    lines = [f"diff {d.a} -> {d.b}: {len(d.changes)} changes, {len(d.risks)} risks"]
    for key, title in SECTIONS:
        rows = [c for c in d.changes if c.section == key]
        if rows:
            lines += ["", f"{title}:"] + [f"  {c}" for c in rows]
    if d.blast:
        lines += ["", f"Static blast radius (guests reached, of {d.guests}; lives at risk):"]
        for b in d.blast:
            mark = "! " if b.risk else "  "
            lines.append(
                f"  {mark}{b.target} {b.mode}: guests {_blast_cell(b.old_guests, b.new_guests)}, "
                f"lives {_blast_cell(b.old_lives, b.new_lives)}"
            )
    else:
        lines += ["", "Static blast radius: unchanged for every daemon and driver."]
    return "\n".join(lines) + "\n"


def _md_value(value: Any) -> str:
    return "" if value is None else f"`{_fmt(value)}`"


def to_markdown(d: ModelDiff) -> str:
    """A Markdown report for a review comment."""
    risk_count = len(d.risks)
    head = (
        "no risk found"
        if not risk_count
        else f"**{risk_count} change(s) may widen the blast radius**"
    )
    lines = [f"### Model diff `{d.a}` -> `{d.b}`: {len(d.changes)} change(s), {head}", ""]
    if risk_count:
        lines += [f"- :warning: {r}" for r in d.risks] + [""]
    edges = [c for c in d.changes if c.section == "edges"]
    if edges:
        lines += ["#### Dependency edges", "", "| | kind | edge | risk |", "|---|---|---|---|"]
        lines += [
            f"| {'+' if c.change == 'added' else '-'} | {c.kind} | `{c.subject}` | {c.risk} |"
            for c in edges
        ]
        lines.append("")
    others = [c for c in d.changes if c.section != "edges"]
    if others:
        lines += ["#### Settings", "", "| section | subject | setting | A | B | risk |"]
        lines.append("|---|---|---|---|---|---|")
        for c in others:
            old = (
                _md_value(c.old)
                if c.change == "changed"
                else ("" if c.change == "added" else "present")
            )
            new = (
                _md_value(c.new)
                if c.change == "changed"
                else ("" if c.change == "removed" else "present")
            )
            lines.append(f"| {c.section} | `{c.subject}` | {c.kind} | {old} | {new} | {c.risk} |")
        lines.append("")
    lines += [f"#### Static blast radius (of {d.guests} guests)", ""]
    if d.blast:
        lines += ["| target | fault | guests reached | lives at risk | |", "|---|---|---|---|---|"]
        lines += [
            f"| `{b.target}` | {b.mode} | {_blast_cell(b.old_guests, b.new_guests)} | "
            f"{_blast_cell(b.old_lives, b.new_lives)} | {':warning:' if b.risk else ''} |"
            for b in d.blast
        ]
    else:
        lines.append("Unchanged for every daemon and driver.")
    return "\n".join(lines) + "\n"
