"""Input documents as a whole: validate any file by its kind, export the JSON Schemas.

``validate_document`` runs the same loader the engine uses for the file's kind (a topology
with its catalog, a workload with its imports, an experiment with everything it names), so
a file that validates here loads everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import ConfigError
from sim.model.load import load_catalog, load_experiment, load_system, load_workload
from sim.model.loader import KINDS, document_kind, load_as, read_yaml
from sim.schema import ClientProfiles

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class DocumentSummary:
    """A valid document: its kind, name and what it holds."""

    path: str
    kind: str
    name: str
    counts: tuple[tuple[str, int], ...]

    def __str__(self) -> str:
        counts = ", ".join(f"{n} {what}" for what, n in self.counts)
        return f"ok: {self.path} ({self.kind} {self.name}: {counts})"


def _topology(path: Path) -> tuple[str, tuple[tuple[str, int], ...]]:
    s = load_system(path)
    return s.name, (("daemons", len(s.daemons)), ("units", len(s.units)), ("routes", len(s.routes)))


def _workload(path: Path) -> tuple[str, tuple[tuple[str, int], ...]]:
    w = load_workload(path)
    counts = (("guests", len(w.guests)), ("objects", len(w.objects)))
    return w.name, (*counts, ("clients", len(w.workload.doc.clients)))


def _experiment(path: Path) -> tuple[str, tuple[tuple[str, int], ...]]:
    e = load_experiment(path)
    counts = (("topologies", len(e.systems)), ("scenarios", len(e.scenarios)))
    return e.doc.name, (*counts, ("hypotheses", len(e.doc.hypotheses)))


def _catalog(path: Path) -> tuple[str, tuple[tuple[str, int], ...]]:
    c = load_catalog(path).doc
    counts = (("drivers", len(c.drivers)), ("object kinds", len(c.object_kinds)))
    return c.name, (*counts, ("procedures", len(c.procedures)))


def _profiles(path: Path) -> tuple[str, tuple[tuple[str, int], ...]]:
    p = load_as(path, ClientProfiles).doc
    return p.name, (("profiles", len(p.profiles)),)


def _import_map(path: Path) -> tuple[str, tuple[tuple[str, int], ...]]:
    from sim.model.importmap import load_mapping

    m = load_mapping(path).doc
    counts = (("daemons", len(m.daemons)), ("targets", len(m.targets)))
    return m.name, (*counts, ("routes", len(m.routes)))


def _overlay(path: Path) -> tuple[str, tuple[tuple[str, int], ...]]:
    from sim.schema.overlay import CatalogOverlay

    o = load_as(path, CatalogOverlay).doc
    return o.name, (("procedures", len(o.procedures)), ("measurements", len(o.measurements)))


def _realhost(path: Path) -> tuple[str, tuple[tuple[str, int], ...]]:
    from sim.schema.realhost import RealHost

    h = load_as(path, RealHost).doc
    return h.name, (("topologies", len(h.topologies)), ("procedures", len(h.procedures)))


LOADERS: dict[str, Callable[[Path], tuple[str, tuple[tuple[str, int], ...]]]] = {
    "topology": _topology,
    "workload": _workload,
    "experiment": _experiment,
    "catalog": _catalog,
    "client-profiles": _profiles,
    "import-map": _import_map,
    "catalog-overlay": _overlay,
    "realhost": _realhost,
}


def validate_document(path: str | Path) -> DocumentSummary:
    """Load ``path`` as what its ``kind:`` says, with every cross-reference rule.

    Raises
    ------
    ConfigError
        every problem found in the file and in the files it names
    """
    p = Path(path)
    kind = document_kind(read_yaml(p))
    loader = LOADERS.get(kind)
    if loader is None:  # a kind the loader knows but this module does not (yet)
        raise ConfigError.single(p, f"no validator for kind {kind!r}", field="kind")
    name, counts = loader(p)
    return DocumentSummary(str(path), kind, name, counts)


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every document kind, keyed by kind."""
    out = {}
    for kind, model in sorted(KINDS.items()):
        schema = model.model_json_schema()
        out[kind] = {"$schema": JSON_SCHEMA_DIALECT, "$id": f"{kind}.schema.json", **schema}
    return out


def write_json_schemas(out_dir: str | Path) -> list[Path]:
    """Write ``<kind>.schema.json`` for every kind into ``out_dir``; return the paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, schema in json_schemas().items():
        path = folder / f"{kind}.schema.json"
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
