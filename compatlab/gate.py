"""Release gating: is it safe to ship emulator release N?

Two gates, one question. ``candidate_gate`` takes release N as data (a candidate
file on the catalogue as it stood, docs/candidate-format.md) and runs the
cross-version invariants from every older version to it, plus the one-version
ones on N itself; each failure comes with the property behind it and the
history entry that would fix it (:func:`explain`). ``binary_gate`` compares two
real QEMU binaries on the machine types both offer, device type by device type:
any guest-visible difference — a refusal on one side only, a config-space byte,
or what a guest reads back after writing all-ones and zeros (masks, BAR sizes) —
fails the gate, with the config shrunk to a minimal one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compatlab.catalogue.candidate import CandidateCatalogue
from compatlab.config import Config
from compatlab.oracles.capture import CaptureRecord, capture_config
from compatlab.oracles.qemu import QemuBinary
from compatlab.versions import Version


class Difference(AssertionError):
    """Two binaries disagree on what a guest sees."""

    def __init__(self, detail: dict[str, Any]) -> None:
        self.detail = detail
        super().__init__(detail["what"])


@dataclass(frozen=True, slots=True)
class GateVerdict:
    baseline: str
    candidate: str
    machines: tuple[str, ...]
    examples: int
    difference: dict[str, Any] | None
    differences: tuple[dict[str, Any], ...] = ()
    per_type: int = 0
    newly_accepted: tuple[dict[str, Any], ...] = ()

    @property
    def passed(self) -> bool:
        return self.difference is None

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "candidate": self.candidate,
            "machines": list(self.machines),
            "examples": self.examples,
            "verdict": "pass" if self.passed else "fail",
            "difference": self.difference,
            "differences": list(self.differences),
            "per_type": self.per_type,
            "newly_accepted": list(self.newly_accepted),
        }


def _first_diff(a: str, b: str) -> int:
    return next(i for i in range(0, len(a), 2) if a[i : i + 2] != b[i : i + 2]) // 2


def compare_records(base: CaptureRecord, cand: CaptureRecord) -> dict[str, Any] | None:
    """The first guest-visible difference between two captures of one config, or None."""
    common = {"machine": base.machine, "config": list(base.devices)}
    if (base.error is None) != (cand.error is None):
        refused, by = (base, "baseline") if base.error else (cand, "candidate")
        return {**common, "what": f"only the {by} refuses: {refused.error}", "refused_by": by}
    if base.config_space is None or cand.config_space is None:
        return None
    for n, (a, b) in enumerate(zip(base.config_space, cand.config_space, strict=True)):
        if a != b:
            off = _first_diff(a, b)
            return {
                **common,
                "device": base.devices[n],
                "offset": off,
                "what": f"config byte {off:#04x}: {a[2 * off : 2 * off + 2]} vs {b[2 * off : 2 * off + 2]}",
            }
    for n, (pa, pb) in enumerate(zip(base.write_probe or (), cand.write_probe or (), strict=True)):
        for label, a, b in (("all-ones", pa[0], pb[0]), ("zeros", pa[1], pb[1])):
            if a != b:
                off = _first_diff(a, b)
                return {
                    **common,
                    "device": base.devices[n],
                    "offset": off,
                    "what": f"after the guest writes {label}, byte {off:#04x} reads "
                    f"{a[2 * off : 2 * off + 2]} vs {b[2 * off : 2 * off + 2]}",
                }
    return None


def binary_gate(
    baseline: QemuBinary,
    candidate: QemuBinary,
    machines: list[Version],
    *,
    max_examples: int = 2,
    derandomize: bool = True,
    drivers: Sequence[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> GateVerdict:
    """Run the gate device type by device type; the verdict holds each type's shrunk
    difference, if any.

    Every device type both releases have is tried first alone, with only the
    properties it cannot do without, on the oldest common machine type (where the
    most compat entries apply), then on ``max_examples`` generated configs of that
    type with random properties and machine types. Stratifying by type keeps the
    gate from missing a device by chance as the catalogue grows.
    """
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    from compatlab.catalogue import active_catalogue
    from compatlab.config import DeviceSpec
    from strategies.configs import required_pairs
    from strategies.suite import valid_configs

    cat = active_catalogue()
    # The binaries decide which devices and properties exist; a machine type only
    # decides defaults (QEMU accepts a property on any machine type).
    versions = (baseline.version, candidate.version)
    chosen = drivers or [
        d for d in cat.concrete if all(cat.types[d].exists_in(v) for v in versions)
    ]
    examples = 0
    differences: list[dict[str, Any]] = []
    # A config only the baseline refuses has no guest to keep: the candidate may
    # accept more. Noted (once per type), not failed.
    newly_accepted: dict[str, dict[str, Any]] = {}
    for index, driver in enumerate(chosen, start=1):
        alone = Config(
            (DeviceSpec(driver, "dev0", None, tuple(required_pairs(cat, driver, versions[0], 0))),)
        )

        @settings(
            max_examples=max_examples + 1,
            derandomize=derandomize,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            machine=st.sampled_from(machines),
            config=valid_configs(versions, drivers=(driver,), max_devices=2),
        )
        @example(machine=machines[0], config=alone)
        def search(machine: Version, config: Config) -> None:
            nonlocal examples
            examples += 1
            a = capture_config(baseline, machine, config, probe=True)
            b = capture_config(candidate, machine, config, probe=True)
            diff = compare_records(a, b)
            if diff is not None and diff.get("refused_by") == "baseline":
                newly_accepted.setdefault(driver, {"driver": driver, **diff})  # noqa: B023  (runs in this iteration)
            elif diff is not None:
                raise Difference(diff)

        try:
            search()
        except Difference as exc:
            differences.append({"driver": driver, **exc.detail})
        if progress is not None:
            progress(driver, index, len(chosen))
    return GateVerdict(
        baseline.release,
        candidate.release,
        tuple(map(str, machines)),
        examples,
        differences[0] if differences else None,
        tuple(differences),
        max_examples,
        tuple(newly_accepted.values()),
    )


def save_verdict(verdict: GateVerdict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(verdict.to_json(), indent=2, sort_keys=True) + "\n")


# -- candidate releases as data -------------------------------------------------------------

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

    invariant: str
    versions: tuple[str, ...]
    driver: str | None
    status: str  # "fail"
    failure: dict[str, Any]
    explanation: tuple[str, ...] = ()
    registers: tuple[dict[str, Any], ...] = ()
    note: str | None = None
    seconds: float = 0.0  # since the gate started
    reproduce: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "invariant": self.invariant,
            "versions": list(self.versions),
            "driver": self.driver,
            "status": self.status,
            "failure": self.failure,
            "explanation": list(self.explanation),
            "registers": list(self.registers),
            "note": self.note,
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
        return not self.problems and not any(f.status == "fail" for f in self.failures)

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


def candidate_gate(
    cc: CandidateCatalogue,
    *,
    baselines: Sequence[Version] | None = None,
    profile: str = "gate",
    drivers: Sequence[str] | None = None,
    seed: int = 0,
    fail_fast: bool = False,
    workers: int = 1,
    progress: Callable[[int, int, int], None] | None = None,
) -> CandidateVerdict:
    """Run :data:`GATE_INVARIANTS` from every baseline version to ``cc``'s candidate,
    and :data:`CANDIDATE_INVARIANTS` on the candidate itself.

    Baselines default to every version before the candidate; ``drivers`` to the
    device types the candidate touches (the others behave exactly as on the base's
    newest version, since builders never test versions). Tasks run newest baseline
    first and machine-type view first, so a missing entry shows early; ``fail_fast``
    stops at the first failure; ``workers`` > 1 runs tasks in that many processes
    (same verdict: every task has its own seed).

    Breaks already in the released history (QEMU's own, corpora/findings.toml) are
    not the candidate's to fix: a violation is excused when the base's newest release
    in the candidate's place realizes exactly the same devices (:func:`_inherited`).
    """
    import concurrent.futures
    import random
    import time

    from compatlab.invariants.registry import get

    start = time.perf_counter()
    cat = cc.catalogue
    n = cc.version
    olds = sorted(baselines or [v for v in cat.versions if v < n], reverse=True)
    chosen = tuple(drivers) if drivers is not None else cc.touched()
    problems = tuple(p.to_json() for p in cc.problems)
    failures: list[GateFailure] = []
    runs = examples = 0
    complete = True
    tasks: list[_GateTask] = []
    if not (problems and fail_fast) and chosen:
        rng = random.Random(f"{seed}:gate:{n}")
        for name in GATE_INVARIANTS:
            for u in olds:
                present = tuple(d for d in chosen if cat.types[d].exists_in(u))
                versions: tuple[Version, ...] = (u, n)
                if get(name).arity == 3:
                    versions = (u, rng.choice([v for v in cat.versions if u <= v <= n]), n)
                if present:  # else no guest of that version can have these devices
                    tasks.append(_GateTask(name, versions, present, profile, seed))
        own = tuple(d for d in chosen if cat.types[d].exists_in(n))
        for name in CANDIDATE_INVARIANTS if own else ():
            tasks.append(_GateTask(name, (n,), own, profile, seed))
    complete = not (problems and fail_fast)

    def outcomes() -> Any:
        if workers <= 1:
            _WORKER["cc"] = cc
            yield from map(_run_gate_task, tasks)
            return
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, initializer=_init_worker, initargs=(cc,)
        ) as pool:
            try:
                yield from pool.map(_run_gate_task, tasks)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    for i, (task_examples, failure) in enumerate(outcomes(), start=1):
        runs += 1
        examples += task_examples
        if failure is not None:
            failures.append(
                dataclasses.replace(failure, seconds=round(time.perf_counter() - start, 3))
            )
        if progress is not None:
            progress(i, len(tasks), len(failures))
        if fail_fast and failures:
            complete = i == len(tasks)
            break
    return CandidateVerdict(
        candidate=str(n),
        base=str(cc.base.versions[-1]),
        baselines=tuple(str(v) for v in sorted(olds)),
        drivers=chosen,
        profile=profile,
        problems=problems,
        failures=tuple(failures),
        runs=runs,
        examples=examples,
        seconds=round(time.perf_counter() - start, 3),
        complete=complete,
    )


@dataclass(frozen=True, slots=True)
class _GateTask:
    invariant: str
    versions: tuple[Version, ...]
    drivers: tuple[str, ...]
    profile: str
    seed: int


_WORKER: dict[str, CandidateCatalogue] = {}


def _init_worker(cc: CandidateCatalogue) -> None:
    _WORKER["cc"] = cc


def _inherited(inv: Any, case: Any, candidate: Version, released: Version) -> bool:
    """Whether a violation belongs to the released history rather than the candidate.

    The check runs again with the candidate replaced by the base's newest release;
    the violation is inherited when that fails too and every device both runs
    realized, call for call, came out the same (bytes and masks, or the same
    refusal): the candidate changed nothing the check looked at (nvme's 9.1 change,
    say, seen again from 9.0 to 10.1).
    """
    from compatlab.errors import CompatlabError
    from compatlab.invariants.registry import System, Violation
    from compatlab.realize import realize

    def observe(run_case: Any) -> list[Any] | None:
        seen: list[Any] = []

        def recording(config: Config, version: Version | str, **kw: Any) -> Any:
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
    return on_candidate is not None and on_candidate == on_released


def _run_gate_task(task: _GateTask) -> tuple[int, GateFailure | None]:
    """One invariant from one old version to the candidate: its examples, and its
    failure with the explanation (in the worker, next to the catalogue)."""
    from compatlab.catalogue import using_catalogue
    from compatlab.invariants.registry import Case, Scope, get
    from compatlab.invariants.runner import Task, run_task, task_seed

    cc = _WORKER["cc"]
    newest_released = cc.base.versions[-1]
    inv = get(task.invariant)

    def inherited(case: Case) -> bool:
        return _inherited(inv, case, cc.version, newest_released)

    texts = tuple(str(v) for v in task.versions)
    seed = task_seed(task.seed, task.invariant, task.versions, None)
    with using_catalogue(cc.catalogue):
        record = run_task(
            Task(task.invariant, texts, None, seed, task.profile, "gate"),
            (),
            scope=Scope(drivers=task.drivers, last_may_refuse=len(task.versions) > 1),
            keep_failures=False,
            excuse=inherited,
        )
    if record.status == "error":
        raise RuntimeError(f"{task.invariant} {'..'.join(texts)}: {record.note}")
    if record.status != "fail" or not record.failure:
        return record.examples, None
    data = json.loads(record.failure)
    lines: list[str] = []
    regs: list[dict[str, Any]] = []
    if len(task.versions) > 1:
        lines, regs = explain(cc, task.invariant, task.versions, data)
    return record.examples, GateFailure(
        task.invariant,
        texts,
        data.get("driver"),
        record.status,
        data,
        tuple(lines),
        tuple(regs),
        record.note,
        0.0,
        _reproduce(cc, task.versions[0], task.drivers, task.profile, task.seed),
    )


def _reproduce(
    cc: CandidateCatalogue, old: Version, drivers: Sequence[str], profile: str, seed: int
) -> str:
    source = cc.candidate.source
    what = f"--release {cc.version}" if source.startswith("<release") else f"--candidate {source}"
    span = f" --baseline {old}" if old < cc.version else ""
    return (
        f"compatlab gate {what}{span} --drivers {','.join(drivers)} "
        f"--profile {profile} --seed {seed}"
    )


def _builder_inputs(
    cat: Any, config: Config, version: Version, device: str | None, **kw: Any
) -> tuple[Any, dict[str, Any]] | None:
    """The failing device as realized, and every value its builder saw."""
    from compatlab.realize import realize_resolved
    from compatlab.resolve import resolve

    resolved = resolve(config, version, catalogue=cat, **kw)
    realized = realize_resolved(resolved, catalogue=cat)
    for dev, rd in zip(resolved.devices, realized.devices, strict=True):
        if device is None or dev.identity == device:
            return rd, {**cat.all_values_at(dev.driver, version), **dev.values()}
    return None


def _rebuild(cat: Any, driver: str, realized: Any, values: dict[str, Any]) -> Any:
    from compatlab.catalogue.builders import BuildContext, get_builder
    from compatlab.realize import _roms

    dev = realized.device
    ctx = BuildContext(
        driver=driver,
        device_id=dev.id,
        props=values,
        slot=dev.addr.slot,
        function=dev.addr.function,
        roms=_roms(),
    )
    return get_builder(cat.types[driver].builder or driver)(ctx)


def _same(a: Any, b: Any) -> bool:
    return all(getattr(a, k) == getattr(b, k) for k in ("config", "wmask", "w1cmask", "cmask"))


def explain(
    cc: CandidateCatalogue, invariant: str, versions: tuple[Version, ...], failure: dict[str, Any]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Which property of the candidate makes the failing device differ, and the entry
    that would fix it; and the register-level diff of the device.

    Every property whose value the builder sees differently on the source and on the
    candidate is tried alone: set back to the source's value, does the device come
    out as the source's? The history entry that fixes the candidate is then the
    value the source had, for every version from the source up to the newest one
    where the candidate's machine-type view still disagrees.
    """
    from compatlab.catalogue import using_catalogue
    from compatlab.config import parse_device_string
    from compatlab.errors import CompatlabError
    from compatlab.report.registers import field_name
    from compatlab.resolve import dump_hints, hints_of, resolve

    cat = cc.catalogue
    old, new = versions[0], versions[-1]
    config = Config(tuple(parse_device_string(s) for s in failure.get("config", ())))
    device, driver = failure.get("device"), failure.get("driver")
    lines: list[str] = []
    regs: list[dict[str, Any]] = []
    with using_catalogue(cat):
        try:
            src = _builder_inputs(cat, config, old, device)
            if invariant == "machine-type-upgrade":
                dst = _builder_inputs(cat, config, new, device, defaults_at=old)
            elif invariant == "upgrade-chain":
                middle = resolve(config, versions[1], hints=dump_hints(config, old), catalogue=cat)
                dst = _builder_inputs(cat, config, new, device, hints=hints_of(middle))
            else:
                dst = _builder_inputs(cat, config, new, device, hints=dump_hints(config, old))
        except CompatlabError as exc:
            return [f"{new} refuses the config: {exc}"], []
        if src is None or dst is None or driver is None:
            return [], []
        (src_dev, src_vals), (dst_dev, dst_vals) = src, dst
        for kind in ("config", "wmask", "w1cmask", "cmask"):
            a, b = getattr(src_dev.space, kind), getattr(dst_dev.space, kind)
            for off in (i for i in range(256) if a[i] != b[i]):
                regs.append(
                    {
                        "image": kind,
                        "offset": off,
                        "field": field_name(off, dst_dev.space),
                        "expected": f"{a[off]:02x}",
                        "actual": f"{b[off]:02x}",
                    }
                )
        differing = sorted(
            p for p in set(src_vals) | set(dst_vals) if src_vals.get(p) != dst_vals.get(p)
        )

        def fixes(values: dict[str, Any]) -> bool:
            try:
                return _same(_rebuild(cat, driver, dst_dev, values), src_dev.space)
            except (CompatlabError, TypeError, ValueError, KeyError):
                return False

        culprits = [p for p in differing if fixes({**dst_vals, p: src_vals.get(p)})]
        if not culprits and differing and fixes({**dst_vals, **src_vals}):
            culprits = differing
        for p in culprits:
            lines.append(_entry_needed(cc, driver, p, old, src_vals.get(p), dst_vals.get(p)))
        if not culprits:
            lines.append(
                f"no property of {driver} explains the difference: the candidate changed "
                "behaviour that only a builder change could cause"
            )
    return lines, regs[:32]


def _entry_needed(
    cc: CandidateCatalogue, driver: str, prop: str, old: Version, was: Any, now: Any
) -> str:
    cat, base = cc.catalogue, cc.base
    n = cc.version
    fmt = _formatter(cat, driver, prop, n)
    released = [v for v in base.versions if v >= old]
    upto = old
    for v in released:
        before = base.all_values_at(driver, v).get(prop, was)
        if before == was and cat.default(driver, prop, v, as_of=n) != was:
            upto = v
        else:
            break
    props_at_old = base.properties(driver, old)
    internal = prop not in cat.properties(driver, n)
    if internal:
        return (
            f"{driver}: behaviour {prop} changed {fmt(was)} → {fmt(now)} in {n} without a "
            f"compat property; make it a property with a history entry {prop}={fmt(was)} "
            f"for versions ≤ {upto}"
        )
    if prop in props_at_old:
        return (
            f"{driver}.{prop} changed {fmt(was)} → {fmt(now)} in {n}; versions ≤ {upto} "
            f"need a history entry {prop}={fmt(was)}"
        )
    return (
        f"{driver}.{prop} is new in {n} (default {fmt(now)}) and changes what guests of "
        f"versions ≤ {upto} see; they need a history entry {prop}={fmt(was)}"
    )


def _formatter(cat: Any, driver: str, prop: str, version: Version) -> Any:
    props = cat.properties(driver, version)
    if prop in props:
        ptype = props[prop].type
        return lambda v: "(unset)" if v is None else ptype.format(v)
    return lambda v: "on" if v is True else "off" if v is False else str(v)
