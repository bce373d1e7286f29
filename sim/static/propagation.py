"""How a fault spreads on the dependency graph: dependents, and worker-pool exhaustion.

Edges read "depends on", so a fault spreads from a node to its predecessors.  ``hard``
edges carry failures; ``blocking`` edges carry waiting (a hard edge, or a call whose errors
are ignored but whose hang is not).  Waiting calls hold workers (:class:`sim.static.depgraph.Hold`);
when the callers that can wait on a blocked node can fill a server's ``max_workers``, the
server is exhausted and everything needing it waits too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import networkx as nx

from sim.static.depgraph import holds_of, per_context_of, sources_of

EdgeFilter = Callable[[dict[str, Any]], bool]


def hard(attrs: dict[str, Any]) -> bool:
    """Whether the edge carries failures (a requirement)."""
    return bool(attrs["strength"] == "hard")


def blocking(attrs: dict[str, Any]) -> bool:
    """Whether the edge carries waiting (a caller waits while the dependency hangs)."""
    return bool(attrs["blocking"])


def dependents(graph: nx.DiGraph, seeds: Iterable[str], ok: EdgeFilter) -> set[str]:
    """``seeds`` and every node that depends on one of them through edges passing ``ok``."""
    seen = {s for s in seeds if s in graph}
    stack = sorted(seen)
    while stack:
        node = stack.pop()
        for pred in graph.predecessors(node):
            if pred not in seen and ok(graph.edges[pred, node]):
                seen.add(pred)
                stack.append(pred)
    return seen


def _in_flight(graph: nx.DiGraph, source: str, ctxs: set[str]) -> int | None:
    """How many calls ``source`` can have in flight from contexts ``ctxs`` (None: no bound).

    A guest operation has one call at a time per guest (an autostart, a reconnect), or up to
    its source's ``per_context`` figure (the probe: timed-out probes stay in flight, up to
    the connection's request slots); a client context stands for all its calls, bounded by
    its own figure.
    """
    cap = sources_of(graph).get(source)
    if all(graph.nodes[c]["kind"] == "op" for c in ctxs):
        n = len(ctxs) * per_context_of(graph).get(source, 1)
        return n if cap is None else min(cap, n)
    return cap


def _full(graph: nx.DiGraph, server: str, waiting: dict[str, set[str]]) -> bool:
    """Can the ``waiting`` sources (source -> contexts) fill ``server``'s workers?"""
    bounds = [_in_flight(graph, src, ctxs) for src, ctxs in waiting.items()]
    if any(b is None for b in bounds):
        return True
    return sum(b for b in bounds if b is not None) >= int(graph.nodes[server]["max_workers"])


def exhaust(graph: nx.DiGraph, seeds: set[str]) -> tuple[set[str], set[str], set[str]]:
    """Blocked nodes, exhausted servers and the sources exhausting them (fixed point)."""
    blocked = dependents(graph, seeds, blocking)
    exhausted: set[str] = set()
    by: set[str] = set()
    holds = holds_of(graph)
    while True:
        waiting: dict[str, dict[str, set[str]]] = {}
        for h in holds:
            if h.server not in blocked and h.waits & blocked:
                waiting.setdefault(h.server, {}).setdefault(h.source, set()).add(h.ctx)
        new = {s: w for s, w in waiting.items() if _full(graph, s, w)}
        if not new:
            return blocked, exhausted, by
        exhausted |= set(new)
        by = by.union(*(w.keys() for w in new.values()))
        blocked |= dependents(graph, new, blocking)
