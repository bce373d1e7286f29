""" "How far to trust this": the assumptions that move conclusions, and sim versus real.

The sensitivity part reads sweeps: this report's own, or those of another results folder
(``--sensitivity DIR``, else a sibling folder ``sensitivity/`` when there is one).  For
each sweep it says where along the sweep the blast-radius conclusion changes.  The
validation part renders ``compare.json`` from a folder given with ``--validation DIR``:
any JSON object with a list of flat ``rows`` (or a bare list of rows) becomes a table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sim.errors import ResultsError
from sim.report.findings import OUTCOME, PRIMARY, either, groups, points
from sim.report.markdown import md_table
from sim.report.results import Results, load_results
from sim.report.structure import sweep_layouts

COMPARE = "compare.json"


def sensitivity_source(res: Results, given: Path | None) -> tuple[Results | None, str]:
    """The results whose sweeps say what moves the conclusions, and how they were found."""
    if given is not None:
        return _load(given), f"the sensitivity results in `{given.as_posix()}`"
    if sweep_layouts(res):
        return res, "this experiment's sweeps"
    sibling = res.folder.resolve().parent / "sensitivity"
    if sibling != res.folder.resolve() and (sibling / "summary.json").is_file():
        return _load(sibling), "the sensitivity results beside this folder (`../sensitivity`)"
    return None, ""


def _load(folder: Path) -> Results | None:
    try:
        return load_results(folder)
    except ResultsError:
        return None


def sweep_lines(sens: Results) -> list[str]:
    """One bullet per sweep: whether the blast-radius conclusion holds along it."""
    if not sens.pairs:
        return []
    a, b = sens.pairs[0]
    gs = groups(sens, a, b, PRIMARY)
    out = []
    for sweep in sweep_layouts(sens):
        mine = [g for g in gs if g.mechanism == f"sweep {sweep.name}"]
        if not mine:
            continue
        desc = " ".join(sweep.description.split())
        head = f"- sweep `{sweep.name}`" + (f" ({desc})" if desc else "")
        if len({g.outcome for g in mine}) == 1:
            g = mine[0]
            out.append(f"{head}: the same outcome at every point, {OUTCOME[g.outcome]} "
                       f"({g.levels(PRIMARY)}).")  # fmt: skip
            continue
        parts = [f"{OUTCOME[g.outcome]} at {points(g.wheres, either)} ({g.levels(PRIMARY)})"
                 for g in mine]  # fmt: skip
        out.append(f"{head}: **the outcome changes** along the sweep: " + "; ".join(parts) + ".")
    return out


def read_compare(folder: Path) -> tuple[list[dict[str, Any]], str] | None:
    """Rows and title of ``folder/compare.json``; None when there is no usable file."""
    path = folder / COMPARE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    rows = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows) or not rows:
        return None
    title = str(data.get("title", data.get("description", ""))) if isinstance(data, dict) else ""
    return rows, title


def validation_lines(folder: Path | None) -> list[str]:
    """The report's sim-versus-real part: ``compare.json`` of ``folder`` as a table, or a
    sentence saying why there is none.
    """
    if folder is None:
        return [
            "No sim-versus-real comparison was given (`virtchaos report --validation DIR`, "
            f"a folder with `{COMPARE}`): the numbers above are the model's alone.",
            "",
        ]
    found = read_compare(folder)
    if found is None:
        return [f"`{(folder / COMPARE).as_posix()}` is missing or holds no rows: no "
                "sim-versus-real comparison to show.", ""]  # fmt: skip
    rows, title = found
    columns = list(dict.fromkeys(k for r in rows for k in r))
    text = [f"Measured on real hosts versus simulated, from `{(folder / COMPARE).as_posix()}`"
            + (f": {' '.join(title.split())}" if title else "") + ".", ""]  # fmt: skip
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    return [*text, *md_table(columns, cells), ""]


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        from sim.report.fmt import num

        return num(v)
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True)
    return str(v)


def section(res: Results, sensitivity: Path | None, validation: Path | None) -> list[str]:
    """The lines of the section, with its heading."""
    out = ["## How far to trust this", ""]
    sens, how = sensitivity_source(res, sensitivity)
    out += ["### What moves the conclusions", ""]
    lines = sweep_lines(sens) if sens is not None else []
    if sens is not None and lines:
        moved = sum("changes" in line for line in lines)
        a, b = sens.pairs[0]
        out += [
            f"From {how}: {moved} of {len(lines)} sweeps change the blast-radius outcome "
            f"({a} → {b}) somewhere along them; an assumption that such a sweep varies "
            "moves a conclusion.",
            "",
            *lines,
            "",
        ]
    else:
        out += ["No sensitivity results were found (`virtchaos report --sensitivity DIR`): "
                "which assumptions move the conclusions is not known from this report; every "
                "assumption is listed under *Assumptions*.", ""]  # fmt: skip
    out += ["### Simulation versus real hosts", "", *validation_lines(validation)]
    return out
