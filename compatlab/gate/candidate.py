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

A failing candidate usually fails most of its runs for one reason, and shrinking
is most of a failing run's cost, so the gate does not shrink every failure on
its own. It runs in rounds, each through the engine's executor (so ``-n N``
shares as well as one process, and every task stays plain data):

1. every task searches without shrinking (``Task.shrink=False``) and stops at its
   first failing example; the controller explains each failure as it arrives
   (the first one can be shown at once, before anything is shrunk);
2. failures of one invariant whose explanations share a cause
   (:class:`~compatlab.gate.explain.Cause`: the property that differs, the
   refused type or property) form a group, in task order; the first of each group
   searches again and shrinks, counting only failures on the device type it
   failed on (``Task.focus``: left free, Hypothesis shrinks towards whichever
   type fails most simply, and one type's missing entry would hide another's);
3. every other member replays that shrunk case on its own version tuple
   (``Task.replay``). A member whose replay fails, for a cause its own failure
   had, keeps the shared counterexample (its outcome names the task that shrank
   it); the others (the case holds there, is refused by an older version, or
   fails for another reason) go to the next round with the failure they found.

Every reported counterexample fails on its own versions, and every failing run
keeps a cause it had: sharing changes what is shrunk, never what fails.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from compatlab.catalogue.candidate import (
    CandidateCatalogue,
    CandidateProblem,
    candidate_document,
)
from compatlab.catalogue.model import Catalogue, CompatEntry
from compatlab.engine.execute import execute
from compatlab.engine.outcome import Outcome, Status
from compatlab.engine.run import candidate_of
from compatlab.engine.tasks import CatalogueRef, Context, Request, Shared, Task, plan
from compatlab.errors import DefectError, PropertyParseError
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

    @property
    def shrunk(self) -> bool:
        """Whether this run shrank its counterexample itself."""
        return self.outcome.shrunk

    @property
    def shared_from(self) -> str | None:
        """The run that found and shrank the counterexample this one replays."""
        return self.outcome.shared_from

    def to_json(self) -> dict[str, Any]:
        return {
            "invariant": self.invariant,
            "versions": list(self.versions),
            "driver": self.driver,
            "status": str(self.status),
            "failure": self.failure.to_json(),
            "explanation": list(self.explanation.lines),
            "registers": list(self.explanation.registers),
            "causes": [dataclasses.asdict(c) for c in self.explanation.causes],
            "note": self.outcome.note,
            "shrunk": self.shrunk,
            "shared_from": self.shared_from,
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
    problems: tuple[dict[str, Any], ...]
    failures: tuple[GateFailure, ...]
    runs: int
    examples: int
    seconds: float
    complete: bool
    #: How many counterexamples were shrunk (the failures share them).
    shrinks: int = 0

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
            "shrinks": self.shrinks,
            "seconds": self.seconds,
            "complete": self.complete,
        }


def gate_problems(
    cc: CandidateCatalogue,
    *,
    baselines: Sequence[Version] | None = None,
    drivers: Sequence[str] | None = None,
) -> tuple[CandidateProblem, ...]:
    """What fails the gate before anything runs: the candidate's data problems
    (:attr:`CandidateCatalogue.problems`), then :func:`broken_entries`."""
    return (*cc.problems, *broken_entries(cc, baselines=baselines, drivers=drivers))


def broken_entries(
    cc: CandidateCatalogue,
    *,
    baselines: Sequence[Version] | None = None,
    drivers: Sequence[str] | None = None,
) -> tuple[CandidateProblem, ...]:
    """The gate's static step: the compat entries the candidate breaks.

    On the candidate, QEMU applies every entry filed for an older machine type to
    each device it creates on that machine type, and aborts when the entry names a
    property the device does not have or a value its type does not parse (QEMU
    qom/object.c, object_apply_global_props with &error_abort for compat
    properties). So every entry that reaches a device type (of ``drivers``, by
    default the ones the candidate touches) must still name one of its properties
    with a value that parses on the candidate, for the machine types of
    ``baselines`` (default: every older version) the candidate still offers.
    An entry already broken for that type at the base's newest release is the
    released history's, not the candidate's, and is left alone (as the runs excuse
    an inherited violation). One problem per entry, naming the entry, the machine
    types it breaks, the property and the device types."""
    cat, base, n = cc.catalogue, cc.base, cc.version
    b = base.versions[-1]
    oldest = cc.candidate.oldest_machine
    olds = sorted(
        v for v in (baselines or cat.versions) if v < n and (oldest is None or v >= oldest)
    )
    chosen = tuple(drivers) if drivers is not None else cc.touched()
    out: list[CandidateProblem] = []
    for entry in cat.compat:
        guests = [v for v in olds if v <= entry.version]
        if entry.version >= n or not guests:
            continue  # an entry filed under the candidate is entry-too-new's
        broken: dict[tuple[str, str], list[str]] = {}
        for driver in chosen:
            if not cat.is_a(driver, entry.driver) or driver not in base.types:
                continue
            if not (base.types[driver].exists_in(b) and cat.types[driver].exists_in(n)):
                continue
            if _refusal(base, driver, entry, b) is None:
                refusal = _refusal(cat, driver, entry, n)
                if refusal is not None:
                    broken.setdefault(refusal, []).append(driver)
        for (kind, why), types in broken.items():
            out.append(_broken_entry(entry, kind, why, types, guests, n))
    return tuple(out)


