"""The dependency graph of each topology with one fault's static reach highlighted.

With Graphviz on PATH the full graph is drawn by :mod:`sim.static.dot` (guest groups collapsed).
Without it, a coarser picture is drawn with matplotlib: three columns (clients and guest
groups, drivers, daemons); procedures fold into their driver, servers and units into their
daemon.  Colours follow :mod:`sim.static.dot`: the fault's seeds, what it reaches, exhausted pools.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from sim.model.resolved import System, WorkloadModel
from sim.report.plotting import new_figure, save
from sim.schema.experiment import Fault
from sim.schema.topology import SocketUnit
from sim.static.analysis import build_graph, reach_for_fault
from sim.static.dot import EXHAUSTED, REACHED, SEED, Highlight, collapse_guests, to_dot, write_graph

LAYER = {"client": 0, "guest": 0, "driver": 1, "daemon": 2}
COLUMNS = ("clients and guest groups", "drivers", "daemons")
RANK = {SEED: 3, EXHAUSTED: 2, REACHED: 1}


@dataclass(frozen=True)
class Drawn:
    """How a graph figure was made: ``"graphviz"`` or ``"matplotlib"``, and the reach mode."""

    engine: str
    mode: str
    reached_guests: int


def highlight(
    system: System, workload: WorkloadModel, fault: Fault, graph: nx.DiGraph
) -> tuple[Highlight, str, int]:
    """The fault's static reach as colours, its mode and how many guests it reaches."""
    try:
        r = reach_for_fault(system, workload, fault, graph)
    except ValueError:
        return Highlight(), "none", 0
    hl = Highlight(frozenset(r.seeds), frozenset(r.nodes), frozenset(r.exhausted))
    return hl, r.mode, len(r.guests)


def draw(
    system: System, workload: WorkloadModel, fault: Fault, title: str, folder: Path, stem: str
) -> Drawn:
    """Write ``folder/<stem>.svg`` and ``.png`` (a coarse view: clients and guest groups,
    drivers, daemons) and ``<stem>.dot``, the full graph for Graphviz.  The coarse view is
    drawn the same way on every machine, Graphviz or not, and stays readable on one page;
    ``virtchaos graph`` renders the full one."""
    graph = build_graph(system, workload)
    hl, mode, guests = highlight(system, workload, fault, graph)
    collapsed, mapping = collapse_guests(graph)
    write_graph(to_dot(collapsed, title, hl.mapped(mapping)), folder / f"{stem}.dot")
    save(coarse_figure(system, graph, hl, title), folder, stem)
    return Drawn("matplotlib", mode, guests)


# ------------------------------------------------------------------------------ coarse graph
def _coarse_id(system: System, node: str, attrs: dict[str, Any]) -> str | None:
    kind = attrs["kind"]
    if kind in ("guest", "op"):
        return f"guests:{attrs['group']}"
    if kind == "proc":
        return f"driver:{attrs['driver']}"
    if kind == "server":
        return f"daemon:{attrs['daemon']}"
    if kind == "unit":
        unit = system.units.get(str(attrs["name"]))
        daemon = system.daemon_of_unit.get(str(attrs["name"]))
        if isinstance(unit, SocketUnit):
            daemon = system.daemon_of_socket(unit.name)
        return f"daemon:{daemon}" if daemon else None
    return node if kind in LAYER else None


