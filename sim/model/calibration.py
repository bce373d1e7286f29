"""Catalog overlays (``kind: catalog-overlay``): measured service times applied to a catalog.

``run --calibration FILE`` (or the experiment's ``calibration:`` key) replaces the service
distribution of every procedure the overlay names, in every catalog of the experiment; the
procedure's provenance becomes the overlay's ``source:``.  An overlay for another catalog,
or naming a procedure the catalog does not have, is an error naming file and line.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from sim.errors import ConfigError, ConfigIssue
from sim.model.loader import Loaded, load_as
from sim.schema import Catalog
from sim.schema.overlay import CatalogOverlay

if TYPE_CHECKING:
    from sim.model.resolved import ExperimentModel


def load_overlay(path: str | Path) -> Loaded[CatalogOverlay]:
    """Load and validate a ``kind: catalog-overlay`` file (not yet applied to any catalog)."""
    return load_as(path, CatalogOverlay)


def apply_overlay(cat: Loaded[Catalog], ov: Loaded[CatalogOverlay]) -> Loaded[Catalog]:
    """The catalog with the overlay's measured service times."""
    issues: list[ConfigIssue] = []
    if ov.doc.catalog != cat.doc.name:
        msg = f"overlay is for catalog {ov.doc.catalog!r}, not {cat.doc.name!r}"
        issues.append(ov.issue(("catalog",), msg))
    known = {p.name for p in cat.doc.procedures}
    for i, mp in enumerate(ov.doc.procedures):
        if mp.name not in known:
            issues.append(
                ov.issue(("procedures", i, "name"), f"no procedure {mp.name!r} in the catalog")
            )
    if issues:
        raise ConfigError(issues)
    measured = {mp.name: mp for mp in ov.doc.procedures}
    procs = []
    for p in cat.doc.procedures:
        found = measured.get(p.name)
        if found is None:
            procs.append(p)
            continue
        mp = found
        source = mp.source or ov.doc.source
        procs.append(
            p.model_copy(update={"service": mp.service, "source": source, "assumption": None})
        )
    return Loaded(cat.doc.model_copy(update={"procedures": procs}), cat.src)


def calibrate_model(model: ExperimentModel, path: str | Path) -> ExperimentModel:
    """Apply one overlay to every catalog the experiment uses (topologies and workload)."""
    from sim.model.resolved import System, WorkloadModel

    ov = load_overlay(path)
    systems = [System(apply_overlay(s.catalog, ov), s.topology) for s in model.systems]
    wl = model.workload
    workload = WorkloadModel(wl.workload, apply_overlay(wl.catalog, ov), wl.imports)
    return replace(model, systems=systems, workload=workload, calibration=Path(path), _resolved={})
