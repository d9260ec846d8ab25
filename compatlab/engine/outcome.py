"""What one task's run came to: a :class:`Status` and an :class:`Outcome`.

An outcome keeps the failure structured (a
:class:`~compatlab.invariants.registry.Failure`) from the check that raised it to
the report that renders it; the results table stores it as JSON in one column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from compatlab.engine.tasks import Task, reproduce_command
from compatlab.invariants.registry import Case, Failure
from compatlab.results import ResultRecord


class Status(StrEnum):
    """How a task ended. ``known`` is a failure that a known finding explains;
    ``error`` a defect in a check or the model (or an oracle that could not answer):
    never a verdict; ``skip`` a task that could not run here (no QEMU for it)."""

    PASS = "pass"
    FAIL = "fail"
    KNOWN = "known"
    ERROR = "error"
    SKIP = "skip"

    @property
    def failed(self) -> bool:
        """Whether the run fails on this status (``known`` only under ``--strict``)."""
        return self in (Status.FAIL, Status.ERROR)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One task's result: its status, the examples it ran, and the failure."""

    task: Task
    status: Status
    examples: int
    seconds: float
    failure: Failure | None = None
    note: str | None = None
    #: Where a new failure was promoted in the failure corpus.
    promoted: str | None = None
    #: What the check saw but did not fail on (distinct details, first first).
    notes: tuple[Failure, ...] = ()
    #: The failing case itself (a caller hands it to other tasks to replay, see
    #: :class:`~compatlab.engine.tasks.Shared`); not part of the results table.
    case: Case | None = None
    #: Whether this run shrank its failure (False: the first failing example as
    #: found, or a shared counterexample replayed).
    shrunk: bool = False
    #: The label of the task that found and shrank the counterexample this failure
    #: replays (None: the task's own).
    shared_from: str | None = None

    @property
    def reproduce(self) -> str:
        return self.reproduce_command()

    def reproduce_command(self, *, strict: bool = False) -> str:
        """The command that replays this task; under ``strict`` a known finding
        failed, and the command keeps ``--strict`` so that it fails the same way."""
        command = reproduce_command(self.task)
        if strict and self.status is Status.KNOWN and self.task.context.origin == "check":
            command += " --strict"
        return command

    def failed(self, *, strict: bool = False) -> bool:
        return self.status.failed or (strict and self.status is Status.KNOWN)

    def record(self) -> ResultRecord:
        """The results-table row of this outcome."""
        t = self.task
        return ResultRecord(
            run_id=t.context.run_id,
            invariant=t.invariant,
            device=t.device,
            versions="..".join(t.versions),
            version_from=t.versions[0],
            version_to=t.versions[-1],
            status=str(self.status),
            examples=self.examples,
            failures=int(self.status in (Status.FAIL, Status.KNOWN)),
            seconds=round(self.seconds, 4),
            seed=t.seed,
            profile=t.context.profile,
            failure=json.dumps(self.failure.to_json(), sort_keys=True) if self.failure else None,
            reproduce=self.reproduce,
            note=self.note or (self.notes[0].detail if self.notes else None),
        )


def failure_of(record: ResultRecord) -> Failure | None:
    """The structured failure a results-table row holds (inverse of :meth:`Outcome.record`
    for that column)."""
    return Failure.from_json(json.loads(record.failure)) if record.failure else None
