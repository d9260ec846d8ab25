"""A whole ``compatlab check`` run: replay the failure corpus, plan, execute, keep
the results table and the run's metadata. The CLI parses arguments and prints;
this module does the work and returns a :class:`CheckRun`.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compatlab.engine.corpus import Replay, replay_corpus
from compatlab.engine.execute import execute
from compatlab.engine.outcome import Outcome
from compatlab.engine.tasks import Request, Task, plan
from compatlab.errors import NothingToRunError


def new_run_id(seed: int) -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{seed:08x}"


@dataclass(slots=True)
class CheckRun:
    """What a check run did: its tasks, their outcomes so far, the corpus replays."""

    request: Request
    run_dir: Path
    tasks: list[Task]
    replays: list[Replay] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    table_rows: int = 0

    @property
    def complete(self) -> bool:
        return len(self.outcomes) == len(self.tasks)

    def failing(self, *, strict: bool = False) -> list[Outcome]:
        return [o for o in self.outcomes if o.failed(strict=strict)]

    @property
    def still_failing(self) -> list[Replay]:
        return [r for r in self.replays if r.still_failing]

    @property
    def examples(self) -> int:
        return sum(o.examples for o in self.outcomes)

    def meta(self, workers: int) -> dict[str, Any]:
        req = self.request
        return {
            "run_id": req.context.run_id,
            "profile": req.context.profile,
            "seed": req.context.seed,
            "versions": [str(v) for v in req.versions],
            "invariants": list(req.invariants),
            "devices": [d or "*" for d in req.devices],
            "workers": workers,
            "seconds": round(self.seconds, 2),
            "runs_planned": len(self.tasks),
            "runs_done": len(self.outcomes),
            "examples": self.examples,
            "corpus_replayed": len(self.replays),
            "corpus_still_failing": [str(r.path) for r in self.still_failing],
        }


def run_check(
    request: Request,
    run_dir: Path,
    *,
    workers: int = 1,
    replay: bool = True,
    on_replays: Callable[[list[Replay]], None] | None = None,
    on_start: Callable[[CheckRun], None] | None = None,
    on_outcome: Callable[[CheckRun, Outcome], None] | None = None,
) -> CheckRun:
    """Replay the failure corpus, then run every task ``request`` plans (in
    ``workers`` processes), writing the records, ``results.parquet`` and
    ``meta.json`` into ``run_dir``, also when interrupted."""
    from compatlab.results import merge, write_meta

    started = time.perf_counter()
    run = CheckRun(request, run_dir, plan(request))
    if not run.tasks:
        raise NothingToRunError(
            "nothing to run: no selected device type exists on the oldest version of any "
            "version tuple"
            if request.devices != (None,)
            else "nothing to run: the selection plans no task"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    if replay and request.context.failures_dir is not None:
        run.replays = replay_corpus(Path(request.context.failures_dir), request.invariants)
        if on_replays is not None:
            on_replays(run.replays)
    if on_start is not None:
        on_start(run)
    try:
        for outcome in execute(run.tasks, workers=workers, run_dir=run_dir, chunksize=4):
            run.outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(run, outcome)
    finally:
        run.seconds = time.perf_counter() - started
        run.table_rows = len(merge(run_dir))
        write_meta(run_dir, run.meta(workers))
    return run


__all__ = ["CheckRun", "new_run_id", "run_check"]
