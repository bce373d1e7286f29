"""A service's command line: ``Environment=``, ``EnvironmentFile=`` and ``ExecStart=``
(systemd.exec(5) "Environment", systemd.service(5) "Command lines").

- ``Environment=`` assignments accumulate (an empty one resets); values are quoted words
  ``VAR=value``;
- ``EnvironmentFile=`` files are read in order after ``Environment=`` and override it; a
  leading ``-`` means a missing file is ignored; paths are resolved inside ``root`` and
  one that leaves it is refused (:mod:`sim.importer.rooted`);
- in ``ExecStart=``, a word that is exactly ``$VAR`` becomes the variable's value split at
  whitespace (nothing if unset), ``${VAR}`` is replaced inside a word; the prefixes
  ``-@:+!`` are dropped; the last command (after resets) is the one that runs.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import ConfigError
from sim.importer.directives import Resolved
from sim.importer.rooted import HostRoot, as_root, read_text
from sim.importer.units import Assignment

_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WHOLE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass
class Command:
    """The expanded command line, with where each piece came from."""

    argv: list[str]
    where: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _env_file(a: Assignment, root: HostRoot) -> tuple[dict[str, str], str | None]:
    raw = a.value
    optional = raw.startswith("-")
    real = root.host_path(raw.lstrip("-"), a.where)
    if not real.is_file():
        if optional:
            return {}, str(real)
        raise ConfigError.single(a.file, f"EnvironmentFile {real} not found", line=a.line)
    env: dict[str, str] = {}
    text = read_text(real, real, "EnvironmentFile", a.where)
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key.strip()):
            raise ConfigError.single(real, f"expected VAR=value, got {line!r}", line=number)
        try:
            words = shlex.split(value, comments=False)
        except ValueError as exc:
            raise ConfigError.single(real, f"{key}: {exc}", line=number) from None
        env[key.strip()] = " ".join(words)
    return env, f"{real} (EnvironmentFile= at {a.where})"


def environment(
    unit: Resolved, root: Path | HostRoot
) -> tuple[dict[str, str], list[str], list[str]]:
    """The service's environment, the places it came from, and notes.  ``EnvironmentFile=``
    paths are read inside ``root`` (:mod:`sim.importer.rooted`)."""
    env: dict[str, str] = {}
    where: list[str] = []
    notes: list[str] = []
    for word, a in unit.lists.get("Environment", []):
        key, sep, value = word.partition("=")
        if not sep:
            raise ConfigError.single(
                a.file, f"Environment=: expected VAR=value, got {word!r}", line=a.line
            )
        env[key] = value
        where.append(a.where)
    for _, a in unit.lists.get("EnvironmentFile", []):
        values, note = _env_file(a, as_root(root))
        env.update(values)
        if values:
            where.append(note or a.where)
        elif note:
            notes.append(note)
    return env, sorted(set(where)), notes


def _expand(word: str, env: dict[str, str]) -> list[str]:
    whole = _WHOLE.match(word)
    if whole:
        return env.get(whole.group(1), "").split()
    return [_BRACED.sub(lambda m: env.get(m.group(1), ""), word)]


def command(unit: Resolved, root: Path | HostRoot) -> Command | None:
    """The expanded ``ExecStart=`` of a service (None when it has none)."""
    lines = unit.lines("ExecStart")
    if not lines:
        return None
    a = lines[-1]
    env, where, notes = environment(unit, root)
    try:
        words = shlex.split(a.value)
    except ValueError as exc:
        raise ConfigError.single(a.file, f"ExecStart=: {exc}", line=a.line) from None
    if words:
        words[0] = words[0].lstrip("-@:+!|")
    argv = [w for word in words for w in _expand(word, env)]
    return Command(argv, [a.where, *where], notes)


def option_value(argv: list[str], options: list[str]) -> str | None:
    """The value of the last of ``options`` on the command line (``--opt V``, ``--opt=V``)."""
    found = None
    for i, arg in enumerate(argv):
        for opt in options:
            if arg == opt and i + 1 < len(argv):
                found = argv[i + 1]
            elif arg.startswith(opt + "=") and opt.startswith("--"):
                found = arg[len(opt) + 1 :]
    return found
