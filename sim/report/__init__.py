"""Reports of a results folder: ``report.md``, ``report.html`` and ``figures/``.

::

    results.py      read the folder back (manifest, summary, models)
    structure.py    matrix cells and sweep points from scenario names
    fmt.py          number formats (prose; estimates with bounded intervals)
    findings.py     statements generated from the numbers, grouped by mechanism
    trust.py        how far to trust this: sensitivity, sim versus real
    tables.py       Markdown tables
    assumptions.py  every source: and assumption: of the models used
    plotting.py     matplotlib without pyplot; deterministic SVG and PNG
    charts.py       heatmap, bars, boot overhead, sensitivity curves
    timelines.py    replication 0 re-run with its trace, drawn per topology
    graphs.py       the dependency graph with a fault's reach
    figures.py      which figures a folder gets
    document.py     report.md
    html.py         report.html (self-contained)

Everything is offline and deterministic: the same folder gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sim.report.figures import FigureOptions, FigureSet, make_figures
from sim.report.results import Results, load_results


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote, and what the reader should know about it."""

    markdown: Path
    html: Path
    figures: tuple[Path, ...]
    notes: tuple[str, ...]


def write_report(
    folder: Path,
    figures: bool = True,
    options: FigureOptions | None = None,
    sensitivity: Path | None = None,
    validation: Path | None = None,
) -> ReportFiles:
    """Write ``report.md``, ``report.html`` and (unless ``figures`` is false) ``figures/``.

    ``sensitivity``: a results folder whose sweeps say which assumptions move the
    conclusions (default: this folder's sweeps, or a sibling ``sensitivity/``);
    ``validation``: a folder with ``compare.json``, the sim-versus-real table.

    Raises
    ------
    ResultsError
        ``folder`` is not a finished results folder (no manifest.json or summary.json).
    """
    from sim.experiment.runner import write_atomic
    from sim.report import document, html

    opts = options or FigureOptions()
    res = load_results(folder)
    figs = make_figures(res, opts) if figures else None
    text = document.render(res, figs, opts.timelines, sensitivity, validation)
    md_path, html_path = folder / "report.md", folder / "report.html"
    write_atomic(md_path, text)
    write_atomic(html_path, html.render(text, folder, f"{res.name}: fault-isolation report"))
    files = tuple(folder / f for fig in (figs.figures if figs else []) for f in fig.files())
    return ReportFiles(md_path, html_path, files, tuple(res.notes))


__all__ = ["FigureOptions", "FigureSet", "ReportFiles", "Results", "load_results", "write_report"]
