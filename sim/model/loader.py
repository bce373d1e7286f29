"""Safe YAML loading with line numbers, and strict validation into the schema.

Every error found in a file is reported at once, each with file, line, field and value.
ruamel.yaml's round-trip loader builds only plain mappings, sequences and scalars (it never
constructs arbitrary Python objects), and rejects duplicate keys.  Only regular files are
read, and every file is bounded (:class:`Limits`): its size, nesting depth, the number of
values after alias expansion (no "billion laughs"), and the length of integer literals.

Overlays: a document with ``extends: FILE`` (a file of the same kind in the same folder, so
relative paths inside it mean the same thing) is that file with changes.  Every other
top-level key of the overlay replaces the base's; ``patch: {FIELD: {NAME: {key: value}}}``
changes keys of the item called NAME in the base's list FIELD (``daemons``, ``units``, ...).
The base is validated on its own first (its errors name the base file); errors in the merged
document name the overlay's line of the key that caused them (the ``extends:`` line for
content taken unchanged from the base).
"""

from __future__ import annotations

import copy
import functools
import importlib
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from sim.errors import ConfigError, ConfigIssue
from sim.model import yamlevents

Loc = tuple[str | int, ...]
T = TypeVar("T", bound=BaseModel)


class _Kinds(Mapping[str, type[BaseModel]]):
    """Document kind -> its schema, each schema module imported on first use (a pydantic
    model costs milliseconds to build; ``validate`` of one file needs few of them)."""

    _WHERE: ClassVar[dict[str, tuple[str, str]]] = {
        "catalog": ("sim.schema.catalog", "Catalog"),
        "topology": ("sim.schema.topology", "Topology"),
        "workload": ("sim.schema.workload", "Workload"),
        "client-profiles": ("sim.schema.workload", "ClientProfiles"),
        "experiment": ("sim.schema.experiment", "Experiment"),
        "import-map": ("sim.schema.importmap", "ImportMap"),
        "catalog-overlay": ("sim.schema.overlay", "CatalogOverlay"),
        "realhost": ("sim.schema.realhost", "RealHost"),
    }

    def __getitem__(self, kind: str) -> type[BaseModel]:
        module, name = self._WHERE[kind]
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return iter(self._WHERE)

    def __len__(self) -> int:
        return len(self._WHERE)


KINDS: Mapping[str, type[BaseModel]] = _Kinds()


def format_loc(loc: Loc) -> str:
    """A location as a field path: ``('daemons', 0, 'unit')`` -> ``daemons[0].unit``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class Source:
    """A parsed YAML file: plain data plus the line of every key and item."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int:
        """Line of the deepest prefix of ``loc`` that exists in the file (1-based)."""
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.lines:
                return self.lines[loc[:n]]
        return 1

    def value_at(self, loc: Loc) -> Any:
        """The value at ``loc`` in the parsed data, or ``None`` when there is none."""
        node = self.data
        for part in loc:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    def issue(self, loc: Loc, message: str) -> ConfigIssue:
        """A ConfigIssue about ``loc`` in this file, at its line."""
        return ConfigIssue(str(self.path), self.line_of(loc), format_loc(loc), message)


@dataclass
class Loaded(Generic[T]):
    """A validated document with the source it came from (for cross-reference errors)."""

    doc: T
    src: Source

    @property
    def path(self) -> Path:
        """The file the document was read from."""
        return self.src.path

    def issue(self, loc: Loc, message: str) -> ConfigIssue:
        """A ConfigIssue about ``loc`` in this document's file, at its line."""
        return self.src.issue(loc, message)

    def resolve(self, ref: str) -> Path:
        """A path written in this file, relative to this file's folder (absolute when it can
        be resolved; a symlink loop is left for the reader to report)."""
        path = self.src.path.parent / ref
        try:
            return path.resolve()
        except (OSError, RuntimeError):
            return path.absolute()


@dataclass(frozen=True)
class Limits:
    """What reading one input file may cost; a file beyond a limit is invalid input.

    Attributes
    ----------
    max_bytes : largest file size read (bytes): ten times the largest shipped model, and
        what the pure-Python parser reads in a few seconds (about 60 k values a second)
    max_depth : deepest nesting of mappings and sequences
    max_nodes : most values after expanding YAML aliases (an alias counts its whole subtree)
    max_digits : longest integer literal (the largest seed has 19 digits)
    """

    max_bytes: int = 512 * 1024
    max_depth: int = 64
    max_nodes: int = 200_000
    max_digits: int = 40


LIMITS = Limits()
"""The limits every read applies unless given others (tests pass or substitute tiny ones)."""


