"""The candidate gate: is it safe to ship release N, given as data?

A candidate file (docs/candidate-format.md) is applied on the catalogue as it
stood at its base release (:mod:`compatlab.catalogue.candidate`); the gate then
asks the run engine for the cross-version invariants from every older version to
N, and the one-version ones on N itself, on the device types the candidate
touches. Each task carries the candidate as data (:class:`CatalogueRef`), so any
executor can run it. Breaks already in the released history are not the
candidate's: the engine excuses a violation that the base's newest release, in the
candidate's place, shows on exactly the same devices. Every failure is explained
(:func:`compatlab.gate.explain.explain`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from compatlab.catalogue.candidate import CandidateCatalogue, candidate_document
from compatlab.engine.execute import execute
from compatlab.engine.outcome import Outcome, Status
from compatlab.engine.run import candidate_of
from compatlab.engine.tasks import CatalogueRef, Context, Request, Task, plan
from compatlab.errors import DefectError
from compatlab.gate.explain import Explanation, explain
from compatlab.invariants.registry import Failure
from compatlab.versions import Version

GATE_INVARIANTS: tuple[str, ...] = (
    "machine-type-upgrade",
    "upgrade-round-trip",
    "upgrade-chain",
    "migration-load-accepts",
    "guest-write-equivalence",
)
"""What the gate checks from every older version to the candidate. The machine-type
view comes first: stored hints pin every property a version had, so a changed default
with no history entry shows only when the candidate applies an old machine type."""

CANDIDATE_INVARIANTS: tuple[str, ...] = (
    "config-space-well-formed",
    "same-version-round-trip",
    "explicit-default-is-neutral",
)
"""What the gate checks on the candidate itself, for the device types it touches
(a new device type has no older guests, but its config space must still be right)."""


@dataclass(frozen=True, slots=True)
class GateFailure:
    """One invariant that fails from one older version to the candidate."""

    outcome: Outcome
    explanation: Explanation
    seconds: float = 0.0  # since the gate started

    @property
    def invariant(self) -> str:
        return self.outcome.task.invariant

    @property
    def versions(self) -> tuple[str, ...]:
        return self.outcome.task.versions

    @property
    def failure(self) -> Failure:
        assert self.outcome.failure is not None
        return self.outcome.failure

    @property
    def driver(self) -> str | None:
        return self.failure.driver

    @property
    def status(self) -> Status:
        return self.outcome.status

    @property
    def reproduce(self) -> str:
        return self.outcome.reproduce

    def to_json(self) -> dict[str, Any]:
        return {
            "invariant": self.invariant,
            "versions": list(self.versions),
            "driver": self.driver,
            "status": str(self.status),
            "failure": self.failure.to_json(),
            "explanation": list(self.explanation.lines),
            "registers": list(self.explanation.registers),
            "note": self.outcome.note,
            "seconds": self.seconds,
            "reproduce": self.reproduce,
        }


@dataclass(frozen=True, slots=True)
class CandidateVerdict:
    candidate: str
    base: str
    baselines: tuple[str, ...]
    drivers: tuple[str, ...]
    profile: str
    problems: tuple[dict[str, str], ...]
    failures: tuple[GateFailure, ...]
    runs: int
    examples: int
    seconds: float
    complete: bool

    @property
    def passed(self) -> bool:
        return not self.problems and not any(f.status is Status.FAIL for f in self.failures)

    def to_json(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "base": self.base,
            "baselines": list(self.baselines),
            "drivers": list(self.drivers),
            "profile": self.profile,
            "verdict": "pass" if self.passed else "fail",
            "problems": list(self.problems),
            "failures": [f.to_json() for f in self.failures],
            "runs": self.runs,
            "examples": self.examples,
            "seconds": self.seconds,
            "complete": self.complete,
        }


def candidate_ref(cc: CandidateCatalogue) -> CatalogueRef:
    """The candidate as task data (it was applied on the built-in catalogue)."""
    document = json.dumps(candidate_document(cc.candidate), sort_keys=True)
    ref = CatalogueRef(source=cc.candidate.source, document=document)
    candidate_of(ref, cc)
    return ref


def gate_tasks(
    ref: CatalogueRef,
    *,
    baselines: Sequence[Version] | None = None,
    profile: str = "gate",
    drivers: Sequence[str] | None = None,
    invariants: Sequence[str] | None = None,
    seed: int = 0,
) -> list[Task]:
    """The engine's tasks for the gate: :data:`GATE_INVARIANTS` from every baseline
    (newest first) to the candidate, then :data:`CANDIDATE_INVARIANTS` on it."""
    cc = candidate_of(ref)
    n = cc.version
    olds = tuple(baselines or [v for v in cc.catalogue.versions if v < n])
    chosen = tuple(drivers) if drivers is not None else cc.touched()
    if not chosen:
        return []
    wanted = set(invariants) if invariants else None

    def pick(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(i for i in names if wanted is None or i in wanted)

    upgrades = Request(
        invariants=pick(GATE_INVARIANTS),
        versions=(*olds, n),
        context=Context(
            profile=profile,
            seed=seed,
            catalogue=ref,
            last_may_refuse=True,
            excuse_inherited=True,
            run_id="gate",
            origin="gate",
        ),
        drivers=chosen,
        targets=(n,),
    )
    # On the candidate alone: one version, so neither upgrade rule applies.
    on_candidate = dataclasses.replace(
        upgrades, invariants=pick(CANDIDATE_INVARIANTS), versions=(n,)
    )
    return plan(upgrades) + plan(on_candidate)


def candidate_gate(
    cc: CandidateCatalogue,
    *,
    baselines: Sequence[Version] | None = None,
    profile: str = "gate",
    drivers: Sequence[str] | None = None,
    invariants: Sequence[str] | None = None,
    seed: int = 0,
    fail_fast: bool = False,
    workers: int = 1,
    progress: Callable[[int, int, int], None] | None = None,
    ref: CatalogueRef | None = None,
) -> CandidateVerdict:
    """Run the gate's tasks (see :func:`gate_tasks`) and give the verdict.

    Baselines default to every version before the candidate; ``drivers`` to the
    device types the candidate touches (the others behave exactly as on the base's
    newest version, since builders never test versions). ``fail_fast`` stops at
    the first failure; ``workers`` > 1 runs tasks in that many processes (the same
    verdict: every task has its own seed). A task that errors is a defect, never a
    verdict: it raises.
    """
    start = time.perf_counter()
    ref = ref or candidate_ref(cc)
    n = cc.version
    olds = sorted(baselines or [v for v in cc.catalogue.versions if v < n])
    chosen = tuple(drivers) if drivers is not None else cc.touched()
    problems = tuple(p.to_json() for p in cc.problems)
    tasks = [] if (problems and fail_fast) else gate_tasks(
        ref, baselines=olds, profile=profile, drivers=chosen, invariants=invariants, seed=seed
    )  # fmt: skip
    failures: list[GateFailure] = []
    runs = examples = 0
    complete = not (problems and fail_fast)
    outcomes = execute(tasks, workers=workers)
    try:
        for outcome in outcomes:
            runs += 1
            examples += outcome.examples
            if outcome.status is Status.ERROR:
                raise GateTaskError(outcome)
            if outcome.status is Status.FAIL and outcome.failure is not None:
                failures.append(
                    GateFailure(
                        outcome,
                        explain(cc, outcome.failure),
                        round(time.perf_counter() - start, 3),
                    )
                )
            if progress is not None:
                progress(runs, len(tasks), len(failures))
            if fail_fast and failures:
                complete = runs == len(tasks)
                break
    finally:
        outcomes.close()
    return CandidateVerdict(
        candidate=str(n),
        base=str(cc.base.versions[-1]),
        baselines=tuple(str(v) for v in olds),
        drivers=chosen,
        profile=profile,
        problems=problems,
        failures=tuple(failures),
        runs=runs,
        examples=examples,
        seconds=round(time.perf_counter() - start, 3),
        complete=complete,
    )


class GateTaskError(DefectError):
    """A gate task that could not give a verdict (a defect in a check or the model)."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        t = outcome.task
        super().__init__(f"{t.invariant} {'..'.join(t.versions)}: {outcome.note}")
