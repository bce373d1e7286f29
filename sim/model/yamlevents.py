"""YAML to plain data with the line of every key and item, from libyaml's event stream.

The same result as the round-trip parse in :mod:`sim.model.loader` (YAML 1.2, the rules of
:class:`~sim.model.loader.Limits`, tags refused, merge keys resolved), about 30 times
faster: libyaml (ruamel.yaml.clib's ``CParser``) scans and parses in C, and this module
builds dictionaries and lists from the events in one loop with an explicit stack (no
recursion, so no nesting can exhaust the interpreter's or the C stack).  ``tests/
test_yamlevents.py`` checks it against the round-trip parse on every YAML file of the tree.

:func:`available` is false where the C parser is not installed; the loader then parses with
the pure-Python round-trip parser.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import ScalarNode

Loc = tuple[str | int, ...]

CORE = "tag:yaml.org,2002:"
STR, NULL, INT, MERGE = CORE + "str", CORE + "null", CORE + "int", CORE + "merge"
ALLOWED_TAGS = {CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq")}


def _c_parser() -> YAML | None:
    yaml = YAML(typ="safe", pure=False)
    return yaml if "CParser" in getattr(yaml.Parser, "__name__", "") else None


_YAML = _c_parser()


def available() -> bool:
    """Whether libyaml's parser is installed (ruamel.yaml.clib)."""
    return _YAML is not None