class _Refused(Exception):
    def __init__(self, loc: Loc, message: str) -> None:
        self.loc, self.message = loc, message


@dataclass(frozen=True)
class _LongInt:
    """An integer literal too long to convert (Python refuses beyond 4300 digits)."""

    digits: int


class _Constructor(RoundTripConstructor):
    """The round-trip constructor, refusing integer literals longer than the limit."""

    max_digits = LIMITS.max_digits

    def construct_yaml_int(self, node: Any) -> Any:
        digits = sum(c.isalnum() for c in str(node.value))
        if digits > self.max_digits:
            return _LongInt(digits)
        return super().construct_yaml_int(node)


_Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_yaml_int)


def _tag(node: Any) -> str | None:
    """An explicit application tag (``!x``, ``!!python/...``); standard YAML tags pass."""
    tag = getattr(node, "tag", None)
    value = getattr(tag, "value", tag) if tag is not None else None
    if isinstance(value, str) and value and value not in _CORE_TAGS:
        return value
    return None


_CORE_TAGS = {
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")
}


@dataclass
class _Flattener:
    """Round-trip nodes to plain data, recording lines and counting values (alias bombs)."""

    max_nodes: int
    lines: dict[Loc, int] = field(default_factory=lambda: {(): 1})
    count: int = 0

    def plain(self, node: Any, loc: Loc) -> Any:
        self.count += 1
        if self.count > self.max_nodes:
            msg = f"the document expands to more than {self.max_nodes} values (yaml aliases?)"
            raise _Refused(loc, msg)
        tag = _tag(node)
        if tag is not None:
            raise _Refused(loc, f"yaml tags are not allowed, got {tag!r}")
        if isinstance(node, CommentedMap):
            return self._mapping(node, loc)
        if isinstance(node, CommentedSeq):
            return self._sequence(node, loc)
        if isinstance(node, _LongInt):
            raise _Refused(loc, f"an integer of {node.digits} digits is out of range")
        if isinstance(node, TaggedScalar):
            return node.value
        if isinstance(node, str):
            return str(node)
        return node

    def _mapping(self, node: CommentedMap, loc: Loc) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if isinstance(key, _LongInt):
                raise _Refused(loc, f"an integer key of {key.digits} digits is out of range")
            line = node.lc.data[key][0] + 1 if key in (node.lc.data or {}) else self.lines[loc]
            self.lines[(*loc, str(key))] = line
            out[str(key)] = self.plain(value, (*loc, str(key)))
        return out

    def _sequence(self, node: CommentedSeq, loc: Loc) -> list[Any]:
        items = []
        for i, value in enumerate(node):
            data = node.lc.data or {}
            self.lines[(*loc, i)] = data[i][0] + 1 if i in data else self.lines[loc]
            items.append(self.plain(value, (*loc, i)))
        return items


_KINDS_OF_FILE = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    what = next((name for test, name in _KINDS_OF_FILE if test(mode)), "not a file")
    return f"not a regular file ({what})"


def read_text(path: Path, limits: Limits | None = None) -> str:
    """The text of a regular file of at most ``limits.max_bytes`` bytes, in UTF-8.

    Pipes, devices and directories are refused before they are opened (reading a FIFO
    would block, ``/dev/zero`` never ends); a symlink loop or a permission problem is an
    error naming the file.
    """
    limits = limits or LIMITS
    try:
        st = os.stat(path)
        problem = _not_regular(st.st_mode) or _too_big(st.st_size, limits)
        if problem:
            raise ConfigError.single(path, problem)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            problem = _not_regular(os.fstat(fh.fileno()).st_mode)
            data = b"" if problem else fh.read(limits.max_bytes + 1)
    except FileNotFoundError:
        raise ConfigError.single(path, "file not found") from None
    except OSError as exc:
        raise ConfigError.single(path, f"cannot read file: {exc.strerror or exc}") from None
    problem = problem or _too_big(len(data), limits)
    if problem:
        raise ConfigError.single(path, problem)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError.single(path, f"cannot read file: not utf-8 ({exc.reason})") from None


def _too_big(size: int, limits: Limits) -> str | None:
    if size > limits.max_bytes:
        return f"file is larger than {limits.max_bytes} bytes"
    return None


def _parse(p: Path, text: str, limits: Limits) -> Any:
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    yaml.max_depth = limits.max_depth
    yaml.Constructor = type("Constructor", (_Constructor,), {"max_digits": limits.max_digits})
    try:
        return yaml.load(text)
    except YAMLError as exc:
        raise _yaml_error(p, exc, limits) from None


