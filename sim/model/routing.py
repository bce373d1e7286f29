"""Where a URI leads: live units after boot, and the first live socket of a route.

A client library tries a route's socket paths in order and takes the first that exists
(LIBVIRT-FACTS 1.2 in the model's terms); a path exists while its socket unit is active.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.model.resolved import System
from sim.schema.topology import SocketUnit


def server_id(daemon: str, server: str) -> str:
    """Graph node id of one server (worker pool) of a daemon."""
    return f"server:{daemon}/{server}"


@dataclass(frozen=True)
class Hop:
    """Where a URI (or a driver's URI) leads: the socket path, its unit, daemon and server."""

    path: str
    socket: str
    daemon: str
    server: str | None

    @property
    def server_node(self) -> str | None:
        """Graph node id of the server reached, or ``None`` when no server has the socket."""
        return None if self.server is None else server_id(self.daemon, self.server)


def live_units(system: System) -> set[str]:
    """Units active after boot: the boot target, external units, and what they pull in.

    A unit is pulled in through ``Requires=``/``BindsTo=``/``Wants=`` of a live unit, or by
    being enabled with a ``WantedBy=`` of a live unit.  A socket that is live keeps its path,
    so calls to it can socket-activate its service.
    """
    topo = system.topology.doc
    live = {topo.boot_target, *topo.external_units}
    if topo.supervisor == "none":
        return live | _started_by_hand(system)
    changed = True
    while changed:
        changed = False
        for unit in topo.units:
            pulled = unit.name in live or (
                unit.name in system.enabled and any(w in live for w in unit.wanted_by)
            )
            new = {unit.name, *unit.requires, *unit.binds_to, *unit.wants} if pulled else set()
            if new - live:
                live |= new
                changed = True
    return live


def _started_by_hand(system: System) -> set[str]:
    """Without a supervisor: the services of the ``manual_start`` daemons and the sockets
    their daemons bind (every UNIX path; a network listener only when enabled), as
    :meth:`sim.engine.systemd.Manager._start_by_hand` does."""
    services = {system.daemons[name].unit for name in system.topology.doc.manual_start}
    sockets = {
        u.name
        for u in system.topology.doc.units
        if isinstance(u, SocketUnit)
        and u.service in services
        and (u.name in system.enabled or all(lst.path.startswith("/") for lst in u.listen))
    }
    return services | sockets


def resolve_route(system: System, uri: str, live: set[str]) -> Hop | None:
    """The first path of ``uri``'s route whose socket unit is live (None: unroutable)."""
    for path in system.routes.get(uri, []):
        socket = system.socket_of_path.get(path)
        if socket is None or socket not in live:
            continue
        daemon = system.daemon_of_socket(socket)
        if daemon is None:
            continue
        server = next((s.name for s in system.daemons[daemon].servers if socket in s.sockets), None)
        return Hop(path, socket, daemon, server)
    return None