def _refusal(
    cat: Catalogue, driver: str, entry: CompatEntry, version: Version
) -> tuple[str, str] | None:
    """Why ``version`` cannot apply ``entry`` to a ``driver``, as (problem kind,
    parse error); None when it can."""
    prop = cat.properties(driver, version).get(entry.prop)
    if prop is None:
        return ("entry-property-removed", "")
    try:
        prop.type.parse(entry.value)
    except PropertyParseError as exc:
        return ("entry-value-refused", str(exc))
    return None


def _broken_entry(
    entry: CompatEntry,
    kind: str,
    why: str,
    types: list[str],
    guests: list[Version],
    n: Version,
) -> CandidateProblem:
    label = f"compat entry {entry.array or entry.version} {entry.driver}.{entry.prop}={entry.value}"
    span = f"{guests[0]} … {guests[-1]}" if len(guests) > 1 else str(guests[0])
    named = types[0] if len(types) == 1 else f"{len(types)} device types ({', '.join(types)})"
    if len(types) > 3:
        named = f"{len(types)} device types ({types[0]} … {types[-1]})"
    machines = f"machine types up to {entry.version} (guests of {span})"
    if kind == "entry-value-refused":
        message = (
            f"{label}: {why} for {entry.prop} in {n} ({named}); QEMU {n} refuses to start "
            f"such a device on {machines}"
        )
    else:
        message = (
            f"{label}: {named} no longer {'has' if len(types) == 1 else 'have'} {entry.prop} "
            f"in {n}; QEMU {n} aborts creating such a device on {machines}, and refuses "
            f"a config that sets it"
        )
    details = (
        ("entry", entry.array or str(entry.version)),
        ("machine_types", [str(guests[0]), str(guests[-1])]),
        ("driver", entry.driver),
        ("property", entry.prop),
        ("value", entry.value),
        ("drivers", list(types)),
    )
    return CandidateProblem(kind, message, details)


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
    first_failure: Callable[[GateFailure], None] | None = None,
    shrinking: Callable[[int, int], None] | None = None,
    ref: CatalogueRef | None = None,
) -> CandidateVerdict:
    """Run the gate's tasks (see :func:`gate_tasks`) and give the verdict.

    Baselines default to every version before the candidate; ``drivers`` to the
    device types the candidate touches (the others behave exactly as on the base's
    newest version, since builders never test versions). ``fail_fast`` stops at
    the first failure; ``workers`` > 1 runs tasks in that many processes (the same
    verdict: every task has its own seed, and groups are formed in task order). A
    task that errors is a defect, never a verdict: it raises.

    ``progress`` hears of every run of the first pass (done, total, failing);
    ``first_failure`` of the first failing run, as found and explained, before
    anything is shrunk; ``shrinking`` of each round that shrinks (counterexamples,
    failing runs waiting for one). Failures are shrunk once per cause (see the
    module docstring).
    """
    start = time.perf_counter()
    ref = ref or candidate_ref(cc)
    n = cc.version
    olds = sorted(baselines or [v for v in cc.catalogue.versions if v < n])
    chosen = tuple(drivers) if drivers is not None else cc.touched()
    problems = tuple(p.to_json() for p in gate_problems(cc, baselines=olds, drivers=chosen))
    tasks = [] if (problems and fail_fast) else gate_tasks(
        ref, baselines=olds, profile=profile, drivers=chosen, invariants=invariants, seed=seed
    )  # fmt: skip
    found: list[_Found] = []
    runs = examples = 0
    complete = not (problems and fail_fast)

    def since() -> float:
        return round(time.perf_counter() - start, 3)

    outcomes = execute([dataclasses.replace(t, shrink=False) for t in tasks], workers=workers)
    try:
        for index, outcome in enumerate(outcomes):
            runs += 1
            examples += outcome.examples
            _check(outcome)
            if outcome.status is Status.FAIL and outcome.failure is not None:
                explanation = explain(cc, outcome.failure)
                found.append(_Found(index, outcome, explanation))
                if first_failure is not None and len(found) == 1:
                    first_failure(GateFailure(outcome, explanation, since()))
            if progress is not None:
                progress(runs, len(tasks), len(found))
            if fail_fast and found:
                complete = runs == len(tasks)
                break
    finally:
        outcomes.close()
    rounds = _Shrinking(cc, workers, since)
    failures = rounds.run(found, shrinking)
    return CandidateVerdict(
        candidate=str(n),
        base=str(cc.base.versions[-1]),
        baselines=tuple(str(v) for v in olds),
        drivers=chosen,
        profile=profile,
        problems=problems,
        failures=failures,
        runs=runs,
        examples=examples + rounds.examples,
        seconds=since(),
        complete=complete,
        shrinks=rounds.shrinks,
    )