def coarse(system: System, graph: nx.DiGraph, hl: Highlight) -> nx.DiGraph:
    """Clients/guest groups -> drivers -> daemons, each node with its highlight colour."""
    collapsed, mapping = collapse_guests(graph)
    hl = hl.mapped(mapping)
    ids = {n: _coarse_id(system, n, a) for n, a in collapsed.nodes(data=True)}
    out: nx.DiGraph = nx.DiGraph()
    for n in sorted(collapsed):
        c = ids[n]
        if c is None:
            continue
        attrs = collapsed.nodes[c] if c in collapsed else collapsed.nodes[n]
        if c not in out:
            kind = "guest" if c.startswith("guests:") else attrs["kind"]
            name = collapsed.nodes[c]["name"] if c in collapsed else str(attrs["group"])
            out.add_node(c, kind=kind, name=name, daemon=attrs.get("daemon", ""), rank=0)
        rank = max((RANK[col] for col, ns in hl.colours() if n in ns), default=0)
        out.nodes[c]["rank"] = max(out.nodes[c]["rank"], rank)
    for a, b in sorted(collapsed.edges()):
        ca, cb = ids[a], ids[b]
        if ca and cb and ca != cb:
            out.add_edge(ca, cb, reached=a in hl.reached and b in hl.reached)
    return out


def _positions(g: nx.DiGraph) -> dict[str, tuple[float, float]]:
    layers: dict[int, list[str]] = defaultdict(list)
    for n, a in g.nodes(data=True):
        layers[LAYER[a["kind"]]].append(n)
    pos = {}
    for layer, nodes in layers.items():
        nodes.sort(key=lambda n: (g.nodes[n]["kind"], g.nodes[n]["daemon"], g.nodes[n]["name"]))
        for i, n in enumerate(nodes):
            pos[n] = (float(layer), -i - (max(map(len, layers.values())) - len(nodes)) / 2)
    return pos


def _fill(rank: int) -> str:
    return {3: SEED, 2: EXHAUSTED, 1: REACHED}.get(rank, "white")


def _edges(ax: Axes, g: nx.DiGraph, pos: dict[str, tuple[float, float]]) -> None:
    for a, b, attrs in g.edges(data=True):
        same = pos[a][0] == pos[b][0]
        skip = abs(pos[a][0] - pos[b][0]) > 1
        ax.annotate(
            "", xy=pos[b], xytext=pos[a],
            arrowprops={
                "arrowstyle": "-|>", "color": SEED if attrs["reached"] else "#bbbbbb",
                "linewidth": 1.1 if attrs["reached"] else 0.6, "shrinkA": 14, "shrinkB": 14,
                "connectionstyle": "arc3,rad=0.35" if same else "arc3,rad=0.0",
                "linestyle": "--" if skip else "-",
            },
            zorder=1,
        )  # fmt: skip


def coarse_figure(system: System, graph: nx.DiGraph, hl: Highlight, title: str) -> Figure:
    """The matplotlib drawing of the coarse graph (clients and guest groups, drivers, daemons)
    with ``hl``'s reach coloured.
    """
    g = coarse(system, graph, hl)
    pos = _positions(g)
    rows = max((-y for _, y in pos.values()), default=0) + 1
    fig = new_figure(11, 0.42 * rows + 1.8)
    ax = fig.subplots()
    _edges(ax, g, pos)
    for n, (x, y) in pos.items():
        a = g.nodes[n]
        ax.text(x, y, a["name"], ha="center", va="center", fontsize=8, zorder=2,
                bbox={"boxstyle": "round,pad=0.3", "facecolor": _fill(a["rank"]),
                      "edgecolor": "#444444", "linewidth": 0.7})  # fmt: skip
    for layer, name in enumerate(COLUMNS):
        ax.text(layer, 0.9, name, ha="center", va="bottom", fontweight="bold")
    ax.set_xlim(-0.5, len(COLUMNS) - 0.5)
    ax.set_ylim(-rows + 0.4, 1.4)
    ax.axis("off")
    handles = [Patch(facecolor=c, edgecolor="#444444", label=t) for c, t in
               ((SEED, "fault target"), (EXHAUSTED, "worker pool can be exhausted"),
                (REACHED, "reached (static bound)"), ("white", "not reached"))]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=4)
    ax.set_title("arrows: depends on (dashed: connects to a daemon directly)", fontsize=8)
    fig.suptitle(title)
    return fig
