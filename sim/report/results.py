"""A results folder read back for reporting: manifest, summary, and the models behind them.

The summary and the manifest's resolved experiment are enough for the tables and findings;
the model files (named by the manifest) are loaded too, for the assumptions, timelines and
graphs.  When they are missing or have changed since the run, the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.errors import ConfigError, ResultsError
from sim.experiment.replay import changed_inputs, experiment_of, load_manifest, read_json
from sim.model.loader import Loaded
from sim.model.resolved import ExperimentModel
from sim.schema.experiment import Experiment

Stat = dict[str, Any]


@dataclass
class Results:
    """One results folder, indexed."""

    folder: Path
    manifest: dict[str, Any]
    summary: dict[str, Any]
    experiment: Experiment | None
    model: ExperimentModel | None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        rows = self.summary["rows"]
        self._rows = {(r["scenario"], r["topology"]): r["metrics"] for r in rows}
        self._cmp = {
            (c["scenario"], c["metric"], c["a"], c["b"]): c for c in self.summary["comparisons"]
        }

    @property
    def name(self) -> str:
        """The experiment's name."""
        return str(self.summary["experiment"])

    @property
    def topologies(self) -> list[str]:
        """Topologies in summary order."""
        return _unique(r["topology"] for r in self.summary["rows"])

    @property
    def scenarios(self) -> list[str]:
        """Scenarios in summary order."""
        return _unique(r["scenario"] for r in self.summary["rows"])

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """(a, b) topology pairs compared, in summary order (differences are b - a).

        With more than two topologies the first is the reference (variants of one model):
        only its pairs with each other topology are reported."""
        seen = _unique((c["a"], c["b"]) for c in self.summary["comparisons"])
        pairs = [(str(a), str(b)) for a, b in seen]
        tops = self.topologies
        if len(tops) > 2:
            pairs = [p for p in pairs if p[0] == tops[0]]
        return pairs

    @property
    def metrics(self) -> list[str]:
        """Every metric in the summary, in order."""
        return _unique(m for r in self.summary["rows"] for m in r["metrics"])

    def stat(self, scenario: str, topology: str, metric: str) -> Stat | None:
        """The summary statistic, or None when absent or undefined in every run."""
        found: Stat | None = self._rows.get((scenario, topology), {}).get(metric)
        return None if found is None or found.get("mean") is None else found

    def comparison(self, scenario: str, metric: str, a: str, b: str) -> Stat | None:
        """The paired comparison, or None when absent or undefined in every run."""
        found = self._cmp.get((scenario, metric, a, b))
        return None if found is None or found.get("diff_mean") is None else found

    def has_metric(self, metric: str) -> bool:
        """Whether the summary has ``metric``."""
        return metric in self.metrics

    # -------------------------------------------------------------- flat rows (notebooks)
    def rows(self) -> list[dict[str, Any]]:
        """One row per scenario, topology and metric: mean, 95% interval, n (None when
        undefined in every run; ``undefined`` says why when it is in some)."""
        out = []
        for r in self.summary["rows"]:
            for metric, m in r["metrics"].items():
                lo, hi = m.get("ci95") or (None, None)
                out.append(
                    {
                        "scenario": r["scenario"],
                        "topology": r["topology"],
                        "metric": metric,
                        "mean": m.get("mean"),
                        "ci_low": lo,
                        "ci_high": hi,
                        "n": m.get("n"),
                        "undefined": m.get("undefined"),
                    }
                )
        return out

    def differences(self) -> list[dict[str, Any]]:
        """One row per scenario, metric and topology pair: the paired difference b - a."""
        out = []
        for c in self.summary["comparisons"]:
            lo, hi = c.get("ci95") or (None, None)
            out.append(
                {
                    "scenario": c["scenario"],
                    "metric": c["metric"],
                    "a": c["a"],
                    "b": c["b"],
                    "diff_mean": c.get("diff_mean"),
                    "ci_low": lo,
                    "ci_high": hi,
                }
            )
        return out

    def runs(self) -> list[dict[str, Any]]:
        """One row per run of ``runs.jsonl``: scenario, topology, replication, seed and
        every metric of the run."""
        from sim.experiment.runlog import read_runs

        out = []
        for rec in read_runs(self.folder / "runs.jsonl"):
            keys = ("scenario", "topology", "replication", "seed")
            row: dict[str, Any] = {k: rec[k] for k in keys if k in rec}
            row.update(rec.get("metrics", {}))
            out.append(row)
        return out

    def to_dataframe(self, table: str = "rows") -> Any:
        """``rows``, ``differences`` or ``runs`` as a pandas DataFrame (pandas is optional:
        ``pip install 'virtchaos[notebook]'``)."""
        tables = {"rows": self.rows, "differences": self.differences, "runs": self.runs}
        if table not in tables:
            raise ValueError(f"table is one of {sorted(tables)}, not {table!r}")
        try:
            import pandas as pd
        except ImportError:
            msg = "to_dataframe needs pandas (pip install 'virtchaos[notebook]'); rows() does not"
            raise ImportError(msg) from None
        return pd.DataFrame(tables[table]())


