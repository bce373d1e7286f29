"""Daemon config files in the ``key = value`` format (``#`` comments; values are integers,
quoted strings or ``[ ... ]`` lists that may span lines; ``;`` may end an entry).

Which keys mean what is not decided here: the import mapping names the keys that set each
server's worker pool, and every other key is reported as unsupported by the importer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sim.errors import ConfigError
from sim.importer.rooted import HostRoot, as_root, read_text

Value = int | str | list["Value"]

_TOKEN = re.compile(
    r"""(?P<ws>[ \t\r]+)|(?P<comment>\#[^\n]*)|(?P<nl>\n)|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    |(?P<int>[-+]?\d+)|(?P<str>"(?:[^"\\\n]|\\.)*"|'[^'\n]*')|(?P<punct>[=\[\],;])""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class ConfEntry:
    """One ``key = value`` entry of a config file, with where it was written."""

    key: str
    value: Value
    file: str
    line: int

    @property
    def where(self) -> str:
        """``FILE:LINE`` of the entry."""
        return f"{self.file}:{self.line}"


def _tokens(text: str, file: str) -> list[tuple[str, str, int]]:
    out, pos, line = [], 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ConfigError.single(file, f"unexpected character {text[pos]!r}", line=line)
        kind = m.lastgroup or ""
        if kind == "nl":
            out.append(("nl", "\n", line))
            line += 1
        elif kind not in ("ws", "comment"):
            out.append((kind, m.group(), line))
        pos = m.end()
    out.append(("nl", "", line))
    return out


class _Parser:
    def __init__(self, text: str, file: str) -> None:
        self.toks = _tokens(text, file)
        self.file = file
        self.i = 0

    def peek(self, skip_nl: bool = False) -> tuple[str, str, int]:
        while skip_nl and self.toks[self.i][0] == "nl" and self.i < len(self.toks) - 1:
            self.i += 1
        return self.toks[self.i]

    def take(self, skip_nl: bool = False) -> tuple[str, str, int]:
        tok = self.peek(skip_nl)
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def fail(self, tok: tuple[str, str, int], want: str) -> ConfigError:
        got = "end of line" if tok[0] == "nl" else repr(tok[1])
        return ConfigError.single(self.file, f"expected {want}, got {got}", line=tok[2])

    def value(self, in_list: bool = False) -> Value:
        tok = self.take(skip_nl=in_list)
        if tok[0] == "int":
            return int(tok[1])
        if tok[0] == "str":
            body = tok[1][1:-1]
            return re.sub(r"\\(.)", r"\1", body) if tok[1][0] == '"' else body
        if tok[1] == "[":
            items: list[Value] = []
            while self.peek(skip_nl=True)[1] != "]":
                items.append(self.value(in_list=True))
                sep = self.peek(skip_nl=True)
                if sep[1] == ",":
                    self.take(skip_nl=True)
                elif sep[1] != "]":
                    raise self.fail(sep, "',' or ']'")
            self.take(skip_nl=True)
            return items
        raise self.fail(tok, "an integer, a quoted string or a [list]")

    def entries(self) -> list[ConfEntry]:
        out = []
        while self.i < len(self.toks) - 1:
            tok = self.take()
            if tok[0] == "nl" or tok[1] == ";":
                continue
            if tok[0] != "name":
                raise self.fail(tok, "a setting name")
            eq = self.take()
            if eq[1] != "=":
                raise self.fail(eq, "'='")
            out.append(ConfEntry(tok[1], self.value(), self.file, tok[2]))
            end = self.take()
            if end[0] != "nl" and end[1] != ";":
                raise self.fail(end, "the end of the line")
        return out


def parse_conf_text(text: str, file: str) -> dict[str, ConfEntry]:
    """Every setting of one config file; a key set twice keeps its last value.

    Raises
    ------
    ConfigError
        a syntax error, with file and line
    """
    return {e.key: e for e in _Parser(text, file).entries()}


def load_conf(path: Path, root: Path | HostRoot | None = None) -> dict[str, ConfEntry]:
    """The settings of the config file ``path``, resolved inside ``root`` (or inside its
    folder when that is not in ``root``)."""
    real = as_root(root).tree_of(path.parent).local(path, str(path))
    return parse_conf_text(read_text(real, path, "config file"), str(path))