class Refused(Exception):
    """The document breaks a rule: ``loc`` (its line is in ``lines``), ``message``; with
    ``line`` set, a YAML-level error at that line (1-based) instead."""

    def __init__(self, loc: Loc, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.loc, self.message, self.line = loc, message, line
        self.lines: dict[Loc, int] = {}  # the lines known when it was raised


@dataclass
class _Open:
    """A mapping or sequence being built."""

    loc: Loc
    out: Any
    anchor: str | None
    lines_at: int  # len(builder.line_log) when it opened (its subtree's lines follow)
    count_at: int  # values counted before it
    line: int = 0  # where it starts
    key: str | None = None  # a mapping's key awaiting its value
    merges: list[tuple[dict[str, Any], dict[Loc, int]]] = field(default_factory=list)
    merging: bool = False  # the key awaiting its value is ``<<``
    merge_list: bool = False  # inside the sequence of aliases of a ``<<`` key
    raw_keys: set[Any] = field(default_factory=set)


@dataclass
class _Anchor:
    value: Any
    size: int  # values in its subtree (an alias counts all of them again)
    lines: dict[Loc, int]  # line of every location under it, relative to it
    line: int  # where it is written


class _Builder:
    def __init__(self, max_depth: int, max_nodes: int, max_digits: int) -> None:
        self.max_depth, self.max_nodes, self.max_digits = max_depth, max_nodes, max_digits
        self.lines: dict[Loc, int] = {(): 1}
        self.line_log: list[Loc] = []  # locations in the order their lines were set
        self.count = 0
        self.anchors: dict[str, _Anchor] = {}
        self.stack: list[_Open] = []
        self.root: Any = None
        assert _YAML is not None
        self.constructor = _YAML.constructor
        self.resolver = _YAML.resolver

    # ------------------------------------------------------------------ scalars
    def scalar(self, ev: ScalarEvent, loc: Loc, what: str = "an integer") -> Any:
        tag = ev.tag
        if tag is not None and ev.implicit == (False, False):
            if tag not in ALLOWED_TAGS:
                raise Refused(loc, f"yaml tags are not allowed, got {tag!r}")
        else:
            tag = self.resolver.resolve(ScalarNode, ev.value, ev.implicit)
        if tag == STR:
            return ev.value
        if tag == NULL:
            return None
        if tag == INT:
            digits = sum(c.isalnum() for c in ev.value)
            if digits > self.max_digits:
                raise Refused(loc, f"{what} of {digits} digits is out of range")
        node = ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, style=ev.style)
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:  # e.g. a timestamp with month 13
            raise Refused(loc, f"invalid value {ev.value!r}: {exc}") from None

    # ------------------------------------------------------------------ values
    def _place(self, loc: Loc, line: int) -> None:
        self.lines[loc] = line
        self.line_log.append(loc)

    def _count(self, loc: Loc, n: int = 1) -> None:
        self.count += n
        if self.count > self.max_nodes:
            msg = f"the document expands to more than {self.max_nodes} values (yaml aliases?)"
            raise Refused(loc, msg)

    def _value_loc(self, line: int) -> Loc:
        """The location of the next value (a mapping's value, a sequence's item, the root),
        its line recorded for a sequence item (a mapping's key recorded it)."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.out, list):
            loc = (*top.loc, len(top.out))
            self._place(loc, line)
            return loc
        assert top.key is not None
        return (*top.loc, top.key)

    def _store(self, value: Any) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        if isinstance(top.out, list):
            top.out.append(value)
        else:
            assert top.key is not None
            top.out[top.key] = value
            top.key = None

    def _key(self, top: _Open, ev: Any) -> None:
        line = ev.start_mark.line + 1
        if isinstance(ev, AliasEvent):
            anchor = self.anchors.get(ev.anchor)
            if anchor is None:
                raise Refused(top.loc, f"found undefined alias {ev.anchor!r}", line)
            value = anchor.value
        elif isinstance(ev, ScalarEvent):
            if ev.implicit[0] and ev.value == "<<" and ev.tag is None:
                top.merging = True
                top.key = "<<"
                return
            value = self.scalar(ev, top.loc, "an integer key")
        else:
            raise Refused(top.loc, "mapping keys must be scalars", line)
        if isinstance(value, dict | list):
            raise Refused(top.loc, "mapping keys must be scalars", line)
        key = str(value)
        if key in top.out or value in top.raw_keys:  # 1 and true are one key, as in Python
            raise Refused(top.loc, f'found duplicate key "{key}"', line)
        top.raw_keys.add(value)
        top.key = key
        loc = (*top.loc, key)
        self._place(loc, line)
        if ev.anchor is not None:
            self.anchors[ev.anchor] = _Anchor(value, 1, {}, line)

    def event(self, ev: Any) -> None:
        top = self.stack[-1] if self.stack else None
        if top is not None and top.merging:
            self._merge_value(top, ev)
            return
        if isinstance(ev, MappingEndEvent | SequenceEndEvent):
            self._close()
            return
        if top is not None and isinstance(top.out, dict) and top.key is None:
            self._key(top, ev)
            return
        line = ev.start_mark.line + 1
        loc = self._value_loc(line)
        if isinstance(ev, ScalarEvent):
            self._count(loc)
            value = self.scalar(ev, loc)
            if ev.anchor is not None:
                self.anchors[ev.anchor] = _Anchor(value, 1, {}, line)
            self._store(value)
        elif isinstance(ev, AliasEvent):
            anchor = self.anchors.get(ev.anchor)
            if anchor is None:
                raise Refused(loc, f"found undefined alias {ev.anchor!r}", line)
            if loc and isinstance(loc[-1], int):  # an item's line: where its value is
                self.lines[loc] = anchor.line
            for sub, n in anchor.lines.items():
                self._place((*loc, *sub), n)
            over = self.max_nodes - self.count  # the value past the limit, if any
            self._count(
                (*loc, *_nth(anchor.value, over)) if over < anchor.size else loc, anchor.size
            )
            self._store(copy.deepcopy(anchor.value))
        elif isinstance(ev, MappingStartEvent | SequenceStartEvent):
            tag = ev.tag
            if tag is not None and not ev.implicit and tag not in ALLOWED_TAGS:
                raise Refused(loc, f"yaml tags are not allowed, got {tag!r}")
            if len(self.stack) + 1 >= self.max_depth:
                raise Refused(loc, f"nesting deeper than {self.max_depth} levels", line)
            self._count(loc)
            out: Any = {} if isinstance(ev, MappingStartEvent) else []
            opened = _Open(loc, out, ev.anchor, len(self.line_log), self.count - 1, line)
            self.stack.append(opened)

    def _merge_value(self, top: _Open, ev: Any) -> None:
        """The value of a ``<<`` key, one event at a time: an alias of a mapping, or a
        sequence of them (YAML's merge key type); their keys join the mapping unless written
        in it (the first alias wins among them)."""
        line = ev.start_mark.line + 1
        if isinstance(ev, SequenceStartEvent) and not top.merge_list:
            top.merge_list = True
            return
        if isinstance(ev, SequenceEndEvent) and top.merge_list:
            top.merge_list = top.merging = False
            top.key = None
            return
        anchor = self.anchors.get(ev.anchor) if isinstance(ev, AliasEvent) else None
        if anchor is None or not isinstance(anchor.value, dict):
            raise Refused(top.loc, "a merge key (<<) takes aliases of mappings", line)
        self._count(top.loc, anchor.size - 1)
        top.merges.append((anchor.value, anchor.lines))
        if not top.merge_list:
            top.merging = False
            top.key = None

    def _close(self) -> None:
        done = self.stack.pop()
        if done.merges:
            line = self.lines[done.loc]
            for value, lines in done.merges:
                for key, item in value.items():
                    if key in done.out:
                        continue
                    done.out[key] = copy.deepcopy(item)
                    self._place((*done.loc, key), line)
                    for sub, n in lines.items():
                        if sub[:1] == (key,) and len(sub) > 1:
                            self._place((*done.loc, *sub), n)
        if done.anchor is not None:
            cut = len(done.loc)
            lines = {loc[cut:]: self.lines[loc] for loc in self.line_log[done.lines_at :]}
            size = self.count - done.count_at
            self.anchors[done.anchor] = _Anchor(done.out, size, lines, done.line)
        self._store(done.out)


def _nth(value: Any, n: int) -> Loc:
    """The location, under ``value``, of its ``n``-th value in document order (0: itself)."""
    todo: list[tuple[Loc, Any]] = [((), value)]
    while todo:
        loc, v = todo.pop()
        if n == 0:
            return loc
        n -= 1
        items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
        todo += reversed([((*loc, k), child) for k, child in items])
    return ()


def parse(text: str, max_depth: int, max_nodes: int, max_digits: int) -> tuple[Any, dict[Loc, int]]:
    """The document in ``text`` as plain data, and the line (1-based) of every location.

    Raises
    ------
    Refused
        a rule broken (tags, limits, duplicate keys, more than one document)
    ruamel.yaml.error.YAMLError
        not YAML to libyaml (the scanner's or parser's error, with its mark)
    """
    assert _YAML is not None
    b = _Builder(max_depth, max_nodes, max_digits)
    documents = 0
    try:
        for ev in _YAML.parse(text):
            if isinstance(ev, DocumentStartEvent):
                documents += 1
                if documents > 1:
                    line = ev.start_mark.line + 1
                    raise Refused((), "found a second document (one per file)", line)
            elif isinstance(ev, _VALUE_EVENTS):
                b.event(ev)
    except Refused as exc:
        exc.lines = b.lines
        raise
    return b.root, b.lines


_VALUE_EVENTS = (
    ScalarEvent,
    AliasEvent,
    MappingStartEvent,
    SequenceStartEvent,
    MappingEndEvent,
    SequenceEndEvent,
)


__all__ = ["Refused", "available", "parse"]
