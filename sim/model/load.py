"""Loading models: a file in, a checked and resolved model out.

Each loader reads its document, the documents it names, runs every rule of
:mod:`sim.model.checks` and raises one :class:`~sim.errors.ConfigError` with every problem
found (file, line, field).  An experiment's scenarios are expanded
(:mod:`sim.model.scenarios`) and its catalog overlay applied (:mod:`sim.model.calibration`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sim.errors import ConfigError, ConfigIssue
from sim.model.calibration import calibrate_model
from sim.model.checks import check_catalog, check_experiment, check_topology, check_workload
from sim.model.loader import Loaded, load_as
from sim.model.resolved import ExperimentModel, System, WorkloadModel
from sim.model.scenarios import expand
from sim.schema import Catalog, ClientProfiles, Experiment, Topology, Workload


def load_catalog(path: str | Path) -> Loaded[Catalog]:
    """Load a catalog and run every catalog rule; raise ConfigError with all issues."""
    cat = load_as(path, Catalog)
    _raise(check_catalog(cat))
    return cat


def load_system(path: str | Path) -> System:
    """Load a topology and the catalog it names; run every topology rule."""
    topo = load_as(path, Topology)
    cat = load_catalog(topo.resolve(topo.doc.catalog))
    system = System(cat, topo)
    _raise(check_topology(system))
    return system


def load_workload(path: str | Path) -> WorkloadModel:
    """Load a workload, its catalog and imported client profiles; run every workload rule."""
    wl = load_as(path, Workload)
    cat = load_catalog(wl.resolve(wl.doc.catalog))
    imports = [load_as(wl.resolve(p), ClientProfiles) for p in wl.doc.imports]
    model = WorkloadModel(wl, cat, imports)
    _raise(check_workload(model))
    return model


def load_experiment(path: str | Path, calibration: str | Path | None = None) -> ExperimentModel:
    """Load an experiment and everything it names; apply a catalog overlay when one is
    given (``calibration``, else the experiment's ``calibration:`` key)."""
    exp = load_as(path, Experiment)
    errors: list[ConfigIssue] = []
    systems = []
    for i, ref in enumerate(exp.doc.topologies):
        try:
            systems.append(load_system(exp.resolve(ref)))
        except ConfigError as err:
            errors += err.issues
            errors.append(exp.issue(("topologies", i), f"topology {ref!r} is invalid"))
    try:
        workload = load_workload(exp.resolve(exp.doc.workload))
    except ConfigError as err:
        errors += err.issues
        errors.append(exp.issue(("workload",), f"workload {exp.doc.workload!r} is invalid"))
    _raise(errors)
    scenarios, issues = expand(exp)
    _raise(issues)
    model = ExperimentModel(exp, systems, workload, scenarios)
    _raise(check_experiment(model))
    if calibration is None and exp.doc.calibration is not None:
        calibration = exp.resolve(exp.doc.calibration)
    if calibration is not None:
        model = calibrate_model(model, calibration)
    return model


def substitute_topologies(
    model: ExperimentModel, topologies: Mapping[str, str | Path]
) -> ExperimentModel:
    """Replace the experiment's topologies named in ``topologies`` by other model files.

    A replacement keeps the name of the topology it replaces, so summaries stay comparable
    (``gate --topology modular=imported.yaml``).  The experiment's rules are checked again.
    """

    names = [s.name for s in model.systems]
    for name, path in sorted(topologies.items()):
        if name not in names:
            msg = f"no topology {name!r} in the experiment (it has {', '.join(names)})"
            raise ConfigError.single(model.experiment.path, msg, field="topologies")
        system = load_system(path)
        doc = system.topology.doc.model_copy(update={"name": name})
        model.systems[names.index(name)] = System(system.catalog, Loaded(doc, system.topology.src))
    model._resolved.clear()
    _raise(check_experiment(model))
    return model


def _raise(issues: list[ConfigIssue]) -> None:
    if issues:
        raise ConfigError(issues)
