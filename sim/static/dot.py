"""Drawing the dependency graph: Graphviz DOT written by hand, rendered by ``dot`` if present.

Daemons are drawn as clusters holding their servers, drivers and procedures, so placement
(what shares a process and a worker pool) is what the picture shows.  Edges read "depends
on"; soft edges are dashed.  Guests of one group have identical dependencies, so by default
they are drawn as one node per group (``collapse_guests``).
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

RENDERED = (".svg", ".png")

STYLE: dict[str, dict[str, str]] = {
    "unit": {"shape": "box", "style": "rounded", "color": "gray40"},
    "daemon": {"shape": "box3d", "style": "bold"},
    "server": {"shape": "cylinder"},
    "driver": {"shape": "component"},
    "proc": {"shape": "ellipse", "fontsize": "9"},
    "object": {"shape": "note"},
    "guest": {"shape": "doublecircle", "fontsize": "9"},
    "op": {"shape": "ellipse", "style": "filled", "fillcolor": "lightblue"},
    "client": {"shape": "house"},
}
SEED = "red"
REACHED = "orange"
EXHAUSTED = "tomato"


def quote(text: str) -> str:
    """A DOT string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(attrs: dict[str, str]) -> str:
    return "[" + ", ".join(f"{k}={quote(v)}" for k, v in sorted(attrs.items())) + "]"


def _group_node(graph: nx.DiGraph, node: str) -> str:
    attrs = graph.nodes[node]
    if attrs["kind"] == "guest":
        return f"guests:{attrs['group']}"
    if attrs["kind"] == "op":
        return f"guests:{attrs['group']}:{attrs['op']}"
    return node


def collapse_guests(graph: nx.DiGraph) -> tuple[nx.DiGraph, dict[str, str]]:
    """One node per guest group (and per group operation); returns the graph and the map
    from original node to drawn node."""
    mapping = {n: _group_node(graph, n) for n in graph}
    members: dict[str, list[str]] = defaultdict(list)
    for n, m in mapping.items():
        members[m].append(n)
    out: nx.DiGraph = nx.DiGraph(**graph.graph)
    for m, ns in sorted(members.items()):
        attrs = dict(graph.nodes[ns[0]])
        if m != ns[0]:
            what = f" {attrs['op']}" if attrs["kind"] == "op" else ""
            attrs["name"] = f"{attrs['group']} x{len(ns)}{what}"
        out.add_node(m, **attrs, members=len(ns))
    for a, b, attrs in graph.edges(data=True):
        ma, mb = mapping[a], mapping[b]
        old = out.get_edge_data(ma, mb)
        if old is None or (old["strength"] != "hard" and attrs["strength"] == "hard"):
            out.add_edge(ma, mb, **attrs)
    return out, mapping


@dataclass(frozen=True)
class Highlight:
    """Nodes to colour: the fault's seeds, what it reaches, and pools it exhausts."""

    seeds: frozenset[str] = frozenset()
    reached: frozenset[str] = frozenset()
    exhausted: frozenset[str] = frozenset()

    def mapped(self, mapping: dict[str, str]) -> Highlight:
        """The highlight with its nodes renamed by ``mapping`` (guests collapsed into groups)."""

        def m(nodes: Iterable[str]) -> frozenset[str]:
            return frozenset(mapping.get(n, n) for n in nodes)

        return Highlight(m(self.seeds), m(self.reached), m(self.exhausted))

    def colours(self) -> tuple[tuple[str, frozenset[str]], ...]:
        """(colour, nodes) in order of precedence."""
        return ((SEED, self.seeds), (EXHAUSTED, self.exhausted), (REACHED, self.reached))


def _node_line(node: str, attrs: dict[str, Any], hl: Highlight) -> str:
    style = dict(STYLE.get(attrs["kind"], {}))
    style["label"] = str(attrs["name"])
    if attrs.get("external"):
        style["style"] = "dashed"
    colour = next((c for c, ns in hl.colours() if node in ns), None)
    if colour is not None:
        style["style"] = "filled"
        style["fillcolor"] = colour
    return f"  {quote(node)} {_attrs(style)};"


def _edge_line(a: str, b: str, attrs: dict[str, Any], hl: Highlight) -> str:
    style = {"label": str(attrs["rel"]), "fontsize": "8"}
    if attrs["strength"] != "hard":
        style["style"] = "dashed" if attrs["blocking"] else "dotted"
    if a in hl.reached and b in hl.reached:
        style["color"] = SEED
    return f"  {quote(a)} -> {quote(b)} {_attrs(style)};"