def _yaml_error(p: Path, exc: YAMLError, limits: Limits) -> ConfigError:
    """A parser's error as the ConfigError of its line."""
    if not isinstance(exc, MarkedYAMLError):
        return ConfigError.single(p, f"invalid yaml: {exc}")
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 0
    problem = (exc.problem or str(exc)).strip().splitlines()[0]
    if "maximum depth" in problem:
        problem = f"nesting deeper than {limits.max_depth} levels"
    return ConfigError.single(p, f"invalid yaml: {problem}", line=line)


def parse_roundtrip(p: Path, text: str, limits: Limits) -> Source:
    """``text`` parsed by ruamel.yaml's pure-Python round-trip parser (the reference, and
    the parser where libyaml is not installed)."""
    raw = _parse(p, text, limits)
    flat = _Flattener(limits.max_nodes)
    try:
        data = flat.plain(raw, ())
    except _Refused as exc:
        raise ConfigError([Source(p, None, flat.lines).issue(exc.loc, exc.message)]) from None
    return Source(p, data, flat.lines)


def parse_events(p: Path, text: str, limits: Limits) -> Source:
    """``text`` parsed from libyaml's events (:mod:`sim.model.yamlevents`): the same result
    as :func:`parse_roundtrip`, about 30 times faster; a text libyaml cannot parse goes to
    :func:`parse_roundtrip` (which parses it or gives the error)."""
    try:
        data, lines = yamlevents.parse(text, limits.max_depth, limits.max_nodes, limits.max_digits)
    except yamlevents.Refused as exc:
        if exc.line is not None:
            raise ConfigError.single(p, f"invalid yaml: {exc.message}", line=exc.line) from None
        raise ConfigError([Source(p, None, exc.lines).issue(exc.loc, exc.message)]) from None
    except YAMLError:
        # libyaml scans YAML 1.1, which refuses a few YAML 1.2 forms (a ':' inside a plain
        # scalar in a flow sequence, ``[tcp:16509]``): the 1.2 parser decides
        return parse_roundtrip(p, text, limits)
    return Source(p, data, lines)


def read_yaml(path: str | Path, limits: Limits | None = None) -> Source:
    """Parse one YAML file safely, keeping the line of every key and sequence item.

    ``limits`` (default :data:`LIMITS`) bound the file's size, nesting depth, expanded size
    and integer literals.
    """
    p = Path(path)
    limits = limits or LIMITS
    return _parsed(p, read_text(p, limits), limits)


@functools.lru_cache(maxsize=64)
def _parsed(p: Path, text: str, limits: Limits) -> Source:
    """:func:`read_yaml` after reading: cached per process by path, text and limits (one
    experiment names its catalog several times, through each topology and the workload, and
    a parse costs about 1 ms per 10 lines in the pure-Python parser, 1 ms per 300 from
    libyaml's events).  The file is always read again, so an edit is never missed.  Callers
    share the cached data and must not change it
    (:func:`_merge` copies before it patches)."""
    src = (parse_events if yamlevents.available() else parse_roundtrip)(p, text, limits)
    if not isinstance(src.data, dict):
        raise ConfigError.single(p, "the document must be a mapping with a 'kind:' key", line=1)
    return src


EXTENDS, PATCH = "extends", "patch"


def _overlay_error(src: Source, loc: Loc, message: str) -> ConfigError:
    return ConfigError([src.issue(loc, message)])


def resolve_extends(src: Source, chain: tuple[Path, ...] = ()) -> Source:
    """The document ``src`` describes: itself, or its ``extends:`` base with its changes."""
    data = src.data
    if EXTENDS not in data:
        if PATCH in data:
            raise _overlay_error(src, (PATCH,), "patch needs 'extends:' (a base to change)")
        return src
    ref = data[EXTENDS]
    if not isinstance(ref, str) or "/" in ref or ref in ("", ".", ".."):
        msg = f"extends must name a file in the same folder, got {ref!r}"
        raise _overlay_error(src, (EXTENDS,), msg)
    here = src.path.resolve()
    base_path = src.path.parent / ref
    if base_path.resolve() in (*chain, here):
        raise _overlay_error(src, (EXTENDS,), f"extends cycle through {ref!r}")
    if not base_path.is_file():
        raise _overlay_error(src, (EXTENDS,), f"extends: file {ref!r} not found")
    base = resolve_extends(read_yaml(base_path), (*chain, here))
    kind = document_kind(base)
    if data.get("kind", kind) != kind:
        msg = f"extends a {kind} file, but this document is kind {data.get('kind')!r}"
        raise _overlay_error(src, ("kind",), msg)
    validate_source(base, KINDS[kind])
    return _merge(src, base)


