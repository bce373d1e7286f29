"""systemd unit files: syntax, search path precedence and drop-ins (systemd.syntax(7),
systemd.unit(5) "Unit File Load Path" and "[Unit] Section Options").

Syntax rules implemented here:

- empty lines and lines starting with ``#`` or ``;`` are ignored;
- a line ending in a backslash continues on the next line (the backslash becomes a space);
  comment lines inside a continued line are skipped;
- ``[Section]`` opens a section; ``Key=Value`` (whitespace around ``=`` ignored) assigns;
  a key may be assigned several times: every assignment is kept, in order, with its file
  and line (what a repeated key *means* is decided by :mod:`sim.importer.directives`);
- anything else, an assignment before the first section, or a build-time placeholder
  ``@name@`` (a ``*.in`` template, not an installed unit) is an error naming file and line.

Load path: ``dirs`` are given lowest precedence first (``/usr/lib/systemd/system`` then
``/etc/systemd/system``); a unit file in a later directory replaces one of the same name in
an earlier one.  Drop-ins ``NAME.d/*.conf`` from every directory are merged: a drop-in in a
later directory replaces an earlier one of the same file name, and all of them apply after
the main file, in lexical order of their file names.  A unit file that is a symlink to
``/dev/null`` is *masked*.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import ConfigError
from sim.importer.rooted import HostRoot, as_root, read_text

UNIT_SUFFIXES = (".service", ".socket", ".target")
KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
PLACEHOLDER_RE = re.compile(r"@[A-Za-z_][A-Za-z0-9_]*@")


@dataclass(frozen=True)
class Assignment:
    """One ``Key=Value`` line (continuations joined) with where it was written."""

    section: str
    key: str
    value: str
    file: str
    line: int

    @property
    def where(self) -> str:
        """``FILE:LINE`` of the assignment."""
        return f"{self.file}:{self.line}"


@dataclass
class UnitFile:
    """A unit's main file and drop-ins, parsed: every assignment in application order."""

    name: str
    path: Path
    dropins: list[Path] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    masked: bool = False

    @property
    def type(self) -> str:
        """The unit's type, from its name's suffix (``service``, ``socket`` ...)."""
        return self.name.rsplit(".", 1)[-1]

    def files(self) -> list[Path]:
        """The main file, then the drop-ins."""
        return [self.path, *self.dropins]


def _error(file: str | Path, line: int, message: str) -> ConfigError:
    return ConfigError.single(file, message, line=line)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each logical line, continuations joined."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith(("#", ";")) or (not stripped and pending is None):
            continue
        start, before = pending if pending is not None else (number, "")
        if stripped.endswith("\\"):
            pending = (start, before + stripped[:-1] + " ")
            continue
        pending = None
        out.append((start, before + stripped))
    if pending is not None:
        out.append(pending)
    return out


def parse_unit_text(text: str, file: str) -> list[Assignment]:
    """Every assignment of one unit file or drop-in, in order.

    Raises
    ------
    ConfigError
        a line that is neither a section header nor ``Key=Value``, an assignment outside a
        section, an invalid key, or a ``@placeholder@`` (file and line named)
    """
    out: list[Assignment] = []
    section: str | None = None
    for number, line in _logical_lines(text):
        line = line.strip()
        if not line:
            continue
        placeholder = PLACEHOLDER_RE.search(line)
        if placeholder:
            msg = (
                f"unexpanded build-time placeholder {placeholder.group()!r}: this looks like a "
                "source template (*.in), not an installed unit file"
            )
            raise _error(file, number, msg)
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise _error(file, number, f"invalid section header {line!r}")
            section = line[1:-1].strip()
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep:
            raise _error(file, number, f"expected 'Key=Value' or '[Section]', got {line!r}")
        if not KEY_RE.match(key):
            raise _error(file, number, f"invalid key {key!r}")
        if section is None:
            raise _error(file, number, f"assignment {key}= before the first [Section]")
        out.append(Assignment(section, key, value.strip(), file, number))
    return out


def _is_masked(path: Path) -> bool:
    return path.is_symlink() and os.readlink(path) == "/dev/null"


@dataclass
class UnitTree:
    """The units found in a list of directories, lowest precedence first."""

    dirs: list[Path]
    root: HostRoot = field(default_factory=lambda: as_root(None))
    files: dict[str, Path] = field(default_factory=dict)
    dropins: dict[str, dict[str, Path]] = field(default_factory=dict)
    wants: dict[str, set[str]] = field(default_factory=dict)
    real: dict[Path, Path] = field(default_factory=dict)
    """Each unit file and drop-in (as named) -> where it leads inside its tree."""

    @classmethod
    def scan(cls, dirs: list[Path], root: Path | HostRoot | None = None) -> UnitTree:
        """The units of ``dirs``; every directory, link and file is resolved inside ``root``
        (:mod:`sim.importer.rooted`), and one that leaves it is refused."""
        tree = cls(list(dirs), as_root(root))
        for d in dirs:
            host = tree.root.tree_of(d)
            real = host.local(d, "--units")
            if not real.is_dir():
                raise ConfigError.single(d, "not a directory (--units)")
            for entry in sorted(real.iterdir()):
                tree._add(host, d / entry.name, entry)
        return tree

    def _add(self, host: HostRoot, shown: Path, entry: Path) -> None:
        """``entry`` of a unit directory, named ``shown`` in messages and provenance."""
        name = entry.name
        masked = _is_masked(entry)
        real = entry if masked else host.local(entry, str(shown))
        if name.endswith(UNIT_SUFFIXES) and (masked or real.is_file()):
            self.files[name] = shown
            self.real[shown] = real
        elif name.endswith(".d") and name[:-2].endswith(UNIT_SUFFIXES) and real.is_dir():
            confs = self.dropins.setdefault(name[:-2], {})
            for conf in sorted(real.glob("*.conf")):
                confs[conf.name] = shown / conf.name
                self.real[shown / conf.name] = host.local(conf, str(shown / conf.name))
        elif name.endswith((".wants", ".requires")) and real.is_dir():
            for link in sorted(real.iterdir()):
                self.wants.setdefault(link.name, set()).add(name.rsplit(".", 1)[0])

    def __contains__(self, name: object) -> bool:
        return name in self.files

    def names(self) -> list[str]:
        """The names of every unit in the tree, sorted."""
        return sorted(self.files)

    def load(self, name: str) -> UnitFile:
        """The unit's main file plus its drop-ins, parsed (drop-ins in lexical order)."""
        path = self.files[name]
        confs = self.dropins.get(name, {})
        unit = UnitFile(name, path, [confs[k] for k in sorted(confs)])
        if _is_masked(path):
            unit.masked = True
            return unit
        for f in unit.files():
            text = read_text(self.real[f], f, "unit file")
            unit.assignments += parse_unit_text(text, str(f))
        return unit
