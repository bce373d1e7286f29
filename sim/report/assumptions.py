"""Provenance of the models behind a run: every ``source:`` and ``assumption:``.

Walks the catalog, the topologies, the workload and the client profiles the experiment uses
(CONVENTIONS 8) and lists each block that carries provenance, named by its place in the
model (``topology NAME › daemon NAME › server NAME``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sim.model.resolved import ExperimentModel
from sim.schema.common import Sourced
from sim.schema.workload import ClientProfile

IDENTITY = ("name", "uri", "path", "pattern")
FACTS = Path(__file__).resolve().parents[2] / "docs" / "libvirt-facts.md"
"""The facts document inside the repository that ``LIBVIRT-FACTS n`` citations refer to."""
CITATION = re.compile(r"LIBVIRT-FACTS(?: \d+(?:\.\d+)*[a-z]?)?")


def facts_link(folder: Path) -> str:
    """The facts document relative to a report in ``folder`` (a POSIX path)."""
    return Path(os.path.relpath(FACTS, folder.resolve())).as_posix()


def link_citations(text: str, link: str) -> str:
    """Every ``LIBVIRT-FACTS n`` in ``text`` as a Markdown link to the facts document."""
    return CITATION.sub(lambda m: f"[{m[0]}]({link})", text)


@dataclass(frozen=True)
class Provenance:
    """One model block's provenance: where it is in the model (``obj``), its file, and its
    ``source:`` and ``assumption:``.
    """

    obj: str
    file: str
    source: str | None
    assumption: str | None


@dataclass(frozen=True)
class Tally:
    """Counts of the blocks with provenance: all, with a source, with an assumption, with both."""

    blocks: int
    sourced: int
    assumed: int
    both: int

    def sentence(self) -> str:
        """The tally as one sentence of the report (a block with both counts as assumed)."""
        only = self.sourced - self.both
        return (
            f"{only} values sourced, {self.assumed} assumed: of the {self.blocks} model blocks "
            f"that carry provenance, {only} cite a source only and {self.assumed} state an "
            f"assumption ({self.both} of these also cite a source for their structure)."
        )


def tally(items: list[Provenance]) -> Tally:
    """Count the blocks with a source, with an assumption, and with both."""
    sourced = sum(p.source is not None for p in items)
    assumed = sum(p.assumption is not None for p in items)
    both = sum(p.source is not None and p.assumption is not None for p in items)
    return Tally(len(items), sourced, assumed, both)


def _ident(item: BaseModel, index: int) -> str:
    for attr in IDENTITY:
        value = getattr(item, attr, None)
        if isinstance(value, str):
            return value
    return str(index)


def _singular(field: str) -> str:
    return field[:-1] if field.endswith("s") and not field.endswith("ss") else field


Skip = Callable[[BaseModel], bool]


def _children(node: BaseModel) -> Iterator[tuple[str, BaseModel]]:
    for name in type(node).model_fields:
        value: Any = getattr(node, name)
        if isinstance(value, BaseModel):
            yield name, value
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield f"{_singular(name)} {_ident(item, i)}", item
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    yield f"{_singular(name)} {key}", item


def walk(node: BaseModel, label: str, file: str, skip: Skip) -> Iterator[Provenance]:
    """Every :class:`~sim.schema.common.Sourced` block under ``node``, depth first."""
    if isinstance(node, Sourced):
        yield Provenance(label, file, node.source, node.assumption)
    for name, child in _children(node):
        if not skip(child):
            yield from walk(child, f"{label} › {name}", file, skip)


def used_profiles(model: ExperimentModel) -> set[str]:
    """Names of the client profiles the experiment's workload or any of its scenarios declares
    clients of.
    """
    decls = list(model.workload.workload.doc.clients)
    decls += [c for sc in model.scenarios for c in sc.clients]
    return {c.profile for c in decls}


def collect(model: ExperimentModel) -> list[Provenance]:
    """Provenance of every model the experiment reads, each block once, in reading order."""
    used = used_profiles(model)

    def skip(item: BaseModel) -> bool:
        return isinstance(item, ClientProfile) and item.name not in used

    docs: list[tuple[str, BaseModel, Path]] = []
    for s in model.systems:
        docs.append(("catalog", s.catalog.doc, s.catalog.path))
    docs.append(("catalog", model.workload.catalog.doc, model.workload.catalog.path))
    docs += [("topology", s.topology.doc, s.topology.path) for s in model.systems]
    docs.append(("workload", model.workload.workload.doc, model.workload.workload.path))
    docs += [("client profiles", i.doc, i.path) for i in model.workload.imports]
    root = Path(os.path.commonpath([str(p.resolve().parent) for _, _, p in docs]))
    out: dict[tuple[str, str], Provenance] = {}
    for kind, doc, path in docs:
        file = path.resolve().relative_to(root).as_posix()
        label = f"{kind} {getattr(doc, 'name', '')}".strip()
        for p in walk(doc, label, file, skip):
            out.setdefault((p.file, p.obj), p)
    return list(out.values())
