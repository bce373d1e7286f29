"""Where ``run`` may write: the results folder rules (DESIGN 5).

- ``--out`` must be absent, empty, or a results folder of ours: one whose ``manifest.json``
  says ``"tool": "virtchaos"`` (:data:`MARKER`).  Anything else is refused, with or without
  ``--force``: a foreign folder's files are never written, replaced or deleted.
- ``--out`` at an existing file, under a file, or where we cannot write is refused, naming
  the path.
- a folder of ours holding a finished run (``summary.json``) is refused without ``--force``;
  one holding an interrupted run is resumed only when its inputs are the same
  (:func:`differences`), else refused naming the difference.
- ``--force`` replaces the whole folder: the run is written beside it, in
  ``.NAME.virtchaos-new``, and only when it has finished are the two folders exchanged
  (atomically where the system can) and the old one deleted.  An interrupted forced run
  resumes there when the same command is run again.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import ResultsError

MARKER = ("tool", "virtchaos")
"""The manifest entry that makes a folder a results folder of ours."""

OWN_TEMPS = frozenset({".manifest.json.tmp"})
"""What an interruption can leave in a new folder before its manifest exists."""

NEW, OLD = ".virtchaos-new", ".virtchaos-old"


@dataclass(frozen=True)
class Workspace:
    """Where a run writes (``work``) and the folder it is for (``target``)."""

    target: Path
    work: Path

    @property
    def replaces(self) -> bool:
        """Whether the run writes a new folder that replaces ``target`` when it completes."""
        return self.work != self.target


def _manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get(MARKER[0]) == MARKER[1] else None


def is_ours(folder: Path) -> bool:
    """Whether ``folder`` is a results folder written by virtchaos (marked in its manifest)."""
    return folder.is_dir() and _manifest(folder) is not None


def is_empty(folder: Path) -> bool:
    """Whether ``folder`` holds nothing but what an interrupted start can leave."""
    return all(p.name in OWN_TEMPS for p in folder.iterdir())


def can_write(folder: Path) -> bool:
    """Whether this process may create and delete entries in ``folder``."""
    return os.access(folder, os.W_OK | os.X_OK)


def _writable(path: Path) -> None:
    """Refuse a path that is a file, lies under a file, or is in a place we cannot write."""
    if path.exists() and not path.is_dir():
        raise ResultsError(f"--out {path} is a file, not a folder")
    probe = path
    while not probe.exists():
        if probe.is_symlink():
            raise ResultsError(f"--out {path}: {probe} is a broken symbolic link")
        probe = probe.parent
    if not probe.is_dir():
        raise ResultsError(f"--out {path}: {probe} is a file, not a folder")
    if not can_write(probe):
        raise ResultsError(f"--out {path}: cannot write in {probe} (permission denied)")


def _sibling(target: Path, suffix: str) -> Path:
    return target.parent / f".{target.name or 'out'}{suffix}"


def _remove_own(folder: Path) -> None:
    """Delete ``folder`` if it is ours (or empty); refuse a foreign one."""
    if not folder.exists():
        return
    if not (folder.is_dir() and (is_ours(folder) or is_empty(folder))):
        raise ResultsError(f"{folder} is in the way and is not a results folder: remove it")
    shutil.rmtree(folder)


def _recover(target: Path) -> None:
    """Finish or undo a replacement that was interrupted between its two renames."""
    new, old = _sibling(target, NEW), _sibling(target, OLD)
    if old.exists() and not target.exists() and is_ours(old):
        os.rename(new if (new / "summary.json").is_file() else old, target)
    _remove_own(old)


def prepare(target: Path, force: bool, manifest: dict[str, Any]) -> Workspace:
    """Check ``target`` against the rules and return where the run writes.

    Raises
    ------
    ResultsError
        the folder is foreign, finished (without ``force``), holds an interrupted run of
        other inputs (without ``force``), or cannot be written
    """
    try:
        ws = _prepare(target.absolute(), force, manifest)
    except OSError as exc:
        raise ResultsError(f"--out {target}: {exc.strerror or exc}") from None
    return Workspace(target, ws.work if ws.replaces else target)


def _prepare(target: Path, force: bool, manifest: dict[str, Any]) -> Workspace:
    _writable(target)
    _recover(target)
    if not target.exists() or is_empty(target):
        target.mkdir(parents=True, exist_ok=True)
        return Workspace(target, target)
    old = _manifest(target)
    if old is None:
        raise ResultsError(
            f"{target} is not empty and is not a results folder (no manifest.json of "
            "virtchaos): give an empty or new --out; --force never replaces such a folder"
        )
    if force:
        return Workspace(target, _staging(target, manifest))
    if (target / "summary.json").exists():
        raise ResultsError(f"{target} already holds a finished run; use --force to replace it")
    diff = differences(old, manifest)
    if diff:
        raise ResultsError(
            f"{target} holds an interrupted run of other inputs ({'; '.join(diff)}): "
            "use --force to replace it, or another --out"
        )
    return Workspace(target, target)


def _staging(target: Path, manifest: dict[str, Any]) -> Path:
    """The folder beside ``target`` that a forced run writes: resumed if it holds an
    unfinished run of the same inputs, else emptied."""
    new = _sibling(target, NEW)
    old = _manifest(new) if new.is_dir() else None
    resumable = old is not None and not differences(old, manifest)
    if not (resumable and not (new / "summary.json").exists()):
        _remove_own(new)
        new.mkdir()
    return new


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders atomically (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return bool(rc == 0)


def finish(ws: Workspace) -> None:
    """Put a forced run in place of the old folder, then delete the old one."""
    if not ws.replaces:
        return
    if _exchange(ws.work, ws.target):
        shutil.rmtree(ws.work)
        return
    old = _sibling(ws.target, OLD)
    _remove_own(old)
    os.rename(ws.target, old)
    os.rename(ws.work, ws.target)
    shutil.rmtree(old)


# ------------------------------------------------------------------------ same inputs?
IDENTITY = ("version", "git_commit", "seed", "replications", "stopping", "shard")
DOCUMENTS = ("experiment", "topologies", "workload")


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _paths(old: Any, new: Any, where: str) -> list[str]:
    """Where two JSON values differ, as ``path: old -> new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(dict.fromkeys([*old, *new]))
        return [d for k in keys for d in _paths(old.get(k), new.get(k), f"{where}.{k}")]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        pairs = enumerate(zip(old, new, strict=True))
        return [d for i, (a, b) in pairs for d in _paths(a, b, f"{where}[{i}]")]
    return [] if old == new else [f"{where}: {_short(old)} -> {_short(new)}"]


