"""Resolved models: a topology joined with its catalog, a workload expanded, an experiment.

These are the validated, cross-checked, indexed views that the engine and the static analysis
read; :mod:`sim.model.load` builds them, running every cross-reference rule of
:mod:`sim.model.checks` first.  A scenario's overrides (pool sizes, counts, probe, host) are
applied here too (:func:`apply_system`, :func:`apply_workload`), so that resolving a scenario
needs nothing above this module.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sim.model.loader import Loaded
from sim.schema import Catalog, ClientProfiles, Experiment, Topology, Workload
from sim.schema.catalog import Driver, ObjectKind, Procedure
from sim.schema.experiment import Overrides, Scenario
from sim.schema.topology import Daemon, ServiceUnit, SocketUnit, Unit
from sim.schema.workload import ClientProfile, Command, Host, Probe


def apply_preset(units: Sequence[str], preset_rules: Sequence[tuple[str, str]]) -> set[str]:
    """Enabled units under systemd preset semantics: first matching rule wins, no match enables."""
    enabled = set()
    for name in units:
        for action, pattern in preset_rules:
            if fnmatch.fnmatchcase(name, pattern):
                if action == "enable":
                    enabled.add(name)
                break
        else:
            enabled.add(name)
    return enabled


@dataclass
class System:
    """One topology with its catalog, indexed.  Built by :func:`load_system`."""

    catalog: Loaded[Catalog]
    topology: Loaded[Topology]

    @property
    def name(self) -> str:
        """The topology's name."""
        return self.topology.doc.name

    @cached_property
    def drivers(self) -> dict[str, Driver]:
        """Catalog drivers by name."""
        return {d.name: d for d in self.catalog.doc.drivers}

    @cached_property
    def procedures(self) -> dict[str, Procedure]:
        """Catalog procedures by name."""
        return {p.name: p for p in self.catalog.doc.procedures}

    @cached_property
    def object_kinds(self) -> dict[str, ObjectKind]:
        """Catalog object kinds by name."""
        return {k.name: k for k in self.catalog.doc.object_kinds}

    @cached_property
    def daemons(self) -> dict[str, Daemon]:
        """Daemons by name."""
        return {d.name: d for d in self.topology.doc.daemons}

    @cached_property
    def units(self) -> dict[str, Unit]:
        """Units by name."""
        return {u.name: u for u in self.topology.doc.units}

    @cached_property
    def host_of(self) -> dict[str, str]:
        """driver name -> name of the daemon hosting it."""
        return {drv: d.name for d in self.topology.doc.daemons for drv in d.drivers}

    @cached_property
    def daemon_of_unit(self) -> dict[str, str]:
        """service unit name -> name of the daemon it runs."""
        return {d.unit: d.name for d in self.topology.doc.daemons}

    @cached_property
    def socket_of_path(self) -> dict[str, str]:
        """listening path -> socket unit name."""
        return {
            lst.path: u.name
            for u in self.topology.doc.units
            if isinstance(u, SocketUnit)
            for lst in u.listen
        }

    @cached_property
    def routes(self) -> dict[str, list[str]]:
        """URI -> socket paths its route tries, in order."""
        return {r.uri: list(r.sockets) for r in self.topology.doc.routes}

    @cached_property
    def enabled(self) -> set[str]:
        """Names of the units the preset enables."""
        rules = [(r.action, r.pattern) for r in self.topology.doc.preset.rules]
        return apply_preset(sorted(self.units), rules)

    def service(self, name: str) -> ServiceUnit:
        """The service unit ``name`` (it must be one)."""
        unit = self.units[name]
        assert isinstance(unit, ServiceUnit)
        return unit

    def socket(self, name: str) -> SocketUnit:
        """The socket unit ``name`` (it must be one)."""
        unit = self.units[name]
        assert isinstance(unit, SocketUnit)
        return unit

    def daemon_of_socket(self, socket: str) -> str | None:
        """The daemon run by the service that socket unit ``socket`` activates, or ``None``."""
        return self.daemon_of_unit.get(self.socket(socket).service)

    def candidates(self, uri: str) -> list[tuple[str, str]]:
        """(path, daemon) pairs a client tries for ``uri``, in order."""
        out = []
        for path in self.routes.get(uri, []):
            daemon = self.daemon_of_socket(self.socket_of_path[path])
            if daemon is not None:
                out.append((path, daemon))
        return out

    def daemons_with_role(self, role: str) -> list[str]:
        """Names of the daemons that have ``role``, sorted."""
        return sorted(d.name for d in self.topology.doc.daemons if role in d.roles)


@dataclass(frozen=True)
class GuestSpec:
    """One guest, its group expanded by count (``<group>-<i>`` when the count is not 1)."""

    name: str
    group: str
    driver: str
    running: bool
    autostart: bool
    refs: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class ObjectSpec:
    """One managed object, expanded by count like guests; ``refs``: object kind -> names."""

    name: str
    kind: str
    refs: dict[str, tuple[str, ...]]