def _merge(src: Source, base: Source) -> Source:
    at = src.line_of((EXTENDS,))
    merged = copy.deepcopy(base.data)
    lines: dict[Loc, int] = {loc: at for loc in base.lines}
    lines[()] = 1
    for key, value in src.data.items():
        if key in (EXTENDS, PATCH):
            continue
        merged[key] = copy.deepcopy(value)
        lines = {loc: n for loc, n in lines.items() if loc[:1] != (key,)}
        lines.update({loc: n for loc, n in src.lines.items() if loc[:1] == (key,)})
    patch = src.data.get(PATCH, {})
    if not isinstance(patch, dict):
        raise _overlay_error(src, (PATCH,), "patch must map list fields to {name: changes}")
    issues: list[ConfigIssue] = []
    for field_name, items in patch.items():
        issues += _patch_field(src, merged, lines, field_name, items)
    if issues:
        raise ConfigError(issues)
    return Source(src.path, merged, lines)


def _patch_field(
    src: Source, merged: dict[str, Any], lines: dict[Loc, int], field_name: str, items: Any
) -> list[ConfigIssue]:
    target = merged.get(field_name)
    loc: Loc = (PATCH, field_name)
    if not isinstance(target, list) or not all(isinstance(x, dict) for x in target):
        return [src.issue(loc, f"{field_name!r} is not a list of named items in the base")]
    if not isinstance(items, dict):
        return [src.issue(loc, "patch entries map item names to {key: value} changes")]
    index = {item.get("name"): i for i, item in enumerate(target)}
    out = []
    for name, changes in items.items():
        if name not in index:
            out.append(src.issue((*loc, name), f"no item named {name!r} in {field_name!r}"))
            continue
        if not isinstance(changes, dict):
            out.append(src.issue((*loc, name), "changes must be a mapping of keys to values"))
            continue
        i = index[name]
        for key, value in changes.items():
            target[i][key] = copy.deepcopy(value)
            prefix = (*loc, name, key)
            for sloc, n in src.lines.items():
                if sloc[: len(prefix)] == prefix:
                    lines[(field_name, i, key, *sloc[len(prefix) :])] = n
    return out


_MESSAGES: dict[str, Callable[[dict[str, Any]], str]] = {
    "extra_forbidden": lambda e: "unknown key",
    "missing": lambda e: "required field missing",
}


def _message(err: Any, value: Any) -> str:
    custom = _MESSAGES.get(err["type"])
    msg = custom(err) if custom else str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    msg = msg[:1].lower() + msg[1:]
    if err["type"] not in ("missing", "extra_forbidden", "value_error") and not isinstance(
        value, dict | list
    ):
        msg += f", got {value!r}"
    return msg


def _child(node: Any, part: str | int) -> tuple[bool, Any]:
    """``(True, node[part])`` when ``part`` is a key or index of ``node``."""
    if isinstance(node, dict) and part in node:
        return True, node[part]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return True, node[part]
    return False, None


def _data_loc(src: Source, loc: Loc) -> Loc:
    """Drop the parts of a pydantic error location that are not in the data (union tags)."""
    node, out = src.data, []
    for part in loc:
        found, child = _child(node, part)
        if found:
            node = child
            out.append(part)
        elif isinstance(node, dict | list):
            continue
        else:
            break  # below a scalar: a union member's tag, not a place in the file
    return tuple(out)


def validate_source(src: Source, model: type[T]) -> Loaded[T]:
    """Validate parsed data against ``model``; every error becomes one ConfigIssue."""
    try:
        doc = model.model_validate(src.data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = _data_loc(src, tuple(err["loc"]))
            if err["type"] == "missing":
                loc = (*loc, *(p for p in err["loc"][-1:] if p not in loc))
            issues.append(src.issue(loc, _message(err, src.value_at(loc))))
        raise ConfigError(issues) from None
    return Loaded(doc, src)


def document_kind(src: Source) -> str:
    """The document's ``kind:`` value; raises ConfigError when it is missing or unknown."""
    kind = src.data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ConfigError(
            [src.issue(("kind",), f"kind must be one of {sorted(KINDS)}, got {kind!r}")]
        )
    return str(kind)


def load_any(path: str | Path) -> Loaded[Any]:
    """Load a file of any kind, chosen by its ``kind:`` key."""
    src = resolve_extends(read_yaml(path))
    return validate_source(src, KINDS[document_kind(src)])


def load_as(path: str | Path, model: type[T]) -> Loaded[T]:
    """Load a file that must be of one kind."""
    src = resolve_extends(read_yaml(path))
    kind = document_kind(src)
    if KINDS[kind] is not model:
        want = next(k for k, m in KINDS.items() if m is model)
        raise ConfigError([src.issue(("kind",), f"expected a {want} file, got kind {kind!r}")])
    return validate_source(src, model)