def _files(manifest: dict[str, Any]) -> dict[str, str]:
    base = os.path.dirname(str(manifest.get("experiment_file", "")))
    inputs = manifest.get("inputs")
    if not isinstance(inputs, dict):
        return {}
    return {os.path.relpath(p, base or "."): str(d) for p, d in inputs.items()}


def differences(old: dict[str, Any], new: dict[str, Any], limit: int = 3) -> list[str]:
    """What differs between the inputs two manifests record: tool version and commit, seed,
    replications, the resolved experiment, topologies and workload, and every input file's
    SHA-256 (named relative to the experiment's folder).  Empty when the inputs are the
    same."""
    out = [
        f"{k} {_short(old.get(k))} -> {_short(new.get(k))}"
        for k in IDENTITY
        if old.get(k) != new.get(k)
    ]
    for key in DOCUMENTS:
        out += _paths(old.get(key), new.get(key), key)[:limit]
    a, b = _files(old), _files(new)
    out += [f"{name} changed" for name in sorted(a.keys() & b.keys()) if a[name] != b[name]]
    out += [f"{name} is a new input" for name in sorted(b.keys() - a.keys())]
    out += [f"{name} is no longer an input" for name in sorted(a.keys() - b.keys())]
    return out[: limit * 2] + ([f"and {len(out) - limit * 2} more"] if len(out) > limit * 2 else [])
