"""The run engine: one way to run the invariant suite, for every caller.

``compatlab check``, the pytest plugin, the candidate gate and (later) the
fuzzer and a cluster all go through it:

- :mod:`~compatlab.engine.tasks`: a :class:`Request` becomes :class:`Task` values
  (plain data: invariant, version tuple, device types, seed, profile, catalogue,
  where failures are kept) by :func:`plan`, the one place version tuples and
  three-version middles are chosen; :func:`reproduce_command` is the one command
  that replays exactly one task;
- :mod:`~compatlab.engine.run`: :func:`run_task`, the one place an invariant meets
  Hypothesis, giving an :class:`Outcome` with a :class:`Status`;
- :mod:`~compatlab.engine.corpus`: known findings, and the failure corpus every
  run promotes to and replays;
- :mod:`~compatlab.engine.execute`: executors (here, or a process pool);
- :mod:`~compatlab.engine.session`: a whole check run, with its results table.

The engine sits above the invariants and the results table, and below the gate,
the reports and the CLI.
"""

from __future__ import annotations

from compatlab.engine.corpus import Finding, Replay, load_findings, promote, replay_corpus
from compatlab.engine.execute import execute
from compatlab.engine.outcome import Outcome, Status, failure_of
from compatlab.engine.run import run_task
from compatlab.engine.tasks import (
    BUILTIN,
    CatalogueRef,
    Context,
    Oracles,
    Request,
    Task,
    plan,
    reproduce_command,
    task_seed,
)

__all__ = [
    "Context",
    "Oracles",
    "Request",
    "Task",
    "plan",
    "run_task",
    "execute",
    "Outcome",
    "Status",
    "reproduce_command",
    "CatalogueRef",
    "BUILTIN",
    "Finding",
    "load_findings",
    "Replay",
    "promote",
    "replay_corpus",
    "failure_of",
    "task_seed",
]
