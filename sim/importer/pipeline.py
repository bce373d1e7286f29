"""The import, start to end: unit tree + presets + configs + mapping -> topology document."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ConfigError
from sim.importer.build import (
    Context,
    daemon_block,
    relative_catalog,
    service_unit,
    socket_listens,
    socket_unit,
)
from sim.importer.directives import Unsupported
from sim.importer.hosts import HostDaemon, drop_conflicts, find_daemons
from sim.importer.presets import Decision, decide, from_links, load_presets, preset_files
from sim.importer.rooted import HostRoot
from sim.importer.units import UnitTree
from sim.model.importmap import load_mapping

UNIT_REF_FIELDS = ("requires", "binds_to", "wants", "after", "before", "conflicts", "also")


@dataclass(frozen=True)
class Inputs:
    """What to import.  ``units`` lowest precedence first; ``root`` is the host tree: every
    path read (``--units``, ``--preset``, ``--conf``, ``EnvironmentFile=``, links) is
    resolved inside it, and one that leaves it is refused (:mod:`sim.importer.rooted`)."""

    units: Sequence[Path]
    mapping: Path
    output: Path
    presets: Sequence[Path] = ()
    conf: Path | None = None
    root: Path = Path("/")
    name: str | None = None


@dataclass
class Imported:
    """The topology document and everything the import has to say about it."""

    topology: dict[str, Any]
    unsupported: list[Unsupported]
    notes: list[str]
    decisions: dict[str, Decision]
    inputs: Inputs
    preset_files: list[Path] = field(default_factory=list)


def _enablement(
    tree: UnitTree, daemons: list[HostDaemon], inputs: Inputs, root: HostRoot
) -> tuple[dict[str, Decision], list[Path], str]:
    units = {u.unit.name: (u.has_install, u.words("Also")) for d in daemons for u in d.units()}
    if inputs.presets:
        files = preset_files(inputs.presets, root)
        rules = load_presets(files, root)
        listed = ", ".join(str(f) for f in files)
        return decide(units, rules), files, f"imported from presets {listed} (first match wins)"
    if tree.wants:
        out = from_links(sorted(units), tree.wants)
        for name, (has_install, _) in units.items():
            if not has_install:
                out[name] = Decision(True, "static (no [Install] section)")
        return out, [], "imported from the *.wants/ and *.requires/ links of the unit directories"
    return decide(units, []), [], "no preset given: every unit enabled (systemd's default)"


def _targets(ctx: Context, decisions: dict[str, Decision]) -> list[dict[str, Any]]:
    out = []
    for i, t in enumerate(ctx.map.targets):
        block: dict[str, Any] = {"name": t.name, "type": "target", "description": t.description}
        for key in ("requires", "wants", "after"):
            if getattr(t, key):
                block[key] = list(getattr(t, key))
        block["source"] = f"mapping at {ctx.where('targets', i)}" + (
            f": {t.source}" if t.source else ""
        )
        if t.assumption:
            block["assumption"] = t.assumption
        out.append(block)
        decisions[t.name] = Decision(True, "static target from the mapping")
    return out


def _routes(ctx: Context, listens: dict[str, list[str]]) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(ctx.map.routes):
        present = [s for s in r.sockets if listens.get(s)]
        if not present:
            ctx.notes.append(f"route {r.uri}: none of {', '.join(r.sockets)} is on this host")
            continue
        block: dict[str, Any] = {"uri": r.uri, "sockets": [listens[s][0] for s in present]}
        block["source"] = f"mapping at {ctx.where('routes', i)}" + (
            f": {r.source}" if r.source else ""
        )
        assumption = f"socket units on this host, in the mapping's order: {', '.join(present)}"
        block["assumption"] = assumption + (f"; {r.assumption}" if r.assumption else "")
        out.append(block)
    return out


def _externals(units: list[dict[str, Any]], declared: list[str]) -> list[str]:
    """Units named by the imported units but not modelled, plus the mapping's own list."""
    names = {u["name"] for u in units}
    refs = {ref for u in units for k in (*UNIT_REF_FIELDS, "wanted_by") for ref in u.get(k, [])}
    return sorted((refs | set(declared)) - names)