def _unique(items: Any) -> list[Any]:
    return list(dict.fromkeys(items))


def _read_summary(folder: Path) -> dict[str, Any]:
    path = folder / "summary.json"
    missing = f"{folder} holds no summary.json: run the experiment to the end first"
    summary = read_json(path, missing)
    for key in ("experiment", "seed", "replications", "rows", "comparisons"):
        if key not in summary:
            raise ResultsError(f"{path}: missing key {key!r}")
    return summary


def _experiment(manifest: dict[str, Any]) -> Experiment | None:
    try:
        return Experiment.model_validate(manifest.get("experiment"))
    except ValidationError:
        return None


def _model(manifest: dict[str, Any], notes: list[str]) -> ExperimentModel | None:
    try:
        model = experiment_of(manifest)
    except (ResultsError, ConfigError) as err:
        notes.append(f"the model files could not be loaded ({str(err).splitlines()[0]})")
        return None
    changed = changed_inputs(manifest)
    if changed:
        names = ", ".join(Path(c).name for c in changed)
        notes.append(
            f"input files changed since the run ({names}): the assumptions, timelines and "
            "graphs are built from the files as they are now"
        )
    return model


def as_run(
    model: ExperimentModel, experiment: Experiment | None, notes: list[str]
) -> ExperimentModel:
    """``model`` with the experiment as the manifest recorded it (when its file has changed
    since, timelines then still re-run what was run)."""
    if experiment is None or experiment == model.doc:
        return model
    from sim.model.scenarios import expand

    loaded = Loaded(experiment, model.experiment.src)
    scenarios, issues = expand(loaded)
    if issues or [t.name for t in model.systems] != _names(experiment, model):
        notes.append("the recorded experiment no longer fits the model files: using the files")
        return model
    notes.append("the experiment file changed since the run: the report uses the recorded one")
    return ExperimentModel(loaded, model.systems, model.workload, scenarios)


def _names(experiment: Experiment, model: ExperimentModel) -> list[str]:
    here = model.experiment.path.parent
    by_path = {s.topology.path.resolve(): s.name for s in model.systems}
    return [by_path.get((here / t).resolve(), t) for t in experiment.topologies]


def load_results(folder: str | Path) -> Results:
    """Read ``folder``; raises :class:`~sim.errors.ResultsError` if it is no results folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultsError(f"{folder} is not a directory")
    manifest = load_manifest(folder)
    summary = _read_summary(folder)
    notes: list[str] = []
    experiment = _experiment(manifest)
    model = _model(manifest, notes)
    if experiment is None:
        what = "using the experiment file" if model else "matrix and sweeps are not recognised"
        notes.append(f"the experiment recorded in the manifest does not validate now: {what}")
        experiment = model.doc if model else None
    elif model is not None:
        model = as_run(model, experiment, notes)
    notes += undefined_notes(summary)
    return Results(folder, manifest, summary, experiment, model, notes)


def undefined_notes(summary: dict[str, Any]) -> list[str]:
    """One note per metric that is undefined (null) in some runs, with why."""
    cells: dict[str, list[str]] = {}
    for row in summary["rows"]:
        for metric, stat in row["metrics"].items():
            if isinstance(stat, dict) and "undefined" in stat:
                cells.setdefault(metric, []).append(
                    f"{row['scenario']} / {row['topology']} ({stat['undefined']})"
                )
    return [
        f"{m} is undefined in some runs, left out of its statistics: {'; '.join(c[:3])}"
        + (f" and {len(c) - 3} more" if len(c) > 3 else "")
        for m, c in cells.items()
    ]
