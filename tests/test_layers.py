"""The tree's layers: a package imports only the layers below it, and no import circle
exists outside the engine.

Every ``import`` and ``from ... import`` of a ``sim`` module is read from the source (at
module level or inside a function: a deferred import is still a dependency).  Imports under
``if TYPE_CHECKING:`` are left out: they exist for annotations only and never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

SIM = Path(__file__).resolve().parent.parent / "sim"

# layer of each top-level part of ``sim``; the table of ``sim/__init__.py``
LAYERS = {
    "sim": 7,  # the package's __init__: the version, and sim.api offered lazily (FACADE)
    "sim.__main__": 7,  # the entry point, above the CLI
    "sim.api": 7,  # the Python API, above everything it offers
    "sim.errors": 0,
    "sim.constants": 0,
    "sim._data": 0,  # the shipped models and experiments
    "sim.schema": 1,
    "sim.model": 2,
    "sim.engine": 3,
    "sim.static": 3,
    "sim.experiment": 4,
    "sim.importer": 4,
    "sim.gate": 5,
    "sim.report": 5,
    "sim.realhost": 5,
    "sim.cli": 6,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SIM.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(SIM.rglob("*.py"))}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """The ``sim`` modules ``module`` imports (a ``from pkg import name`` of a submodule
    counts as that submodule)."""
    out: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "sim")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] == "sim":
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    out.add(sub if sub in MODULES else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    out.discard(module)
    return out


def import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    for name, path in MODULES.items():
        graph.add_node(name)
        tree = ast.parse(path.read_text(), str(path))
        for target in _imports(tree, name, path.name == "__init__.py"):
            graph.add_edge(name, target)
    return graph


def part_of(module: str) -> str:
    """The top-level part of ``sim`` a module belongs to (a key of :data:`LAYERS`)."""
    parts = module.split(".")
    name = ".".join(parts[:2])
    if name not in LAYERS:
        raise KeyError(f"{module}: not in the layer table of tests/test_layers.py")
    return name


FACADE = {("sim", "sim.api")}
"""The one upward import allowed: ``sim/__init__.py`` offers the API on first use (PEP 562
``__getattr__``), deferred, so no module below imports it by importing ``sim``."""


def forbidden(graph: nx.DiGraph) -> list[str]:
    """Edges from a part to a part of the same or a higher layer."""
    out = []
    for a, b in sorted(graph.edges):
        pa, pb = part_of(a), part_of(b)
        if (a, b) in FACADE:
            continue
        if pa != pb and LAYERS[pb] >= LAYERS[pa]:
            out.append(f"{a} (layer {LAYERS[pa]}) imports {b} (layer {LAYERS[pb]})")
    return out


def circles(graph: nx.DiGraph) -> list[list[str]]:
    """Import circles (strongly connected sets of modules) not wholly inside the engine."""
    return [
        sorted(c)
        for c in nx.strongly_connected_components(graph)
        if len(c) > 1 and not all(m.startswith("sim.engine.") for m in c)
    ]


def test_every_module_belongs_to_a_layer() -> None:
    for name in MODULES:
        part_of(name)


def test_no_package_imports_its_own_layer_or_one_above() -> None:
    assert forbidden(import_graph()) == []


def test_no_import_circle_outside_the_engine() -> None:
    assert circles(import_graph()) == []


def test_no_loose_modules_beside_the_packages() -> None:
    loose = sorted(p.name for p in SIM.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "api.py", "constants.py", "errors.py"]


def test_no_stray_files_in_the_tree() -> None:
    stray = [p for p in SIM.rglob("*") if p.is_file() and p.suffix not in {".py", ".typed"}]
    assert [p for p in stray if "__pycache__" not in p.parts] == []


# ---------------------------------------------------------------- the checker itself
def _graph_of(sources: dict[str, str]) -> nx.DiGraph:
    graph = nx.DiGraph()
    for name, text in sources.items():
        graph.add_node(name)
        for target in _imports(ast.parse(text), name, False):
            graph.add_edge(name, target)
    return graph


def test_the_checker_sees_an_upward_import_even_deferred() -> None:
    graph = _graph_of(
        {"sim.model.checks": "def f():\n    from sim.experiment.runner import run_one\n"}
    )
    assert forbidden(graph) == [
        "sim.model.checks (layer 2) imports sim.experiment.runner (layer 4)"
    ]


def test_the_checker_ignores_type_checking_imports() -> None:
    text = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sim.cli.main import app\n"
    assert forbidden(_graph_of({"sim.model.checks": text})) == []


def test_the_checker_sees_a_sideways_import() -> None:
    graph = _graph_of({"sim.engine.rpc": "from sim.static.analysis import analyze\n"})
    assert len(forbidden(graph)) == 1


def test_the_checker_finds_a_circle_outside_the_engine_only() -> None:
    graph = _graph_of(
        {
            "sim.model.a": "from sim.model.b import x\n",
            "sim.model.b": "import sim.model.a\n",
            "sim.engine.c": "from sim.engine.d import y\n",
            "sim.engine.d": "from sim.engine.c import z\n",
        }
    )
    assert circles(graph) == [["sim.model.a", "sim.model.b"]]


@pytest.mark.parametrize("part", sorted(p for p in LAYERS if p not in {"sim", "sim.errors"}))
def test_each_package_says_what_it_owns(part: str) -> None:
    path = MODULES[part]
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, f"{path}: no docstring"
