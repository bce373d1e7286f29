"""``run --executor dask``: a Dask LocalCluster gives the local pool's summary bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import SimError
from sim.experiment.runner import run_experiment

pytest.importorskip("distributed")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", ["determinism.yaml", "sequential.yaml"])
def test_dask_local_cluster_gives_the_same_bytes(name: str, tmp_path: Path) -> None:
    run_experiment(FIXTURES / name, out=tmp_path / "local", jobs=1)
    run_experiment(FIXTURES / name, out=tmp_path / "dask", jobs=2, executor="dask")
    for f in ("summary.json", "runs.jsonl"):
        assert (tmp_path / "dask" / f).read_bytes() == (tmp_path / "local" / f).read_bytes()


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SimError, match="cannot reach the Dask scheduler"):
        run_experiment(
            FIXTURES / "determinism.yaml",
            out=tmp_path / "x",
            executor="dask",
            scheduler="tcp://127.0.0.1:9",
        )
