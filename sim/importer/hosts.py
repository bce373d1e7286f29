"""Which mapped daemons a host has: installed service units, their socket units, and the
conflicts between daemons that cannot both be modelled.

A daemon is *installed* when the unit tree holds its service unit.  Its sockets are the
socket units whose ``Service=`` (or, without it, the service of the same name) is that
unit.  Two installed daemons *conflict* when they host the same driver or listen on the same
path (e.g. an old and a new daemon for the same job, both installed, one enabled).  In each
conflict the daemons with no enabled unit are left out; a conflict that remains is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.errors import ConfigError
from sim.importer.directives import Resolved, resolve
from sim.importer.presets import Decision
from sim.importer.units import UnitTree
from sim.schema.importmap import DaemonMap, ImportMap


@dataclass
class HostDaemon:
    """A mapped daemon found on the host, with its resolved units."""

    spec: DaemonMap
    index: int
    service: Resolved
    sockets: list[Resolved] = field(default_factory=list)

    def units(self) -> list[Resolved]:
        """The daemon's service unit, then its socket units."""
        return [self.service, *self.sockets]


def socket_service(sock: Resolved) -> str:
    """The service a socket activates: ``Service=`` or the service of the same name."""
    explicit = sock.scalar("Service")
    return explicit.value if explicit else sock.unit.name.removesuffix(".socket") + ".service"


def find_daemons(tree: UnitTree, mapping: ImportMap, notes: list[str]) -> list[HostDaemon]:
    """The mapped daemons whose service unit is installed (masked ones are noted, skipped)."""
    found: dict[str, HostDaemon] = {}
    for i, d in enumerate(mapping.daemons):
        if d.unit not in tree:
            continue
        unit = tree.load(d.unit)
        if unit.masked:
            notes.append(
                f"{unit.path}: {d.unit} is masked (-> /dev/null): daemon {d.name} left out"
            )
            continue
        found[d.unit] = HostDaemon(d, i, resolve(unit))
    for name in tree.names():
        if not name.endswith(".socket"):
            continue
        unit = tree.load(name)
        if unit.masked:
            notes.append(f"{unit.path}: {name} is masked (-> /dev/null): left out")
            continue
        sock = resolve(unit)
        owner = found.get(socket_service(sock))
        if owner is not None:
            owner.sockets.append(sock)
    return list(found.values())


def _enabled(d: HostDaemon, decisions: dict[str, Decision]) -> bool:
    return any(decisions[u.unit.name].enabled for u in d.units())


def _claims(d: HostDaemon, listens: dict[str, list[str]]) -> set[str]:
    keys = {f"driver {drv}" for drv in d.spec.drivers}
    return keys | {f"path {p}" for s in d.sockets for p in listens[s.unit.name]}


def drop_conflicts(
    daemons: list[HostDaemon],
    listens: dict[str, list[str]],
    decisions: dict[str, Decision],
    notes: list[str],
) -> list[HostDaemon]:
    """Leave out disabled daemons that conflict with another one; error if a conflict stays.

    First every daemon with no enabled unit that shares a claim (a driver, a listening
    path) with a daemon that has one is left out.  Among daemons that still conflict and
    are all disabled, the one hosting the fewest drivers (then the first in the mapping) is
    kept.  Two enabled daemons with a shared claim are an error.  ``listens`` maps a socket
    unit name to the model paths it listens on.
    """
    claims = {d.spec.name: _claims(d, listens) for d in daemons}
    enabled = [d for d in daemons if _enabled(d, decisions)]
    kept = []
    for d in daemons:
        rivals = [
            e.spec.name for e in enabled if e is not d and claims[d.spec.name] & claims[e.spec.name]
        ]
        if d not in enabled and rivals:
            notes.append(
                f"daemon {d.spec.name} ({d.service.unit.path}) is installed but none of its "
                f"units is enabled, and it conflicts with {', '.join(rivals)}: left out"
            )
        else:
            kept.append(d)
    out: list[HostDaemon] = []
    for d in sorted(kept, key=lambda d: (d not in enabled, len(d.spec.drivers), d.index)):
        rival = next((o for o in out if claims[o.spec.name] & claims[d.spec.name]), None)
        if rival is None:
            out.append(d)
        elif d in enabled:
            shared = ", ".join(sorted(claims[d.spec.name] & claims[rival.spec.name]))
            msg = (
                f"daemons {rival.spec.name} and {d.spec.name} are both enabled and both claim "
                f"{shared}; disable one in a preset"
            )
            raise ConfigError.single(d.service.unit.path, msg)
        else:
            notes.append(
                f"daemon {d.spec.name} is not enabled and conflicts with {rival.spec.name}, "
                "which is not enabled either and hosts fewer drivers: left out"
            )
    return sorted(out, key=lambda d: d.index)
