"""Requests and tasks: what a run is asked to cover, as plain data.

A :class:`Request` says what to cover (invariants, device types, versions, the
versions to upgrade *to*, profile, seed); :func:`plan` turns it into
:class:`Task` values, one invariant on one version tuple (and one device type, or
a group of them). A task is plain, picklable data: every executor (the local
process pool today, a fuzzing loop or a cluster later) runs it with
:func:`compatlab.engine.run.run_task` and nothing else, so a task carries
everything a run depends on — the catalogue it runs on, the findings file, where
failures and Hypothesis examples are kept — and no process-global state.

The version tuples are chosen in one place:

- one-version invariants run on every selected version (with ``targets``: on the
  targets only);
- two-version invariants on every ordered pair U < V of the selected versions
  (with ``targets``: every U < T for each target T);
- three-version invariants on the same pairs (U, W), with the middle version V
  drawn from the catalogue's versions between them by a pure function of the
  seed, the invariant and the pair, so that planning the pair alone again
  (a reproduce command) draws the same V.
"""

from __future__ import annotations

import hashlib
import random
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from compatlab.versions import Version

if TYPE_CHECKING:
    from compatlab.invariants.registry import Case


@dataclass(frozen=True, slots=True)
class CatalogueRef:
    """Which catalogue a task runs on, as data: the built-in one (the default), or a
    candidate release applied on it, carried as its document (the candidate file's
    content as JSON text, see :func:`compatlab.catalogue.candidate.candidate_document`)
    and named by ``source``: the file it came from, or ``<release N>`` for release N
    of the built-in catalogue written as the candidate it would have been."""

    source: str | None = None
    document: str | None = None

    @property
    def builtin(self) -> bool:
        return self.document is None

    @property
    def release(self) -> str | None:
        """N, for ``<release N>``."""
        if self.source is not None and self.source.startswith("<release "):
            return self.source.removeprefix("<release ").removesuffix(">")
        return None


BUILTIN = CatalogueRef()


@dataclass(frozen=True, slots=True)
class Oracles:
    """The real binaries a binary-gate task compares, by release (``10.0``), and the
    machine types its cases are drawn on."""

    baseline: str
    candidate: str
    machines: tuple[str, ...]
    #: The ``--machines`` the user gave (None: every machine type both offer).
    spec: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """What every task of one run shares: how it searches (profile, base seed and an
    example ``budget`` overriding the profile's), what it runs on (catalogue,
    oracles, and the recorded captures that stand in for a missing oracle), where it
    keeps what it finds, and how it treats a newest version that
    refuses (``last_may_refuse``) or a violation the released history already has
    (``excuse_inherited``): both the candidate gate's rules, applied to tasks that
    span more than one version."""

    profile: str
    seed: int
    budget: int | None = None
    catalogue: CatalogueRef = BUILTIN
    oracles: Oracles | None = None
    findings: str | None = None
    #: The recorded real-QEMU captures (``corpora/qemu``) a real-QEMU invariant
    #: checks when no installed binary answers (None: none, such a task is skipped).
    captures: str | None = None
    failures_dir: str | None = None
    database: str | None = None
    last_may_refuse: bool = False
    excuse_inherited: bool = False
    run_id: str = "run"
    #: The command the run was planned by (``check`` or ``gate``), for its
    #: reproduce commands.
    origin: str = "check"


@dataclass(frozen=True, slots=True)
class Request:
    """What a run covers. ``devices`` lists one entry per task group: a driver name,
    or None for configs drawn from every device type; ``drivers`` instead gives one
    group of device types that each task draws from (the gate's form)."""

    invariants: tuple[str, ...]
    versions: tuple[Version, ...]
    context: Context
    devices: tuple[str | None, ...] = (None,)
    drivers: tuple[str, ...] | None = None
    targets: tuple[Version, ...] | None = None


@dataclass(frozen=True, slots=True)
class Shared:
    """A counterexample one task found and shrank, handed to another task of the same
    invariant to replay on its own version tuple instead of shrinking a failure of
    its own (the candidate gate shares one per cause). ``found_by`` is the label of
    the task that found and shrank it, so that an outcome can say where its
    counterexample came from."""

    case: Case
    found_by: str


@dataclass(frozen=True, slots=True)
class Task:
    """One invariant on one version tuple, with its own seed: with its run's
    context, everything its run depends on.

    Three fields change how it searches, not what it covers (its label, seed and
    reproduce command ignore them): ``shrink=False`` stops at the first failing
    example, as found (a quick first pass, whose failures a caller shrinks later,
    one per cause); ``replay`` is a shared counterexample tried on the task's own
    versions before anything is generated: if it fails there, that is the task's
    failure; if it holds, the task searches (and shrinks) as usual; ``focus`` is a
    device type: only a failure on it counts, so that shrinking one failure keeps
    its cause (Hypothesis otherwise slips to whatever fails most simply, which
    may be another type failing for another reason).
    """

    invariant: str
    versions: tuple[str, ...]
    drivers: tuple[str, ...] | None
    seed: int
    context: Context
    shrink: bool = True
    focus: str | None = None
    # A case holds a mapping, which does not hash; a task still does, without it.
    replay: Shared | None = field(default=None, hash=False)

    @property
    def device(self) -> str:
        """The results table's device column: the one driver, the group, or ``*``."""
        return ",".join(self.drivers) if self.drivers else "*"

    @property
    def label(self) -> str:
        """``upgrade-round-trip[2.4->10.0]``, with ``-DRIVER`` for a one-driver task: the
        ends of the version tuple only, so that a name does not change with the seed."""
        span = "->".join(dict.fromkeys((self.versions[0], self.versions[-1])))
        one = f"-{self.drivers[0]}" if self.drivers and len(self.drivers) == 1 else ""
        return f"{self.invariant}[{span}{one}]"

    @property
    def last_may_refuse(self) -> bool:
        return self.context.last_may_refuse and len(self.versions) > 1

    @property
    def excuse_inherited(self) -> bool:
        return self.context.excuse_inherited and len(self.versions) > 1