def _preset(units: list[dict[str, Any]], decisions: dict[str, Decision], source: str) -> Any:
    rules = []
    for u in units:
        d = decisions[u["name"]]
        rules.append(
            {"action": "enable" if d.enabled else "disable", "pattern": u["name"], "why": d.why}
        )
    return {"source": source, "rules": rules}


def import_units(inputs: Inputs) -> Imported:
    """Build a topology document from a host's units, presets and daemon configs.

    Raises
    ------
    ConfigError
        a file that cannot be read or parsed (with file and line), a mapping that does not
        fit the host (a socket no server takes, two enabled daemons claiming one driver)
    """
    mapping = load_mapping(inputs.mapping)
    root = HostRoot(inputs.root)
    ctx = Context(mapping, root, inputs.conf)
    tree = UnitTree.scan(list(inputs.units), root)
    found = find_daemons(tree, mapping.doc, ctx.notes)
    decisions, files, preset_source = _enablement(tree, found, inputs, root)
    listens = {s.unit.name: socket_listens(ctx, s) for d in found for s in d.sockets}
    daemons = drop_conflicts(found, listens, decisions, ctx.notes)
    if not daemons:
        wanted = ", ".join(sorted({spec.unit for spec in mapping.doc.daemons}))
        dirs = ", ".join(str(p) for p in inputs.units)
        msg = f"no {mapping.doc.name} daemon units found in {dirs} (the map names {wanted})"
        raise ConfigError.single(dirs, msg, field="--units")
    for spec in mapping.doc.daemons:
        if spec.unit not in tree:
            ctx.notes.append(f"daemon {spec.name}: {spec.unit} is not installed: not modelled")
    units = _targets(ctx, decisions)
    blocks = []
    for d in sorted(daemons, key=lambda d: d.index):
        blocks.append(daemon_block(ctx, d))
        units.append(service_unit(ctx, d.service, d.spec.name))
        order = [n for server in blocks[-1]["servers"] for n in server["sockets"]]
        by_name = {s.unit.name: s for s in d.sockets}
        units += [socket_unit(ctx, by_name[n]) for n in order]
        ctx.unsupported += [u for r in d.units() for u in r.unsupported]
    kept = {s.unit.name for d in daemons for s in d.sockets}
    others = len(tree.names()) - len(kept) - len(daemons)
    if others:
        ctx.notes.append(f"{others} other unit files in the unit directories are not modelled")
    routes = _routes(ctx, {k: v for k, v in listens.items() if k in kept})
    name = inputs.name or inputs.output.stem
    dirs = ", ".join(str(p) for p in inputs.units)
    topology: dict[str, Any] = {
        "kind": "topology",
        "name": name,
        "description": f"imported from the unit files in {dirs}",
        "source": (
            f"imported by virtchaos import-units: units {dirs}; presets "
            f"{', '.join(str(f) for f in files) or '(none)'}; configs {inputs.conf or '(none)'}; "
            f"mapping {inputs.mapping}"
        ),
        "catalog": relative_catalog(inputs.mapping, mapping.doc.catalog, inputs.output),
        "boot_target": mapping.doc.boot_target,
        "external_units": _externals(units, mapping.doc.external_units),
        "daemons": blocks,
        "units": units,
        "routes": routes,
        "preset": _preset(units, decisions, preset_source),
    }
    if ctx.missing_conf:
        missing = ", ".join(sorted(set(ctx.missing_conf)))
        ctx.notes.append(f"config files not in {inputs.conf or '(no --conf)'}: {missing}: defaults")
    if ctx.missing_env:
        ctx.notes.append(
            "optional EnvironmentFile= files absent (ignored): " + "; ".join(ctx.missing_env)
        )
    unsupported = sorted(set(ctx.unsupported), key=_order)
    return Imported(topology, unsupported, ctx.notes, decisions, inputs, files)


def _order(u: Unsupported) -> tuple[str, str, int]:
    file, _, line = u.where.rpartition(":")
    return (u.unit, file, int(line) if line.isdigit() else 0)
