"""systemd preset files (systemd.preset(5)) and the enabled set they produce.

- a preset file holds lines ``enable PATTERN``, ``disable PATTERN`` or ``ignore PATTERN``
  (``#`` and ``;`` start comments); patterns are shell globs;
- files are read in lexical order of their *file names*, whatever directory they are in;
  when two have the same name, the one given later replaces the earlier (as a file in
  ``/etc/systemd/system-preset`` replaces one in ``/usr/lib/systemd/system-preset``);
- for each unit the first matching line of all files decides; a unit no line matches is
  enabled (systemd's behaviour without a matching preset);
- enabling a unit also enables the units its ``Also=`` names, transitively, even when
  their own preset line says disable (``systemctl preset-all`` disables first, then
  enables);
- a unit without an ``[Install]`` section is *static*: presets do not change it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sim.errors import ConfigError
from sim.importer.rooted import HostRoot, as_root, read_text

ACTIONS = ("enable", "disable", "ignore")


@dataclass(frozen=True)
class PresetLine:
    """One ``enable``, ``disable`` or ``ignore`` line of a preset file, with where it was
    written.
    """

    action: str
    pattern: str
    file: str
    line: int

    @property
    def where(self) -> str:
        """``FILE:LINE`` of the line."""
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Decision:
    """Whether a unit ends up enabled, and why (a preset line, Also=, static, default)."""

    enabled: bool
    why: str


def parse_preset_text(text: str, file: str) -> list[PresetLine]:
    """Every rule of one preset file.

    Raises
    ------
    ConfigError
        an unknown action or a line without a pattern (file and line named)
    """
    out = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        words = line.split()
        if words[0] not in ACTIONS:
            msg = f"unknown preset action {words[0]!r}: use enable, disable or ignore"
            raise ConfigError.single(file, msg, line=number)
        if len(words) < 2:
            raise ConfigError.single(file, f"'{words[0]}' needs a unit name or glob", line=number)
        out.append(PresetLine(words[0], words[1], file, number))
    return out


def preset_files(paths: Sequence[Path], root: Path | HostRoot | None = None) -> list[Path]:
    """The preset files to read, in the order that decides (directories expanded); each
    must lie inside ``root`` (:mod:`sim.importer.rooted`)."""
    return [shown for shown, _ in _presets(paths, as_root(root))]


def _presets(paths: Sequence[Path], root: HostRoot) -> list[tuple[Path, Path]]:
    """(as named, resolved inside its tree) of each preset file, in deciding order."""
    by_name: dict[str, tuple[Path, Path]] = {}
    for p in paths:
        host = root.tree_of(p if p.is_dir() else p.parent)
        real = host.local(p, "--preset")
        if real.is_dir():
            for f in sorted(real.glob("*.preset")):
                by_name[f.name] = (p / f.name, host.local(f, str(p / f.name)))
        elif real.is_file():
            by_name[p.name] = (p, real)
        else:
            raise ConfigError.single(p, "preset file or directory not found (--preset)")
    return [by_name[name] for name in sorted(by_name)]


def load_presets(paths: Sequence[Path], root: Path | HostRoot | None = None) -> list[PresetLine]:
    """Every rule of the preset files, in the order that decides; ConfigError for a missing file
    or a bad line.
    """
    rules: list[PresetLine] = []
    for shown, real in _presets(paths, as_root(root)):
        rules += parse_preset_text(read_text(real, shown, "preset file"), str(shown))
    return rules


def first_match(rules: Sequence[PresetLine], unit: str) -> PresetLine | None:
    """The first rule whose pattern matches ``unit``, or ``None``."""
    return next((r for r in rules if fnmatch.fnmatchcase(unit, r.pattern)), None)


def decide(
    units: Mapping[str, tuple[bool, Sequence[str]]], rules: Sequence[PresetLine]
) -> dict[str, Decision]:
    """Enabled or not for each unit.

    Parameters
    ----------
    units : unit name -> (has an ``[Install]`` section, the units its ``Also=`` names)
    rules : preset lines in deciding order (:func:`load_presets`)
    """
    out: dict[str, Decision] = {}
    todo: list[str] = []
    for name in sorted(units):
        has_install, _ = units[name]
        rule = first_match(rules, name)
        if not has_install:
            out[name] = Decision(True, "static (no [Install] section)")
        elif rule is None:
            out[name] = Decision(True, "no preset line matches: enabled (systemd default)")
        else:
            on = rule.action == "enable"
            out[name] = Decision(on, f"{rule.action} {rule.pattern} at {rule.where}")
            todo += [name] if on else []
    while todo:
        name = todo.pop(0)
        for other in units[name][1]:
            if other in units and not out[other].enabled:
                out[other] = Decision(True, f"Also= of {name}")
                todo.append(other)
    return out


def from_links(units: Sequence[str], wants: Mapping[str, set[str]]) -> dict[str, Decision]:
    """Enablement read from ``*.wants/`` and ``*.requires/`` links (no preset given)."""
    out = {}
    for name in sorted(units):
        targets = sorted(wants.get(name, set()))
        why = f"linked from {', '.join(t + '.wants' for t in targets)}" if targets else "no link"
        out[name] = Decision(bool(targets), why)
    return out