@dataclass
class WorkloadModel:
    """A workload with its imported client profiles, guests and objects expanded by count."""

    workload: Loaded[Workload]
    catalog: Loaded[Catalog]
    imports: list[Loaded[ClientProfiles]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The workload's name."""
        return self.workload.doc.name

    @property
    def probe(self) -> Probe:
        """The workload's probe."""
        return self.workload.doc.probe

    @cached_property
    def commands(self) -> dict[str, Command]:
        """Commands by name; the workload's own replace imported ones of the same name."""
        out = {c.name: c for imp in self.imports for c in imp.doc.commands}
        out.update({c.name: c for c in self.workload.doc.commands})
        return out

    @cached_property
    def profiles(self) -> dict[str, ClientProfile]:
        """Client profiles by name, each call given as ``procedure`` plus ``before`` (a
        library command is expanded: its last step is the procedure)."""
        out = {p.name: p for imp in self.imports for p in imp.doc.profiles}
        out.update({p.name: p for p in self.workload.doc.profiles})
        return {name: self._expanded(p) for name, p in out.items()}

    def _expanded(self, profile: ClientProfile) -> ClientProfile:
        if all(c.command is None for c in profile.calls):
            return profile
        calls = []
        for c in profile.calls:
            cmd = self.commands.get(c.command or "")
            if cmd is not None:
                c = c.model_copy(
                    update={"procedure": cmd.steps[-1], "before": cmd.steps[:-1], "command": None}
                )
            calls.append(c)
        return profile.model_copy(update={"calls": calls})

    @cached_property
    def guests(self) -> list[GuestSpec]:
        """Every guest, in the order of the workload's groups."""
        out = []
        for g in self.workload.doc.guests:
            refs = {k: tuple(v) for k, v in sorted(g.refs.items())}
            names = [g.name] if g.count == 1 else [f"{g.name}-{i}" for i in range(g.count)]
            out += [GuestSpec(n, g.name, g.driver, g.running, g.autostart, refs) for n in names]
        return out

    @cached_property
    def objects(self) -> dict[str, ObjectSpec]:
        """Every managed object by name."""
        out = {}
        for o in self.workload.doc.objects:
            refs = {k: tuple(v) for k, v in sorted(o.refs.items())}
            names = [o.name] if o.count == 1 else [f"{o.name}-{i}" for i in range(o.count)]
            out.update({n: ObjectSpec(n, o.kind, refs) for n in names})
        return out

    def objects_of_kind(self, kind: str) -> list[str]:
        """Names of the objects of ``kind``, sorted."""
        return sorted(n for n, o in self.objects.items() if o.kind == kind)


@dataclass
class ExperimentModel:
    """An experiment with its topologies, workload and expanded scenarios."""

    experiment: Loaded[Experiment]
    systems: list[System]
    workload: WorkloadModel
    scenarios: list[Scenario] = field(default_factory=list)
    calibration: Path | None = None
    _resolved: dict[tuple[str, str], tuple[System, WorkloadModel]] = field(default_factory=dict)

    @property
    def doc(self) -> Experiment:
        """The experiment document."""
        return self.experiment.doc

    def scenario(self, name: str) -> Scenario:
        """The expanded scenario called ``name`` (raises StopIteration when there is none)."""
        return next(s for s in self.scenarios if s.name == name)

    def resolve(self, scenario: str, topology: str) -> tuple[System, WorkloadModel]:
        """The models one scenario runs on in one topology, its overrides applied."""
        key = (scenario, topology)
        if key not in self._resolved:
            ov = self.scenario(scenario).overrides
            system = next(s for s in self.systems if s.name == topology)
            self._resolved[key] = (apply_system(system, ov), apply_workload(self.workload, ov))
        return self._resolved[key]


# ------------------------------------------------------------------------------ overrides
def apply_system(system: System, ov: Overrides) -> System:
    """``system`` with a scenario's pool overrides applied to every server."""
    if ov.pool is None:
        return system
    changes = ov.pool.model_dump(exclude_none=True)
    topo = system.topology.doc
    daemons = [
        d.model_copy(update={"servers": [s.model_copy(update=changes) for s in d.servers]})
        for d in topo.daemons
    ]
    return System(
        system.catalog, Loaded(topo.model_copy(update={"daemons": daemons}), system.topology.src)
    )


def apply_workload(workload: WorkloadModel, ov: Overrides) -> WorkloadModel:
    """``workload`` with a scenario's counts, probe and host overrides applied."""
    if not ov.counts and ov.probe is None and ov.host is None:
        return workload
    doc = workload.workload.doc
    update: dict[str, Any] = {
        "guests": [
            g.model_copy(update={"count": ov.counts[g.name]}) if g.name in ov.counts else g
            for g in doc.guests
            if ov.counts.get(g.name, 1) > 0
        ],
        "objects": [
            o.model_copy(update={"count": ov.counts[o.name]}) if o.name in ov.counts else o
            for o in doc.objects
            if ov.counts.get(o.name, 1) > 0
        ],
    }
    if ov.probe is not None:
        update["probe"] = doc.probe.model_copy(update=ov.probe.model_dump(exclude_none=True))
    if ov.host is not None:
        host = doc.host or Host(assumption="scenario override of the host")
        update["host"] = host.model_copy(update=ov.host.model_dump(exclude_none=True))
    new = Loaded(doc.model_copy(update=update), workload.workload.src)
    return WorkloadModel(new, workload.catalog, workload.imports)
