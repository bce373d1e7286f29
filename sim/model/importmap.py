"""Loading an import mapping and the rules its schema alone cannot check."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from sim.errors import ConfigError, ConfigIssue
from sim.model.load import load_catalog
from sim.model.loader import Loaded, load_as
from sim.schema.importmap import ImportMap


def check_mapping(mapping: Loaded[ImportMap]) -> list[ConfigIssue]:
    """Drivers must be catalog drivers; a route's sockets must belong to a mapped server."""
    doc = mapping.doc
    drivers = {d.name for d in load_catalog(mapping.resolve(doc.catalog)).doc.drivers}
    out = []
    for i, d in enumerate(doc.daemons):
        for j, drv in enumerate(d.drivers):
            if drv not in drivers:
                msg = f"unknown driver {drv!r} (not in the catalog)"
                out.append(mapping.issue(("daemons", i, "drivers", j), msg))
    patterns = [p for d in doc.daemons for s in d.servers for p in s.sockets]
    for i, r in enumerate(doc.routes):
        for j, sock in enumerate(r.sockets):
            if not any(fnmatch.fnmatchcase(sock, p) for p in patterns):
                msg = f"socket {sock!r} belongs to no server of a mapped daemon"
                out.append(mapping.issue(("routes", i, "sockets", j), msg))
    return out


def load_mapping(path: str | Path) -> Loaded[ImportMap]:
    """Load and check a mapping file; every problem at once, with file and line."""
    mapping = load_as(path, ImportMap)
    issues = check_mapping(mapping)
    if issues:
        raise ConfigError(issues)
    return mapping
