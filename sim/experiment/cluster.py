"""Runs on a Dask cluster (``run --executor dask``): the same tasks and records as the local
process pool, so the same summary bytes.

Each Dask worker loads the experiment once per experiment, substitution and calibration
(:func:`sim.experiment.runner._cluster_work`) and runs tasks as they come.  The experiment's
files must be readable at the same paths on every worker (a shared or identical checkout),
with virtchaos installed there.  Without a scheduler address a
:class:`distributed.LocalCluster` of ``workers`` single-threaded processes is started and
stopped around the run.  Tasks are submitted a few per worker ahead of the results read, so
a large run never queues all its tasks on the scheduler.  Needs the ``dask`` extra
(``pip install 'virtchaos[dask]'``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sim.errors import SimError
from sim.experiment.workers import IN_FLIGHT

CONNECT_TIMEOUT_S = 10
"""How long to wait for a remote scheduler before giving up."""


@contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A Dask client for one run: connected to ``scheduler``, or to a LocalCluster of
    ``workers`` processes started here and stopped on leaving."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SimError(
            "--executor dask needs Dask's distributed scheduler: pip install 'virtchaos[dask]'"
        ) from None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=max(1, workers),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
    try:
        client = Client(cluster or scheduler, timeout=CONNECT_TIMEOUT_S)
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise SimError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def imap_dask(
    client: Any, work: Callable[[Any], dict[str, Any]], tasks: Iterable[Any]
) -> Iterator[dict[str, Any]]:
    """Yield ``work(task)`` for every task as the client's workers finish them (``work`` is
    pickled by reference: a module-level function, or a partial of one)."""
    from distributed import as_completed

    workers = len(client.scheduler_info().get("workers", {}))
    ahead = IN_FLIGHT * max(1, workers)
    stream = iter(tasks)
    pending = as_completed()
    for task in stream:
        pending.add(client.submit(work, task, pure=False))
        if pending.count() >= ahead:
            break
    for future in pending:
        yield future.result()
        nxt = next(stream, None)
        if nxt is not None:
            pending.add(client.submit(work, nxt, pure=False))
