"""Executors: where tasks run. Each takes plain :class:`~compatlab.engine.tasks.Task`
values and yields :class:`~compatlab.engine.outcome.Outcome` values in task order.

A worker appends each outcome's results-table row to its own
``records-<pid>.jsonl`` in the run folder as it finishes, so a run whose
controller is killed keeps what its workers finished.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Sequence
from pathlib import Path

from compatlab.engine.outcome import Outcome
from compatlab.engine.run import run_task
from compatlab.engine.tasks import Task


def _work(job: tuple[Task, str | None]) -> Outcome:
    from compatlab.results import append

    task, run_dir = job
    outcome = run_task(task)
    if run_dir is not None:
        append(Path(run_dir) / f"records-{os.getpid()}.jsonl", outcome.record())
    return outcome


def execute(
    tasks: Sequence[Task], *, workers: int = 1, run_dir: Path | None = None, chunksize: int = 1
) -> Generator[Outcome, None, None]:
    """Run ``tasks`` here (``workers`` ≤ 1) or in a pool of at most ``workers``
    processes (never more than there are tasks); stop early by closing the
    iterator (pending tasks are cancelled)."""
    jobs = [(t, None if run_dir is None else str(run_dir)) for t in tasks]
    workers = min(workers, len(jobs))
    if workers <= 1:
        yield from map(_work, jobs)
        return
    import concurrent.futures

    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        try:
            yield from pool.map(_work, jobs, chunksize=chunksize)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
