"""The shipped models, workloads and experiments, as package data.

In a checkout, ``sim/_data/models`` and ``sim/_data/experiments`` are symbolic links to the
repository's ``models/`` and ``experiments/`` (the layout the documentation and the tests
use); a wheel holds copies of both folders here, so an installed ``virtchaos`` finds them
outside any checkout.  Experiments name their topologies and workloads relative to
themselves (``../models/...``), which holds in both layouts.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

FOLDERS = ("models", "experiments")
"""The shipped folders, as they sit at the repository root and in ``virtchaos init DIR``."""

SUFFIXES = (".yaml", ".json")


def root() -> Path:
    """The folder holding the shipped ``models/`` and ``experiments/``."""
    return Path(str(files(__name__)))


@dataclass(frozen=True)
class Shipped:
    """One shipped file: its path relative to :func:`root` and its ``kind:``."""

    relpath: str
    kind: str
    name: str
    path: Path


def _head(path: Path) -> tuple[str, str]:
    """``kind`` and ``name`` from a YAML file's top-level keys (no full parse: fast)."""
    kind = name = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("kind:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("name:"):
            name = line.split(":", 1)[1].strip()
        if kind and name:
            break
    return kind, name


def shipped() -> list[Shipped]:
    """Every shipped file, by folder and path."""
    base = root()
    out = []
    for folder in FOLDERS:
        for path in sorted((base / folder).rglob("*")):
            if path.suffix not in SUFFIXES or not path.is_file():
                continue
            rel = path.relative_to(base).as_posix()
            kind, name = _head(path) if path.suffix == ".yaml" else ("baseline", path.stem)
            out.append(Shipped(rel, kind or "?", name or path.stem, path))
    return out


def find(arg: Path) -> Path | None:
    """The shipped file that ``arg`` names when it is not a file here: a path relative to
    the repository root (``experiments/gate.yaml``), or an experiment's bare name
    (``gate``); None when it names none."""
    base = root()
    rel = arg.as_posix()
    candidates = [base / rel] if not arg.is_absolute() else []
    if len(arg.parts) == 1:
        stem = arg.stem
        candidates += [base / "experiments" / f"{stem}.yaml"]
    return next((c.resolve() for c in candidates if c.is_file()), None)


def copy_to(dest: Path, force: bool = False) -> list[Path]:
    """Copy ``models/`` and ``experiments/`` into ``dest``; refuse to overwrite a file that
    differs unless ``force``.  Returns the files written (unchanged ones are skipped)."""
    plan = []
    for item in shipped():
        target = dest / item.relpath
        if target.is_file() and target.read_bytes() == item.path.read_bytes():
            continue
        if target.exists() and not force:
            raise FileExistsError(f"{target} exists and differs from the shipped file")
        plan.append((item.path, target))
    for src, target in plan:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    return [t for _, t in plan]