def task_seed(base: int, name: str, versions: Sequence[Version | str], device: str | None) -> int:
    """The seed of one task, from the run's base seed and what the task covers."""
    text = f"{base}:{name}:{','.join(map(str, versions))}:{device}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def middle_version(
    base: int, name: str, first: Version, last: Version, versions: Sequence[Version]
) -> Version:
    """The middle version of a three-version task on (first, last): drawn from
    ``versions`` between them by the seed alone (the pair, planned again alone,
    draws it again)."""
    between = [v for v in versions if first <= v <= last]
    return random.Random(f"{base}:{name}:{first}:{last}").choice(between)


def plan(request: Request) -> list[Task]:
    """Every task ``request`` covers, in a stable order (invariant, version tuple,
    device). Device types are kept only where they exist on every version its
    configs must run on (all of them, or all but the newest when the newest may
    refuse): no guest of a version without the type can have one, and a chain whose
    middle version lacks it (a candidate that removes the type, drawn as the
    middle) cannot carry one. A task left with no device type is left out, and so
    is a version tuple its invariant does not apply to (``machine-type-upgrade``
    where the newer release deleted the older machine type)."""
    from compatlab.engine.run import catalogue_of
    from compatlab.invariants.registry import get
    from compatlab.versions import using_versions

    cat = catalogue_of(request.context.catalogue)
    ordered = sorted(set(request.versions))
    targets = sorted(set(request.targets)) if request.targets is not None else None
    groups: list[tuple[str, ...] | None] = (
        [request.drivers]
        if request.drivers is not None
        else [None if d is None else (d,) for d in request.devices]
    )
    out: list[Task] = []
    with using_versions(cat.versions):
        for name in request.invariants:
            inv = get(name)
            tuples: list[tuple[Version, ...]]
            if inv.arity == 1:
                tuples = [(v,) for v in (targets if targets is not None else ordered)]
            else:
                if targets is not None:
                    pairs = [(u, t) for t in targets for u in reversed(ordered) if u < t]
                else:
                    pairs = [(u, w) for i, u in enumerate(ordered) for w in ordered[i + 1 :]]
                if inv.arity == 2:
                    tuples = list(pairs)
                else:
                    tuples = [
                        (u, middle_version(request.context.seed, name, u, w, cat.versions), w)
                        for u, w in pairs
                    ]
            if inv.applies is not None:
                tuples = [t for t in tuples if inv.applies(cat, t)]
            for versions in tuples:
                # As the invariants' strategies draw configs (Scope.last_may_refuse).
                valid_on = (
                    versions[:-1]
                    if request.context.last_may_refuse and len(versions) > 1
                    else versions
                )
                for group in groups:
                    drivers = group
                    if group is not None:
                        drivers = tuple(
                            d for d in group if all(cat.types[d].exists_in(v) for v in valid_on)
                        )
                        if not drivers:
                            continue
                    device = drivers[0] if drivers and request.drivers is None else None
                    out.append(
                        Task(
                            invariant=name,
                            versions=tuple(map(str, versions)),
                            drivers=drivers,
                            seed=task_seed(request.context.seed, name, versions, device),
                            context=request.context,
                        )
                    )
    return out


def reproduce_command(task: Task) -> str:
    """The one command that replays exactly ``task``: planned again alone it gives
    the same version tuple, device types, seed and profile (or example budget)."""
    ctx = task.context
    ends = [task.versions[0], task.versions[-1]] if len(task.versions) > 1 else [task.versions[0]]
    drivers = f" --drivers {','.join(task.drivers)}" if task.drivers else ""
    if ctx.oracles is not None:
        o = ctx.oracles
        machines = f" --machines {o.spec}" if o.spec is not None else ""
        return (
            f"compatlab gate --baseline-binary {shlex.quote(o.baseline)} "
            f"--candidate-binary {shlex.quote(o.candidate)}{machines}{drivers} "
            f"--examples {ctx.budget} --seed {ctx.seed}"
        )
    if ctx.origin == "gate":
        ref = ctx.catalogue
        what = (
            f"--release {ref.release}"
            if ref.release is not None
            else f"--candidate {shlex.quote(str(ref.source))}"
        )
        span = f" --baseline {ends[0]}" if len(ends) > 1 else ""
        return (
            f"compatlab gate {what} --invariant {task.invariant}{span}{drivers} "
            f"--profile {ctx.profile} --seed {ctx.seed}"
        )
    devices = "".join(f" --device {d}" for d in task.drivers or ())
    return (
        f"compatlab check --invariant {task.invariant} --versions {','.join(ends)}{devices} "
        f"--seed {ctx.seed} --profile {ctx.profile}"
    )
