"""Run one task: the only place an invariant meets Hypothesis.

:func:`run_task` is what every executor calls. It activates the task's catalogue,
loads its profile, searches from its seed, classifies the outcome
(:class:`~compatlab.engine.outcome.Status`) and promotes a new failure to the
failure corpus. A failure is first found without shrinking: one that a known
finding explains needs no minimal example, and shrinking is most of a failing
run's cost; anything else is searched again from the same seed, and shrunk —
unless the task says not to (``Task.shrink``: a caller that shrinks one failure
per cause, as the candidate gate does, asks for the first failure as found).
A task that carries a shared counterexample (``Task.replay``) tries it first, on
its own versions: a failure there is the task's, not shrunk again, and the
outcome names the task that shrank it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from contextlib import nullcontext, suppress
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compatlab.engine.corpus import explaining, load_findings, promote
from compatlab.engine.outcome import Outcome, Status
from compatlab.engine.tasks import CatalogueRef, Task, reproduce_command
from compatlab.errors import CompatlabError, InputError, OracleError
from compatlab.invariants.registry import (
    Case,
    Failure,
    Invariant,
    Scope,
    System,
    Violation,
    get,
)
from compatlab.versions import Version

if TYPE_CHECKING:
    from compatlab.catalogue import Catalogue
    from compatlab.catalogue.candidate import CandidateCatalogue
    from compatlab.oracles.qemu import QemuBinary


_CANDIDATES: dict[CatalogueRef, CandidateCatalogue] = {}

#: How many distinct notes an outcome keeps (each example may note one).
MAX_NOTES = 8


def candidate_of(ref: CatalogueRef, built: CandidateCatalogue | None = None) -> CandidateCatalogue:
    """The candidate catalogue ``ref`` carries, applied on the built-in one once per
    process (``built``: the caller has it already)."""
    import json

    from compatlab.catalogue.candidate import apply_candidate, parse_candidate

    if ref.document is None:
        raise ValueError("the built-in catalogue is not a candidate")
    if ref not in _CANDIDATES:
        _CANDIDATES[ref] = built or apply_candidate(
            parse_candidate(json.loads(ref.document), str(ref.source))
        )
    return _CANDIDATES[ref]


def catalogue_of(ref: CatalogueRef) -> Catalogue:
    from compatlab.catalogue import builtin_catalogue

    return builtin_catalogue() if ref.builtin else candidate_of(ref).catalogue


def _restores_only(on_candidate: list[Any], on_released: list[Any]) -> bool:
    """Every device the two runs realized, call for call, came out the same (bytes
    and masks, or the same refusal), except where the candidate gives back, byte for
    byte, what a call both runs share (the source's own realize) showed: the
    candidate fixed an older break there and changed nothing else."""
    if len(on_candidate) != len(on_released):
        return False
    shared = [c for c, r in zip(on_candidate, on_released, strict=True) if c == r]
    for cand, rel in zip(on_candidate, on_released, strict=True):
        if cand == rel:
            continue
        if not isinstance(cand, list) or not isinstance(rel, list) or len(cand) != len(rel):
            return False
        for n, (c, r) in enumerate(zip(cand, rel, strict=True)):
            sources = [s[n] for s in shared if isinstance(s, list) and len(s) > n]
            for name in ("config", "wmask", "w1cmask", "cmask"):
                a, b = getattr(c, name), getattr(r, name)
                for i in (i for i in range(len(a)) if a[i] != b[i]):
                    if not any(getattr(s, name)[i] == a[i] for s in sources):
                        return False
    return True


def inherited(inv: Invariant, case: Case, released: Version) -> bool:
    """Whether a violation on a candidate belongs to the released history instead.

    The check runs again with the candidate (the case's last version) replaced by
    ``released``, the base's newest release; the violation is inherited when that
    fails too and every device both runs realized, call for call, came out the same
    (bytes and masks, or the same refusal): the candidate changed nothing the check
    looked at (nvme's 9.1 change, say, seen again from 9.0 to 10.1). A candidate that
    fixes one older break and keeps another (7.2 gave nvme its pre-6.0 MSI-X layout
    back for machine types <= 5.2, but not the Link Active bit 6.0 dropped) differs
    from the released run only by showing what the source showed: that is no new
    change either (:func:`_restores_only`).
    """
    from compatlab.realize import realize

    def observe(run_case: Case) -> list[Any] | None:
        seen: list[Any] = []

        def recording(config: Any, version: Version | str, **kw: Any) -> Any:
            try:
                result = realize(config, version, **kw)
            except CompatlabError as exc:
                seen.append(type(exc))
                raise
            seen.append([d.space for d in result.devices])
            return result

        try:
            inv.run(run_case, System(realize=recording))
        except Violation:
            return seen
        except Exception:
            return None
        return None

    *head, _ = case.versions
    before = (*(min(v, released) for v in head), released)
    on_candidate = observe(case)
    on_released = observe(dataclasses.replace(case, versions=before))
    return (
        on_candidate is not None
        and on_released is not None
        and _restores_only(on_candidate, on_released)
    )


@cache
def _qemu_binaries() -> tuple[QemuBinary, ...]:
    """Every QEMU binary found, once per process."""
    from compatlab.oracles.qemu import available_binaries

    return available_binaries()


def _qemu_missing(task: Task, machine: Version) -> str | None:
    """Why a real-QEMU task cannot run here (no binary offering ``machine``, or
    not the ones it compares), or None."""
    binaries = _qemu_binaries()
    have = ", ".join(b.release for b in binaries) or "none"
    hint = "run .ci/install-qemu or set COMPATLAB_QEMU"
    oracles = task.context.oracles
    if oracles is not None:
        from compatlab.errors import QemuNotFoundError
        from compatlab.oracles.qemu import binary_for

        lost = []
        for ref in (oracles.baseline, oracles.candidate):
            try:
                binary_for(ref)  # a release, or a path
            except QemuNotFoundError:
                lost.append(ref)
        if not lost:
            return None
        return f"{task.invariant} needs QEMU {' and '.join(lost)} (found: {have}); {hint}"
    if _answering(machine) is not None:
        return None
    newer = [b.release for b in binaries if machine in b.machines]
    why = f" ({', '.join(newer)} offers it but is newer than the catalogue)" if newer else ""
    return (
        f"{task.invariant} needs a QEMU binary offering {machine.machine_type} "
        f"(found: {have}){why}; {hint}"
    )


def _answering(machine: Version) -> str | None:
    """The release of the binary that answers for the model on ``machine``, as
    model-matches-qemu picks it (:func:`~compatlab.oracles.qemu.answering_binary`)."""
    from compatlab.oracles.qemu import answering_binary

    binary = answering_binary(machine, _qemu_binaries())
    return None if binary is None else binary.release


def _recorded(
    inv: Invariant, task: Task, versions: tuple[Version, ...], scope: Scope
) -> list[Case]:
    """The recorded cases that stand in for a live QEMU on this task (none without a
    captures folder, or for an invariant that has no recorded evidence)."""
    captures = task.context.captures
    if inv.recorded is None or captures is None or not Path(captures).is_dir():
        return []
    return inv.recorded(versions, scope, Path(captures))


def _settings(task: Task) -> Any:
    """The task's profile, with its example database in the task's folder."""
    from hypothesis import Phase, settings
    from hypothesis.database import DirectoryBasedExampleDatabase

    from compatlab import profiles

    profiles.load(task.context.profile)
    current = settings.default
    assert current is not None
    if task.context.budget == 0:
        # No generated case: the invariant's explicit examples only.
        current = settings(current, max_examples=1, phases=[Phase.explicit])
    elif task.context.budget is not None:
        current = settings(current, max_examples=task.context.budget)
    if current.database is not None and task.context.database is not None:
        current = settings(current, database=DirectoryBasedExampleDatabase(task.context.database))
    return current


def run_task(
    task: Task,
    *,
    excuse: Callable[[Case], bool] | None = None,
    system: System | None = None,
) -> Outcome:
    """Run ``task`` and say how it went. ``excuse`` (for tests and callers with
    their own rule) accepts violations that do not count, on top of the task's own
    ``excuse_inherited``; ``system`` replaces components under test (its ``note``
    is the engine's: the outcome keeps what the check noted)."""
    start = time.perf_counter()
    cat_ref = task.context.catalogue
    scope_cm: Any = nullcontext()
    released: Version | None = None
    if not cat_ref.builtin:
        from compatlab.catalogue import using_catalogue

        cc = candidate_of(cat_ref)
        scope_cm = using_catalogue(cc.catalogue)
        released = cc.base.versions[-1]
    with scope_cm:
        return _run(task, start, excuse, system, released)


def _run(
    task: Task,
    start: float,
    excuse: Callable[[Case], bool] | None,
    system: System | None,
    released: Version | None,
) -> Outcome:
    from hypothesis import Phase, example, given, seed, settings

    inv = get(task.invariant)
    versions = tuple(Version.parse(v) for v in task.versions)
    findings = load_findings(task.context.findings)
    examples = 0
    found: list[Case] = []
    notes: dict[str, Failure] = {}

    def note(failure: Failure) -> None:
        if len(notes) < MAX_NOTES:
            notes.setdefault(failure.detail, failure)

    system = dataclasses.replace(system or System(), note=note)

    def done(status: Status, **kw: Any) -> Outcome:
        elapsed = time.perf_counter() - start
        return Outcome(task, status, examples, elapsed, notes=tuple(notes.values()), **kw)

    oracles = task.context.oracles
    scope = Scope(
        drivers=task.drivers,
        last_may_refuse=task.last_may_refuse,
        binaries=None if oracles is None else (oracles.baseline, oracles.candidate),
        machines=None if oracles is None else tuple(map(Version.parse, oracles.machines)),
    )
    # A real-QEMU invariant runs on what an installed binary answers; without one,
    # on the captures recorded for its versions (every one, nothing generated); with
    # neither it has no evidence and is skipped. One that can take either kind of
    # evidence says in its result which it had.
    recorded: list[Case] | None = None
    evidence: str | None = None
    if inv.needs_qemu:
        try:
            missing = _qemu_missing(task, versions[0])
        except OracleError as exc:
            return done(Status.ERROR, note=f"oracle error: {exc}")
        if missing is not None:
            recorded = _recorded(inv, task, versions, scope)
            if not recorded:
                where = task.context.captures
                why = f"under {where}" if where is not None else "given"
                return done(Status.SKIP, note=f"{missing} (no recorded capture {why} covers it)")
            evidence = (
                f"recorded evidence: {len(recorded)} captures under {task.context.captures} "
                "(no QEMU binary answers)"
            )
        elif inv.recorded is not None:
            evidence = f"live evidence: QEMU {_answering(versions[0])}"

    def excused(case: Case) -> bool:
        if excuse is not None and excuse(case):
            return True
        return task.excuse_inherited and released is not None and inherited(inv, case, released)

    strategy = inv.strategy(versions, scope)
    explicit = inv.examples(versions, scope) if inv.examples is not None else []
    base = _settings(task)

    def attempt(case: Case) -> None:
        nonlocal examples
        examples += 1
        try:
            inv.run(case, system)
        except OracleError as exc:
            # No evidence, no verdict: out of Hypothesis at once, neither shrunk nor
            # replayed (it would treat an Exception as a failure of this case).
            raise _OracleAbort(exc) from None
        except Violation as violation:
            if task.focus is not None and violation.failure.driver != task.focus:
                return  # another type's failure: not the one this task shrinks
            if excused(case):
                return
            found[:] = [case]
            raise

    def search(*, shrink: bool) -> None:
        """One Hypothesis search from the task's seed (a fresh test each time, since
        settings attach to the test function)."""

        def test(case: Case) -> None:
            attempt(case)

        # One database key per task, not one for every task (they share this source).
        test._hypothesis_internal_add_digest = task.label.encode()  # type: ignore[attr-defined]
        # Hypothesis' explain phase varies the shrunk example a hundred times or so
        # to comment on its report, which the engine never shows (it keeps the
        # Failure): that phase alone was most of a failing run's time.
        phases = [
            p for p in base.phases if p is not Phase.explain and (shrink or p is not Phase.shrink)
        ]
        searched = given(strategy)(test)
        for case in reversed(explicit):  # the outermost @example runs first
            searched = example(case)(searched)
        # Settings outside @seed: @seed alone drops the example database.
        settings(base, phases=phases, report_multiple_bugs=False)(seed(task.seed)(searched))()

    # A shared counterexample, on this task's own versions (a chain's middle
    # version included), is tried before anything is generated.
    replayed = None
    if task.replay is not None:
        replayed = dataclasses.replace(task.replay.case, versions=versions)
    searched_again = False
    try:
        try:
            # A version of this task that refuses the shared config: search instead.
            if replayed is not None:
                with suppress(InputError):
                    attempt(replayed)
            if recorded is not None:
                for evidence_case in recorded:
                    attempt(evidence_case)
            else:
                search(shrink=False)
        except Violation as first:
            known = explaining(findings, first.failure)
            if known is not None:
                return done(Status.KNOWN, failure=first.failure, note=known.reason)
            # A shared counterexample is minimal already, a recorded one as QEMU ran it.
            if (
                not task.shrink
                or recorded is not None
                or (replayed is not None and found[-1] is replayed)
            ):
                raise
            searched_again = True
            search(shrink=True)
    except Violation as violation:
        failure = violation.failure
        known = explaining(findings, failure)
        if known is not None:
            return done(Status.KNOWN, failure=failure, note=known.reason)
        case = found[-1] if found else None
        shared = task.replay if replayed is not None and case is replayed else None
        promoted = None
        # The corpus keeps minimal cases: a first failure as found is not one.
        final = searched_again or shared is not None or recorded is not None
        if case is not None and final and task.context.failures_dir is not None:
            path = promote(
                inv.name,
                case,
                failure,
                Path(task.context.failures_dir),
                reproduce=reproduce_command(task),
            )
            promoted = str(path)
        return done(
            Status.FAIL,
            failure=failure,
            promoted=promoted,
            case=case,
            shrunk=searched_again and Phase.shrink in base.phases,
            shared_from=None if shared is None else shared.found_by,
            note=evidence
            if shared is None
            else f"counterexample found and shrunk by {shared.found_by}",
        )
    except _OracleAbort as abort:
        return done(Status.ERROR, note=f"oracle error: {abort.error}")
    except Exception as exc:  # a defect in a check or the model: keep going, say so
        return done(Status.ERROR, note=f"{type(exc).__name__}: {exc}")
    return done(Status.PASS, note=evidence)


class _OracleAbort(BaseException):
    """Carries an :class:`~compatlab.errors.OracleError` out of a Hypothesis search
    (a BaseException, like KeyboardInterrupt, goes through it untouched)."""

    def __init__(self, error: OracleError) -> None:
        super().__init__(str(error))
        self.error = error
