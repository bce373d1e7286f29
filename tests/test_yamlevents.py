"""The libyaml event parser (sim/model/yamlevents.py) against the round-trip parser it
replaces: the same data, the same line for every location, the same refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import ConfigError
from sim.model import yamlevents
from sim.model.loader import LIMITS, Limits, Source, parse_events, parse_roundtrip

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(
    p
    for folder in ("models", "experiments", "tests", "benchmarks", "results")
    for p in (ROOT / folder).rglob("*.yaml")
)

pytestmark = pytest.mark.skipif(not yamlevents.available(), reason="ruamel.yaml.clib missing")


def outcome(parse, text: str, limits: Limits = LIMITS):  # type: ignore[no-untyped-def]
    """What a parser makes of ``text``: (data, lines) or the issues it raises."""
    try:
        src: Source = parse(Path("doc.yaml"), text, limits)
    except ConfigError as err:
        return [(i.line, i.field, i.message) for i in err.issues]
    return src.data, src.lines


def test_the_tree_has_yaml_files() -> None:
    assert len(FILES) > 150


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_of_the_tree_parses_the_same(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    events, roundtrip = outcome(parse_events, text), outcome(parse_roundtrip, text)
    if isinstance(roundtrip, list):  # a refused file: refused too, at the same line
        assert isinstance(events, list)
        assert [line for line, *_ in events] == [line for line, *_ in roundtrip]
    else:
        assert events == roundtrip


CASES = {
    "scalars": "a: 1\nb: 0o17\nc: 0x1F\nd: 1_000\ne: 1.5e3\nf: .inf\ng: true\nh: yes\n"
    "i: ~\nj:\nk: '5'\nl: !!str 5\nm: 012\nn: -0\no: 2001-12-14\np: 'a''b'\nq: |\n  x\n  y\n",
    "keys": "1: a\ntrue: b\nnull: c\n1.5: d\n",
    "anchors": "a: &a {x: [1, 2], y: {z: 3}}\nb: *a\nc: [*a, *a]\nd: &s hello\ne: [*s]\n",
    "merge": "base: &b {x: 1, y: {z: 2}}\nm:\n  <<: *b\n  y: 2\n",
    "merge-list": "a: &a {x: 1}\nb: &b {x: 2, y: 3}\nm:\n  <<: [*a, *b]\n  z: 4\n",
    "nested": "a:\n  - b:\n      - [1, {c: d}]\n      - e: f\n  - - g\n    - h\n",
    "duplicate": "a: 1\nb: 2\na: 3\n",
    "two-documents": "a: 1\n---\nb: 2\n",
    "tag": "a: !custom 3\n",
    "python-tag": "a: !!python/object/apply:os.system ['true']\n",
    "tagged-map": "a: !x {b: 1}\n",
    "syntax": "a: [1, 2\nb: 3\n",
    "empty": "",
    "scalar-document": "3\n",
    "long-int": "a: " + "9" * 50 + "\n",
    "colon-in-flow": "sockets: [tcp:16509, 'a:b']\nx: {k: v:w}\n",
    "escapes": 'a: "x\\/y\\tz"\n',
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_edge_cases_parse_the_same(name: str) -> None:
    text = CASES[name]
    events, roundtrip = outcome(parse_events, text), outcome(parse_roundtrip, text)
    if isinstance(roundtrip, list):
        assert isinstance(events, list), events
        assert [(line, field) for line, field, _ in events] == [
            (line, field) for line, field, _ in roundtrip
        ]
        assert [m.split(",")[0][:20] for *_, m in events] == [
            m.split(",")[0][:20] for *_, m in roundtrip
        ] or name in ("syntax", "two-documents")  # worded by each parser
    else:
        assert events == roundtrip


@pytest.mark.parametrize("depth", range(1, 12))
@pytest.mark.parametrize("limit", [3, 5, 8])
def test_depth_limit_is_the_same(depth: int, limit: int) -> None:
    text = "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "leaf: [1]\n"
    limits = Limits(max_depth=limit)
    assert outcome(parse_events, text, limits) == outcome(parse_roundtrip, text, limits)


@pytest.mark.parametrize("limit", [5, 10, 13, 20, 40, 100])
def test_alias_limit_is_the_same(limit: int) -> None:
    text = "a: &a [1, 2, 3]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\nd: {x: *b}\n"
    limits = Limits(max_nodes=limit)
    assert outcome(parse_events, text, limits) == outcome(parse_roundtrip, text, limits)


def test_deep_nesting_is_refused_without_recursion() -> None:
    text = "a: " + "[" * 100_000 + "]" * 100_000 + "\n"
    (issue,) = outcome(parse_events, text)
    assert issue[2] == f"invalid yaml: nesting deeper than {LIMITS.max_depth} levels"


@pytest.mark.parametrize(
    "path",
    [p for p in FILES if p.parts[len(ROOT.parts)] in ("models", "experiments")],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_shipped_models_take_the_fast_parser(path: Path) -> None:
    """No shipped model needs the fallback to the pure-Python parser (the speed of
    ``validate`` and of every run's start rests on it)."""
    data, _ = yamlevents.parse(path.read_text(encoding="utf-8"), 64, 200_000, 40)
    assert isinstance(data, dict)
