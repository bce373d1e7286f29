"""The host tree an import reads (``--root``): every path is resolved inside it.

Rules:

- a path named inside the tree (``EnvironmentFile=``, a symbolic link in a unit
  directory, a drop-in directory, a config or preset file) is resolved component by
  component *inside* the tree, as the host would see it: an absolute link target or an
  absolute path starts at the root of the tree, not at ``/`` of this machine;
- ``..`` that would climb above the root, and a link loop, are refused;
- a directory or file given on the command line (``--units``, ``--preset``, ``--conf``) is
  trusted; when it is not in the tree it is a tree of its own: what is found in it (links,
  drop-in directories, config files) must resolve inside it;
- only regular files are read; a refusal names the referring file and line and the path,
  never what a file outside the tree holds (it is never opened).

With the default root ``/`` every path of this machine is in the tree.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from sim.errors import ConfigError

MAX_LINKS = 40
"""Symbolic links followed in one path before it is called a loop (as the kernel does)."""


class HostRoot:
    """The root of the host tree (``--root``), with links resolved."""

    def __init__(self, root: Path) -> None:
        self.given = Path(os.path.abspath(root))
        self.real = Path(os.path.realpath(root))

    def _escape(self, path: str | Path, where: str, link: str = "") -> ConfigError:
        what = "" if where in ("", str(path)) else f"{path} "
        via = f" (through the link to {link})" if link else ""
        msg = f"{what}leaves --root {self.given}{via}: refused"
        return ConfigError.single(where or str(path), msg)

    def tree_of(self, path: Path) -> HostRoot:
        """The tree a command-line path is read in: this one, or ``path`` itself when it
        lies outside this one."""
        absolute = Path(os.path.abspath(path))
        if any(absolute == b or b in absolute.parents for b in (self.given, self.real)):
            return self
        return HostRoot(path)

    def host_path(self, path: str, where: str) -> Path:
        """``path`` as the host sees it (absolute from the tree's root) -> a path of this
        machine inside the tree, links resolved."""
        return self._chase(PurePosixPath(path).parts, path, where)

    def local(self, path: Path, where: str = "") -> Path:
        """A path of this machine (given on the command line or found in the tree) that
        must lie in the tree -> the same path with links resolved inside the tree."""
        absolute = Path(os.path.abspath(path))
        for base in (self.given, self.real):
            if absolute == base or base in absolute.parents:
                return self._chase(absolute.relative_to(base).parts, path, where)
        raise self._escape(path, where)

    def _chase(self, parts: tuple[str, ...], shown: str | Path, where: str) -> Path:
        todo = [p for p in parts if p not in ("/", "", ".")]
        done: list[str] = []
        links, link = 0, ""
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not done:
                    raise self._escape(shown, where, link)
                done.pop()
                continue
            here = self.real.joinpath(*done, part)
            if not here.is_symlink():
                done.append(part)
                continue
            links += 1
            if links > MAX_LINKS:
                msg = f"{shown}: too many levels of symbolic links"
                raise ConfigError.single(where or str(shown), msg)
            target = link = os.readlink(here)
            if target.startswith("/"):
                done = []
            todo = [p for p in PurePosixPath(target).parts if p != "/"] + todo
        return self.real.joinpath(*done)


def as_root(root: Path | HostRoot | None) -> HostRoot:
    """``root`` as a :class:`HostRoot` (None: this machine's ``/``)."""
    return root if isinstance(root, HostRoot) else HostRoot(root or Path("/"))


def read_text(real: Path, shown: Path, what: str, where: str = "") -> str:
    """The text of the regular file ``real`` (a path resolved inside its tree), named
    ``shown`` in messages."""
    if not real.is_file():
        raise ConfigError.single(where or shown, f"{what} {shown} is not a regular file")
    try:
        return real.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError.single(shown, f"cannot read {what}: {reason}") from None