@dataclass(frozen=True, slots=True)
class _Found:
    """A failing run of the first pass: its place in the plan, its outcome (the
    failure as found) and the explanation of that failure."""

    index: int
    outcome: Outcome
    explanation: Explanation

    @property
    def task(self) -> Task:
        return self.outcome.task


def _check(outcome: Outcome) -> None:
    if outcome.status is Status.ERROR:
        raise GateTaskError(outcome)


def _shrinking(found: _Found) -> Task:
    """The task that shrinks ``found``'s failure, on its device type: so that the
    shrunk case keeps the cause the group was formed on."""
    assert found.outcome.failure is not None
    return dataclasses.replace(found.task, shrink=True, focus=found.outcome.failure.driver)


def _by_cause(found: Sequence[_Found]) -> list[list[_Found]]:
    """Failures grouped by cause, in order: a failure joins the first group of its
    invariant whose first member's explanation shares a cause with its own (a
    failure that cannot be explained has no cause and stays alone)."""
    groups: list[list[_Found]] = []
    for f in found:
        for group in groups:
            first = group[0]
            if first.task.invariant == f.task.invariant and first.explanation.shares_cause(
                f.explanation
            ):
                group.append(f)
                break
        else:
            groups.append([f])
    return groups


class _Shrinking:
    """The rounds after the first pass: shrink one failure per cause, replay it on
    the others of its group, and take the ones it does not hold for to the next
    round. Each round is two batches of engine tasks, so it runs as well in a
    process pool as here."""

    def __init__(self, cc: CandidateCatalogue, workers: int, since: Callable[[], float]) -> None:
        self.cc = cc
        self.workers = workers
        self.since = since
        self.examples = 0
        self.shrinks = 0

    def _run(self, tasks: Sequence[Task]) -> list[Outcome]:
        out = []
        for outcome in execute(tasks, workers=self.workers):
            self.examples += outcome.examples
            _check(outcome)
            out.append(outcome)
        return out

    def _failure(self, outcome: Outcome) -> GateFailure:
        assert outcome.failure is not None
        return GateFailure(outcome, explain(self.cc, outcome.failure), self.since())

    def run(
        self, found: Sequence[_Found], shrinking: Callable[[int, int], None] | None
    ) -> tuple[GateFailure, ...]:
        done: dict[int, GateFailure | None] = {}
        pending = list(found)
        while pending:
            groups = _by_cause(pending)
            if shrinking is not None:
                shrinking(len(groups), len(pending))
            shrunk = self._run([_shrinking(g[0]) for g in groups])
            replays: list[tuple[_Found, Task]] = []
            again: list[_Found] = []
            for group, outcome in zip(groups, shrunk, strict=True):
                first, rest = group[0], group[1:]
                if outcome.status is Status.FAIL and outcome.case is not None:
                    self.shrinks += int(outcome.shrunk)
                    done[first.index] = self._failure(outcome)
                    shared = Shared(outcome.case, first.task.label)
                    replays += [(m, dataclasses.replace(m.task, shrink=False, replay=shared))
                                for m in rest]  # fmt: skip
                    continue
                # Searched again, the failure is explained by a known finding (None)
                # or did not come back: keep it as it was found.
                failed = outcome.status is not Status.KNOWN
                done[first.index] = (
                    GateFailure(first.outcome, first.explanation, self.since()) if failed else None
                )
                again += rest
            for (member, _), outcome in zip(
                replays, self._run([t for _, t in replays]), strict=True
            ):
                if outcome.status is Status.FAIL and outcome.shared_from is not None:
                    failure = self._failure(outcome)
                    if failure.explanation.shares_cause(member.explanation):
                        done[member.index] = failure
                        continue
                again.append(member)
            pending = sorted(again, key=lambda f: f.index)
        return tuple(f for _, f in sorted(done.items()) if f is not None)


class GateTaskError(DefectError):
    """A gate task that could not give a verdict (a defect in a check or the model)."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        t = outcome.task
        super().__init__(f"{t.invariant} {'..'.join(t.versions)}: {outcome.note}")
