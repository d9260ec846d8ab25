"""A whole ``compatlab check`` run: replay the failure corpus, plan, execute, keep
the results table and the run's metadata. The CLI parses arguments and prints;
this module does the work and returns a :class:`CheckRun`.

A run stopped by SIGINT or SIGTERM ends promptly and tells the truth: the
executor cancels what has not started and terminates what runs, then the table
is built from the records the workers wrote and ``meta.json`` says the run was
interrupted, by which signal, and how many of the planned runs it holds.
"""

from __future__ import annotations

import datetime
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from compatlab.engine.corpus import Replay, replay_corpus
from compatlab.engine.execute import execute, pool_size
from compatlab.engine.outcome import Outcome
from compatlab.engine.tasks import Request, Task, plan
from compatlab.errors import ConfigError, NothingToRunError

if TYPE_CHECKING:
    from compatlab.results import ResultRecord


def new_run_id(seed: int) -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{seed:08x}"


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal. It is a :class:`KeyboardInterrupt` (SIGINT's own),
    no error: no ``except Exception`` in a check or an executor keeps it from ending
    the run, and Hypothesis re-raises it at once instead of treating it as a failing
    example. A signal can still come where an exception is swallowed (a ``__del__``,
    a callback), so the run also stops at the next task boundary once a signal was
    received (see :func:`_run`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


#: The signals that stop a run cleanly.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class _StopOnSignals:
    """While entered in the main thread, the first SIGINT or SIGTERM raises
    :class:`Interrupted` while ``armed`` (later it is only remembered: the run is
    writing what it has); a second one ends the process at once, as that signal
    does by default (the workers die with it). A signal the process ignores (a
    background job's SIGINT) stays ignored; in another thread nothing changes."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.armed = True
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                old = signal.getsignal(signum)
                if old is not signal.SIG_IGN:
                    self._old[signum] = signal.SIG_DFL if old is None else old
                    signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.received = signum
        if self.armed:
            self.armed = False
            raise Interrupted(signum)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, old in self._old.items():
            signal.signal(signum, old)


@dataclass(slots=True)
class CheckRun:
    """What a check run did: its tasks, the outcomes the controller received, the
    records its run folder holds (the truth about what finished, also when the
    run was stopped), the corpus replays."""

    request: Request
    run_dir: Path
    tasks: list[Task]
    #: Worker processes the run used (1: it ran in the controller).
    workers: int = 1
    replays: list[Replay] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    #: The records of the results table, as read back from the run folder.
    records: list[ResultRecord] = field(default_factory=list)
    #: Record lines that could not be read (``file:line: why``).
    skipped: list[str] = field(default_factory=list)
    #: The signal that stopped the run (or came while it was being written).
    signal: int | None = None
    #: What else stopped it (an error), as ``Type: message``.
    error: str | None = None

    @property
    def complete(self) -> bool:
        return len(self.outcomes) == len(self.tasks)

    @property
    def interrupted(self) -> bool:
        """Stopped by a signal before every task finished."""
        return self.signal is not None and not self.complete

    @property
    def table_rows(self) -> int:
        return len(self.records)

    def failing(self, *, strict: bool = False) -> list[Outcome]:
        return [o for o in self.outcomes if o.failed(strict=strict)]

    @property
    def still_failing(self) -> list[Replay]:
        return [r for r in self.replays if r.still_failing]

    @property
    def examples(self) -> int:
        return sum(r.examples for r in self.records)

    def meta(self) -> dict[str, Any]:
        req = self.request
        return {
            "run_id": req.context.run_id,
            "profile": req.context.profile,
            "seed": req.context.seed,
            "versions": [str(v) for v in req.versions],
            "invariants": list(req.invariants),
            "devices": [d or "*" for d in req.devices],
            "workers": self.workers,
            "seconds": round(self.seconds, 2),
            "runs_planned": len(self.tasks),
            "runs_done": len(self.records),
            "complete": self.complete,
            "interrupted": self.interrupted,
            "signal": signal_name(self.signal) if self.interrupted and self.signal else None,
            "error": self.error,
            "unreadable_records": len(self.skipped),
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
    ``meta.json`` into ``run_dir``, also when stopped. SIGINT and SIGTERM (in the
    main thread) stop the run: it returns with ``signal`` set; any other exception
    is raised once the folder says what happened."""
    from compatlab.results import read_records, write_meta, write_table

    started = time.perf_counter()
    tasks = plan(request)
    if not tasks:
        raise NothingToRunError(
            "nothing to run: no selected device type exists on the oldest version of any "
            "version tuple"
            if request.devices != (None,)
            else "nothing to run: the selection plans no task"
        )
    run = CheckRun(request, run_dir, tasks, workers=pool_size(workers, len(tasks)))
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the run folder {run_dir}: {exc.strerror or exc}"
        ) from None
    # Every run ends by building its table; importing pandas takes seconds, so it
    # is imported while the tasks run, and a stopped run ends at once.
    threading.Thread(target=_import_pandas, name="compatlab-import-pandas", daemon=True).start()
    stop = _StopOnSignals()
    error: BaseException | None = None
    with stop:
        try:
            try:
                _run(run, replay, on_replays, on_start, on_outcome, stop)
            finally:
                stop.armed = False
        except (Interrupted, KeyboardInterrupt):
            # A KeyboardInterrupt is SIGINT where this handler is not installed.
            if stop.received is None:
                stop.received = signal.SIGINT
        except BaseException as exc:
            error = exc
            run.error = f"{type(exc).__name__}: {exc}"
        # A signal from here on is remembered, and the run written in full.
        run.seconds = time.perf_counter() - started
        run.records = list(read_records(run_dir, warn=run.skipped.append))
        write_table(run_dir, run.records)
        run.signal = stop.received
        write_meta(run_dir, run.meta())
    if error is not None:
        raise error
    return run


def _import_pandas() -> None:
    import pandas  # noqa: F401


def _run(
    run: CheckRun,
    replay: bool,
    on_replays: Callable[[list[Replay]], None] | None,
    on_start: Callable[[CheckRun], None] | None,
    on_outcome: Callable[[CheckRun, Outcome], None] | None,
    stop: _StopOnSignals,
) -> None:
    failures_dir = run.request.context.failures_dir
    if replay and failures_dir is not None:
        run.replays = replay_corpus(Path(failures_dir), run.request.invariants)
        if on_replays is not None:
            on_replays(run.replays)
    if on_start is not None:
        on_start(run)
    outcomes = execute(run.tasks, workers=run.workers, run_dir=run.run_dir, chunksize=4)
    try:
        for outcome in outcomes:
            run.outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(run, outcome)
            if stop.received is not None:  # its Interrupted was swallowed somewhere
                raise Interrupted(stop.received)
    finally:
        outcomes.close()


__all__ = ["CheckRun", "Interrupted", "new_run_id", "run_check"]
