"""Worker processes for parallel runs: bounded, lazy, and never outliving their parent.

- at most :func:`max_jobs` workers (the machine's cores) unless forced;
- tasks are submitted a few at a time from an iterator, so a huge task stream costs memory
  only for the tasks in flight;
- each worker ignores Ctrl-C (the parent handles it and stops the pool) and dies with its
  parent: on Linux the kernel kills it when the parent dies (``PR_SET_PDEATHSIG``), and
  everywhere a watchdog thread exits the worker once its parent process is gone.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

IN_FLIGHT = 4
"""Tasks submitted per worker ahead of the results read."""

WATCH_EVERY_S = 0.5


def max_jobs() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _parent_gone(parent: int) -> bool:
    return os.getppid() != parent


def _watch(parent: int) -> None:
    while not _parent_gone(parent):
        time.sleep(WATCH_EVERY_S)
    os._exit(1)


def die_with_parent(parent: int) -> None:
    """Make this (worker) process exit when process ``parent`` is gone; ignore Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if _parent_gone(parent):  # the parent died before the line above
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="parent-watch").start()


def _init(parent: int, init: Callable[..., None], args: tuple[Any, ...]) -> None:
    die_with_parent(parent)
    init(*args)


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Stop at once: queued tasks cancelled, running workers killed."""
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        p.kill()
    # let the pool's manager thread see the dead workers and close its wake-up pipe before
    # the interpreter exits: Python 3.11's exit hook writes to that pipe unlocked and, in a
    # race with the closing, prints an EBADF traceback under the "interrupted" message
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(timeout=5)


def imap_unordered(
    fn: Callable[[T], R],
    items: Iterable[T],
    jobs: int,
    init: Callable[..., None],
    initargs: tuple[Any, ...],
) -> Iterator[R]:
    """``fn`` over ``items`` in ``jobs`` worker processes, results as they finish."""
    todo = iter(items)
    pool = cf.ProcessPoolExecutor(
        max_workers=jobs, initializer=_init, initargs=(os.getpid(), init, initargs)
    )
    pending: set[cf.Future[R]] = set()
    try:
        while True:
            for item in todo:
                pending.add(pool.submit(fn, item))
                if len(pending) >= jobs * IN_FLIGHT:
                    break
            if not pending:
                break
            finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                yield fut.result()
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)
