"""Executors: where tasks run. Each takes plain :class:`~compatlab.engine.tasks.Task`
values and yields :class:`~compatlab.engine.outcome.Outcome` values in task order.

A worker appends each outcome's results-table row to its own
``records-<pid>.jsonl`` in the run folder as it finishes, so a run whose
controller is killed keeps what its workers finished.

Workers never outlive their controller, whatever ends it:

- a worker asks Linux to SIGKILL it when its parent exits
  (``prctl(PR_SET_PDEATHSIG)``), and checks after that that its parent is still
  the controller (the controller may have died before the request took effect);
  elsewhere a thread in the worker watches its parent instead;
- the death signal fires when the parent *thread* that started the worker exits.
  Workers are started with ``spawn`` (a fresh interpreter: no locks or signal
  handlers copied from a controller with threads), and ``ProcessPoolExecutor``
  then starts them in the thread that submits the tasks, which is the thread that
  iterates :func:`execute`: iterate it in one thread, which outlives the pool;
- a worker checks its parent again before it runs a task and before it appends a
  record, so no worker writes into a run folder after its controller is gone;
- a worker ignores SIGINT (Ctrl-C reaches the whole process group: the
  controller decides what to stop); when :func:`execute` stops early (an
  interrupt, an error, or a caller that closes it) it cancels the tasks that
  have not started and terminates the workers that run one, which finish the
  record line they may be writing (SIGTERM is blocked while a line is written)
  and nothing else.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Generator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from compatlab.engine.outcome import Outcome
from compatlab.engine.run import run_task
from compatlab.engine.tasks import Task

#: Worker processes per usable CPU beyond which more only compete: a task is a
#: CPU-bound search, and each worker a whole interpreter with its own catalogue.
WORKERS_PER_CPU = 2

#: How long a terminated worker has to go before it is killed.
GRACE_SECONDS = 3.0

#: How often a worker without a death signal looks for its controller.
WATCH_SECONDS = 0.5

#: The controller, in a worker process (None: tasks run in the controller itself).
_controller: int | None = None

_PR_SET_PDEATHSIG = 1


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_limit() -> int:
    """The most worker processes a pool starts (:data:`WORKERS_PER_CPU` per usable CPU)."""
    return WORKERS_PER_CPU * usable_cpus()


def pool_size(workers: int, tasks: int) -> int:
    """How many processes ``workers`` requested for ``tasks`` tasks start: never more
    than there are tasks, nor than :func:`worker_limit`; 1 or less runs here."""
    return max(1, min(workers, tasks, worker_limit()))


def _die_with_parent() -> bool:
    """Ask Linux to SIGKILL this process when its parent exits; whether it agreed."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        args = (ctypes.c_ulong(signal.SIGKILL), ctypes.c_ulong(0), ctypes.c_ulong(0))
        return int(libc.prctl(_PR_SET_PDEATHSIG, *args, ctypes.c_ulong(0))) == 0
    except (OSError, AttributeError):
        return False


def watch_parent(parent: int, interval: float = WATCH_SECONDS) -> threading.Thread:
    """Start a thread that ends this process as soon as its parent is no longer
    ``parent`` (the parent died: an orphan is adopted by another process)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    thread = threading.Thread(target=watch, name="compatlab-watch-parent", daemon=True)
    thread.start()
    return thread


def _orphaned() -> bool:
    return _controller is not None and os.getppid() != _controller


def _init_worker(controller: int) -> None:
    """Set up a worker process of the controller ``controller``."""
    global _controller
    _controller = controller
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not _die_with_parent():
        watch_parent(controller)
    if _orphaned():  # the controller died before the death signal was asked for
        os._exit(1)


def _work(job: tuple[Task, str | None]) -> Outcome:
    from compatlab.results import append

    task, run_dir = job
    if _orphaned():
        os._exit(1)
    outcome = run_task(task)
    if run_dir is not None:
        path = Path(run_dir) / f"records-{os.getpid()}.jsonl"
        if _controller is None:
            append(path, outcome.record())
        else:
            # A terminated worker finishes its line; a worker without a controller
            # writes nothing.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            try:
                if _orphaned():
                    os._exit(1)
                append(path, outcome.record())
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    return outcome


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel the tasks that have not started, terminate the workers (killing one
    that outlives :data:`GRACE_SECONDS`) and wait for the pool's thread."""
    # The pool has no public way to end its workers before Python 3.14
    # (terminate_workers); its process table is the one it keeps itself.
    processes = list((pool._processes or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    pool.shutdown(wait=True)


def execute(
    tasks: Sequence[Task], *, workers: int = 1, run_dir: Path | None = None, chunksize: int = 1
) -> Generator[Outcome, None, None]:
    """Run ``tasks`` here (``workers`` ≤ 1) or in a pool of :func:`pool_size`
    processes; stop early by closing the iterator or by an exception in the
    thread that iterates it (a signal's): the tasks that have not started are
    cancelled and the running ones terminated before it returns."""
    jobs = [(t, None if run_dir is None else str(run_dir)) for t in tasks]
    size = pool_size(workers, len(jobs))
    if size <= 1:
        yield from map(_work, jobs)
        return
    import multiprocessing

    pool = ProcessPoolExecutor(
        max_workers=size,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.getpid(),),
    )
    try:
        yield from pool.map(_work, jobs, chunksize=chunksize)
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)
