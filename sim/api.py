"""The Python API, for notebooks and scripts: ``from sim import load, run, load_results``.

>>> from sim import run, load_results                          # doctest: +SKIP
>>> res = run("experiments/how-to-test.yaml", out="/tmp/htt")  # doctest: +SKIP
>>> res.rows()[0]["metric"], res.to_dataframe().shape          # doctest: +SKIP

Every path may be a ``str`` or a :class:`~pathlib.Path`; a path that does not exist but
names a shipped file (``experiments/gate.yaml``, or an experiment's bare name ``gate``)
is the shipped one, as on the command line.  Errors are the library's:
:class:`~sim.errors.ConfigError` (bad input, with every issue as ``file:line: field:
message``), :class:`~sim.errors.ResultsError`, :class:`~sim.errors.SimError`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.report.results import Results


def _path(path: str | Path) -> Path:
    p = Path(path)
    if p.exists():
        return p
    from sim import _data

    return _data.find(p) or p


def load(path: str | Path) -> Any:
    """Load a file as what its ``kind:`` says: an experiment
    (:class:`~sim.model.ExperimentModel`), a topology (:class:`~sim.model.System`) or a
    workload (:class:`~sim.model.WorkloadModel`)."""
    from sim.model.load import load_experiment, load_system, load_workload
    from sim.model.loader import document_kind, read_yaml

    p = _path(path)
    kind = document_kind(read_yaml(p))
    loaders: dict[str, Callable[[Path], Any]] = {
        "experiment": load_experiment,
        "topology": load_system,
        "workload": load_workload,
    }
    if kind not in loaders:
        from sim.errors import ConfigError

        raise ConfigError.single(p, f"load() reads {sorted(loaders)}, not {kind!r}", "kind")
    return loaders[kind](p)


def run(
    experiment: str | Path,
    out: str | Path | None = None,
    *,
    replications: int | None = None,
    seed: int | None = None,
    jobs: int = 1,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Results:
    """Run ``experiment`` as ``virtchaos run`` does (same folder, same bytes, resumable)
    and return its results.  ``out`` defaults to ``results/<experiment>/<run-id>``."""
    from sim.experiment.runner import run_experiment

    outcome = run_experiment(
        _path(experiment),
        None if out is None else Path(out),
        replications,
        seed,
        jobs,
        force,
        progress,
    )
    return load_results(outcome.folder)


def load_results(folder: str | Path) -> Results:
    """A results folder written by ``run``: ``.summary``, ``.rows()``, ``.differences()``,
    ``.runs()`` and ``.to_dataframe(table)`` (with pandas)."""
    from sim.report.results import load_results as load

    return load(folder)