def _home(graph: nx.DiGraph, node: str) -> str | None:
    """The daemon whose cluster a node is drawn in (servers, drivers, procedures)."""
    attrs = graph.nodes[node]
    if attrs["kind"] in ("server", "driver"):
        return str(attrs["daemon"])
    if attrs["kind"] == "proc":
        drv = f"driver:{attrs['driver']}"
        return str(graph.nodes[drv]["daemon"]) if drv in graph else None
    if attrs["kind"] == "daemon":
        return str(attrs["name"])
    return None


def to_dot(graph: nx.DiGraph, title: str, hl: Highlight | None = None) -> str:
    """The DOT text of ``graph`` (from :func:`sim.static.analysis.build_graph`)."""
    hl = hl or Highlight()
    homes: dict[str | None, list[str]] = defaultdict(list)
    for node in sorted(graph):
        homes[_home(graph, node)].append(node)
    lines = [
        f"digraph {quote(title)} {{",
        f"  graph {_attrs({'rankdir': 'LR', 'label': title, 'fontname': 'Helvetica'})};",
        f"  node {_attrs({'fontname': 'Helvetica', 'fontsize': '10'})};",
        f"  edge {_attrs({'fontname': 'Helvetica', 'color': 'gray30'})};",
    ]
    for daemon in sorted(d for d in homes if d is not None):
        lines.append(f"  subgraph {quote('cluster_' + daemon)} {{")
        lines.append(f"    graph {_attrs({'label': daemon, 'style': 'rounded'})};")
        lines += ["  " + _node_line(n, graph.nodes[n], hl) for n in homes[daemon]]
        lines.append("  }")
    lines += [_node_line(n, graph.nodes[n], hl) for n in homes[None]]
    lines += [_edge_line(a, b, attrs, hl) for a, b, attrs in sorted(graph.edges(data=True))]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _matches(node: str, patterns: Iterable[str]) -> bool:
    """``node`` (``kind:name``) matches a glob as a whole or by its name alone."""
    from fnmatch import fnmatchcase

    name = node.split(":", 1)[-1]
    return any(fnmatchcase(node, p) or fnmatchcase(name, p) for p in patterns)


def filter_graph(
    graph: nx.DiGraph,
    froms: Iterable[str] = (),
    tos: Iterable[str] = (),
    kinds: Iterable[str] = (),
) -> nx.DiGraph:
    """The part of ``graph`` a reader asked for, as ``systemd-analyze dot --from-pattern
    --to-pattern`` does: only nodes of ``kinds`` (when given), then only edges whose source
    matches a ``froms`` glob and whose target a ``tos`` glob (each when given), with their
    end nodes.  Globs match ``kind:name`` or the name alone (``client:*``, ``*.socket``)."""
    froms, tos, kinds = list(froms), list(tos), set(kinds)
    g = graph.subgraph(n for n in graph if not kinds or graph.nodes[n]["kind"] in kinds)
    if not froms and not tos:
        return nx.DiGraph(g)
    edges = [
        (a, b)
        for a, b in g.edges
        if (not froms or _matches(a, froms)) and (not tos or _matches(b, tos))
    ]
    return nx.DiGraph(g.edge_subgraph(edges))


@dataclass(frozen=True)
class GraphFiles:
    """What :func:`write_graph` wrote; ``note`` says why nothing was rendered, if so."""

    dot: Path
    rendered: Path | None
    note: str = ""


def write_graph(text: str, out: Path) -> GraphFiles:
    """Write DOT ``text`` for ``out``; render ``.svg``/``.png`` with Graphviz when on PATH.

    The DOT file is ``out`` itself unless ``out`` asks for an image, then ``out`` with a
    ``.dot`` suffix.  Raises ``RuntimeError`` when Graphviz is present but fails.
    """
    fmt = out.suffix.lower()
    dot_path = out.with_suffix(".dot") if fmt in RENDERED else out
    dot_path.parent.mkdir(parents=True, exist_ok=True)
    dot_path.write_text(text, encoding="utf-8")
    if fmt not in RENDERED:
        return GraphFiles(dot_path, None)
    exe = shutil.which("dot")
    if exe is None:
        return GraphFiles(
            dot_path,
            None,
            f"Graphviz 'dot' is not on PATH: {out} not drawn, wrote {dot_path} only "
            "(install graphviz, or ask for a .dot file)",
        )
    dpi = ["-Gdpi=60"] if fmt == ".png" else []  # big graphs: keep the PNG in the MB range
    proc = subprocess.run(
        [exe, f"-T{fmt[1:]}", *dpi, "-o", str(out), str(dot_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dot failed ({proc.returncode}): {proc.stderr.strip()[:200]}")
    return GraphFiles(dot_path, out)
