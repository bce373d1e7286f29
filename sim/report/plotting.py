"""Shared plotting machinery: figures without pyplot, saved as SVG and PNG, byte-stable.

Figures are plain :class:`matplotlib.figure.Figure` objects (no pyplot, no global figure
manager, no display): PNG goes through the Agg canvas, SVG through the SVG canvas.  The SVG
hash salt is fixed and the date left out, so the same results give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

RC: dict[RcKeyType, Any] = {
    "svg.hashsalt": "virtchaos",
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.titlesize": 10,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
}
DPI = 110
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


@dataclass(frozen=True)
class Figured:
    """One figure written to ``figures/``: ``<stem>.svg`` and ``<stem>.png``."""

    stem: str
    title: str
    caption: str
    section: str

    def files(self) -> tuple[str, str]:
        """The SVG and PNG paths, relative to the results folder."""
        return f"figures/{self.stem}.svg", f"figures/{self.stem}.png"


@contextmanager
def style() -> Iterator[None]:
    """Apply the report's matplotlib settings for the duration of the block."""
    with mpl.rc_context(RC):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches with an Agg canvas, detached from pyplot."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, folder: Path, stem: str) -> None:
    """Write ``folder/<stem>.svg`` and ``.png`` (deterministic metadata)."""
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / f"{stem}.svg", format="svg", metadata={"Date": None})
    fig.savefig(folder / f"{stem}.png", format="png", dpi=DPI)


def colour(topologies: Sequence[str], topology: str) -> str:
    """The colour of ``topology``, by its place among ``topologies``."""
    return PALETTE[list(topologies).index(topology) % len(PALETTE)]


def errors(stats: Sequence[dict[str, Any]], metric: str = "") -> list[list[float]]:
    """Asymmetric error-bar lengths (below, above) from the mean and the 95% interval the
    tables show (:func:`sim.report.fmt.interval_of`: inside the metric's range)."""
    from sim.report.fmt import interval_of

    ivs = [interval_of(s, metric) if s.get("n") else (s["mean"], s["mean"]) for s in stats]
    below = [max(0.0, s["mean"] - lo) for s, (lo, _) in zip(stats, ivs, strict=True)]
    above = [max(0.0, hi - s["mean"]) for s, (_, hi) in zip(stats, ivs, strict=True)]
    return [below, above]


def note(ax: Axes, text: str) -> None:
    """A centred message in an empty panel."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])
