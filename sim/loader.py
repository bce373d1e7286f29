"""Safe YAML loading with line numbers, and strict validation into the schema.

Every error found in a file is reported at once, each with file, line, field and value.
ruamel.yaml's round-trip loader builds only plain mappings, sequences and scalars (it never
constructs arbitrary Python objects), and rejects duplicate keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from sim.errors import ConfigError, ConfigIssue
from sim.realhost.spec import RealHost
from sim.schema import Catalog, ClientProfiles, Experiment, Topology, Workload
from sim.schema.importmap import ImportMap
from sim.schema.overlay import CatalogOverlay

Loc = tuple[str | int, ...]
T = TypeVar("T", bound=BaseModel)

KINDS: dict[str, type[BaseModel]] = {
    "catalog": Catalog,
    "topology": Topology,
    "workload": Workload,
    "client-profiles": ClientProfiles,
    "experiment": Experiment,
    "import-map": ImportMap,
    "catalog-overlay": CatalogOverlay,
    "realhost": RealHost,
}


def format_loc(loc: Loc) -> str:
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
        node = self.data
        for part in loc:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    def issue(self, loc: Loc, message: str) -> ConfigIssue:
        return ConfigIssue(str(self.path), self.line_of(loc), format_loc(loc), message)


@dataclass
class Loaded(Generic[T]):
    """A validated document with the source it came from (for cross-reference errors)."""

    doc: T
    src: Source

    @property
    def path(self) -> Path:
        return self.src.path

    def issue(self, loc: Loc, message: str) -> ConfigIssue:
        return self.src.issue(loc, message)

    def resolve(self, ref: str) -> Path:
        """A path written in this file, relative to this file's folder."""
        return (self.src.path.parent / ref).resolve()


class _TagRefused(Exception):
    def __init__(self, loc: Loc, tag: str) -> None:
        self.loc, self.tag = loc, tag


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


def _plain(node: Any, loc: Loc, lines: dict[Loc, int]) -> Any:
    tag = _tag(node)
    if tag is not None:
        raise _TagRefused(loc, tag)
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            line = node.lc.data[key][0] + 1 if key in (node.lc.data or {}) else lines[loc]
            lines[(*loc, str(key))] = line
            out[str(key)] = _plain(value, (*loc, str(key)), lines)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, value in enumerate(node):
            lines[(*loc, i)] = node.lc.data[i][0] + 1 if i in (node.lc.data or {}) else lines[loc]
            items.append(_plain(value, (*loc, i), lines))
        return items
    if isinstance(node, TaggedScalar):
        return node.value
    if isinstance(node, str):
        return str(node)
    return node


def read_yaml(path: str | Path) -> Source:
    """Parse one YAML file safely, keeping the line of every key and sequence item."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError.single(p, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError.single(p, f"cannot read file: {exc}") from None
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problem = (exc.problem or str(exc)).strip().splitlines()[0]
        raise ConfigError.single(p, f"invalid yaml: {problem}", line=line) from None
    except YAMLError as exc:
        raise ConfigError.single(p, f"invalid yaml: {exc}") from None
    lines: dict[Loc, int] = {(): 1}
    try:
        data = _plain(raw, (), lines)
    except _TagRefused as exc:
        src = Source(p, None, lines)
        raise ConfigError(
            [src.issue(exc.loc, f"yaml tags are not allowed, got {exc.tag!r}")]
        ) from None
    if not isinstance(data, dict):
        raise ConfigError.single(p, "the document must be a mapping with a 'kind:' key", line=1)
    return Source(p, data, lines)


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
            out.append(part)
            break
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
    kind = src.data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ConfigError(
            [src.issue(("kind",), f"kind must be one of {sorted(KINDS)}, got {kind!r}")]
        )
    return str(kind)


def load_any(path: str | Path) -> Loaded[Any]:
    """Load a file of any kind, chosen by its ``kind:`` key."""
    src = read_yaml(path)
    return validate_source(src, KINDS[document_kind(src)])


def load_as(path: str | Path, model: type[T]) -> Loaded[T]:
    """Load a file that must be of one kind."""
    src = read_yaml(path)
    kind = document_kind(src)
    if KINDS[kind] is not model:
        want = next(k for k, m in KINDS.items() if m is model)
        raise ConfigError([src.issue(("kind",), f"expected a {want} file, got kind {kind!r}")])
    return validate_source(src, model)
