"""The binary gate: do two real QEMU binaries show guests the same hardware?

Compares two binaries on the machine types both offer, device type by device
type, through the run engine: one ``binaries-agree`` task per device type both
releases have (:mod:`compatlab.invariants.binary`), which tries the type alone
first and then ``examples`` generated configs of it on random machine types. Any
guest-visible difference — a refusal by the candidate only, a config-space byte,
or what a guest reads back after writing all-ones and zeros (masks, BAR sizes) —
fails the gate, with the config shrunk to a minimal one. Stratifying by type
keeps the gate from missing a device by chance as the catalogue grows.

A task that could not get its evidence (an emulator that crashed, hung or spoke
garbage) is an error, never a pass: the verdict is then ``error``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compatlab.engine import Context, Oracles, Outcome, Request, Status, Task, execute, plan
from compatlab.errors import ConfigError
from compatlab.invariants.binary import NAME
from compatlab.invariants.registry import Failure
from compatlab.oracles.compare import compare_records
from compatlab.oracles.qemu import QemuBinary, binary_ref
from compatlab.versions import Version

__all__ = ["GateVerdict", "binary_gate", "binary_tasks", "compare_records", "save_verdict"]


@dataclass(frozen=True, slots=True)
class GateVerdict:
    baseline: str
    candidate: str
    machines: tuple[str, ...]
    examples: int
    differences: tuple[dict[str, Any], ...] = ()
    per_type: int = 0
    newly_accepted: tuple[dict[str, Any], ...] = ()
    #: Device types whose task got no verdict (an oracle error), with why.
    errors: tuple[dict[str, Any], ...] = ()

    @property
    def difference(self) -> dict[str, Any] | None:
        return self.differences[0] if self.differences else None

    @property
    def verdict(self) -> str:
        return "error" if self.errors else "fail" if self.differences else "pass"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "candidate": self.candidate,
            "machines": list(self.machines),
            "examples": self.examples,
            "verdict": self.verdict,
            "difference": self.difference,
            "differences": list(self.differences),
            "per_type": self.per_type,
            "newly_accepted": list(self.newly_accepted),
            "errors": list(self.errors),
        }


def _as_dict(failure: Failure) -> dict[str, Any]:
    """A difference or a note as the verdict's JSON has it."""
    out: dict[str, Any] = {
        "driver": failure.driver,
        "machine": failure.machine,
        "config": list(failure.config),
        "what": failure.detail,
    }
    if failure.vcpus is not None:
        out["vcpus"] = failure.vcpus
    if failure.device is not None:
        out["device"] = failure.device
    if failure.offset is not None:
        out["offset"] = failure.offset
    return out


def binary_tasks(
    baseline: QemuBinary,
    candidate: QemuBinary,
    machines: Sequence[Version],
    *,
    examples: int = 2,
    drivers: Sequence[str] | None = None,
    seed: int = 0,
    machines_spec: str | None = None,
) -> list[Task]:
    """The engine's tasks: one per device type the baseline has (or ``drivers``).
    ``machines_spec`` is the ``--machines`` the user gave, for reproduce commands.

    Configs are drawn from what the baseline accepts (the catalogue as of its
    release, or of the newest release before it that the catalogue knows), never
    from the candidate: a guest the baseline ran must run on the candidate, so a
    device type or property the candidate dropped is a difference to find, and the
    candidate may be a release the catalogue has never seen."""
    from compatlab.catalogue import active_catalogue

    cat = active_catalogue()
    drawn = _drawn_from(cat.versions, baseline)
    # The binaries decide which devices and properties exist; a machine type only
    # decides defaults (QEMU accepts a property on any machine type).
    chosen = tuple(drivers) if drivers else tuple(
        d for d in cat.concrete if cat.types[d].exists_in(drawn)
    )  # fmt: skip
    context = Context(
        profile="gate",
        seed=seed,
        budget=examples,
        oracles=Oracles(
            binary_ref(baseline),
            binary_ref(candidate),
            tuple(map(str, machines)),
            machines_spec,
        ),
        run_id="gate",
        origin="gate",
        last_may_refuse=True,
    )
    versions = (drawn, max(candidate.version, _next(drawn)))
    return plan(Request(invariants=(NAME,), versions=versions, context=context, devices=chosen))


def _drawn_from(versions: Sequence[Version], baseline: QemuBinary) -> Version:
    """The catalogue version whose configs ``baseline`` accepts: its own release,
    else the newest one before it."""
    known = [v for v in versions if v <= baseline.version]
    if not known:
        raise ConfigError(
            f"{baseline.describe()} is older than every version the catalogue knows "
            f"(from {versions[0]}): no config to draw for it"
        )
    return known[-1]


def _next(version: Version) -> Version:
    """A version after ``version``, so that a task's pair is ordered even when both
    binaries are of one release."""
    return Version(version.major, version.minor + 1)


def binary_gate(
    baseline: QemuBinary,
    candidate: QemuBinary,
    tasks: Sequence[Task],
    *,
    workers: int = 1,
    progress: Callable[[Outcome, int, int], None] | None = None,
) -> GateVerdict:
    """Run the gate's ``tasks`` (see :func:`binary_tasks`); the verdict holds each
    type's shrunk difference, the configs only the baseline refuses (noted once per
    type: no guest to keep, the candidate may accept more), and the types whose
    evidence could not be obtained.

    Each binary is started once, empty, on the newest machine type first: a binary
    that is broken from the start is an :class:`~compatlab.errors.OracleError` at
    once, not one error per device type."""
    from compatlab.oracles import qemu

    if not tasks:
        raise ConfigError("the binary gate has no device type to run (both binaries have none)")
    oracles = tasks[0].context.oracles
    assert oracles is not None, "binary gate tasks carry their oracles"
    machines = tuple(oracles.machines)
    for binary in (baseline, candidate):
        qemu.check_alive(binary, Version.parse(machines[-1]))
    ran = 0
    differences: list[dict[str, Any]] = []
    newly_accepted: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for index, outcome in enumerate(execute(tasks, workers=workers), start=1):
        ran += outcome.examples
        driver = outcome.task.device
        if outcome.status is Status.FAIL and outcome.failure is not None:
            differences.append({**_as_dict(outcome.failure), "reproduce": outcome.reproduce})
        elif outcome.status is not Status.PASS:
            errors.append({"driver": driver, "status": str(outcome.status), "what": outcome.note})
        if outcome.notes:
            newly_accepted.append({**_as_dict(outcome.notes[0]), "refused_by": "baseline"})
        if progress is not None:
            progress(outcome, index, len(tasks))
    return GateVerdict(
        baseline.release,
        candidate.release,
        machines,
        ran,
        tuple(differences),
        tasks[0].context.budget or 0,
        tuple(newly_accepted),
        tuple(errors),
    )


def save_verdict(verdict: GateVerdict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(verdict.to_json(), indent=2, sort_keys=True) + "\n")
