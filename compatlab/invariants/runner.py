"""Run invariants across the version matrix.

A *task* is one invariant on one version tuple (and optionally one device
type). The matrix holds every version for one-version invariants, every ordered
pair U < V for two-version ones, and every pair U < W for three-version ones
(V chosen between them from the task's seed). Each task runs under Hypothesis
with the chosen profile and gives one :class:`ResultRecord`.

Failures are promoted to ``corpora/failures/`` as readable JSON (the minimal
config, the versions and whatever else the case held), and every run replays
that corpus first, reporting each entry as still failing or fixed — Hypothesis'
own example database is kept too, but its format changes across releases.

Known findings (``corpora/findings.toml``) are real compat bugs in QEMU that the
model reproduces on purpose; a failure they explain is reported as ``known``.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compatlab import paths
from compatlab.config import Config, parse_device_string
from compatlab.hints import Hints, decode, encode
from compatlab.invariants.registry import Case, Failure, Scope, Violation, get, registered
from compatlab.results import ResultRecord
from compatlab.versions import Version


@dataclass(frozen=True, slots=True)
class Task:
    invariant: str
    versions: tuple[str, ...]
    device: str | None
    seed: int
    profile: str
    run_id: str


def matrix(
    invariants: Sequence[str], versions: Sequence[Version], devices: Sequence[str | None], seed: int
) -> list[Tuple]:
    """Every (invariant, version tuple, device) the run covers."""
    out: list[Tuple] = []
    ordered = sorted(versions)
    for name in invariants:
        inv = get(name)
        tuples: list[tuple[Version, ...]]
        if inv.arity == 1:
            tuples = [(v,) for v in ordered]
        else:
            pairs = [(u, w) for i, u in enumerate(ordered) for w in ordered[i + 1 :]]
            if inv.arity == 2:
                tuples = list(pairs)
            else:
                rng = random.Random(f"{seed}:{name}")
                tuples = [(u, rng.choice([v for v in ordered if u <= v <= w]), w) for u, w in pairs]
        out.extend((name, t, d) for t in tuples for d in devices)
    return out


Tuple = tuple[str, tuple[Version, ...], str | None]


def task_seed(base: int, name: str, versions: Sequence[Version], device: str | None) -> int:
    text = f"{base}:{name}:{','.join(map(str, versions))}:{device}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def reproduce_command(name: str, versions: Sequence[str], device: str | None, seed: int) -> str:
    span = ",".join(dict.fromkeys(versions))
    dev = f" --device {device}" if device else ""
    return f"compatlab check --invariant {name} --versions {span}{dev} --seed {seed} --profile gate"


# -- known findings ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """A guest-visible change QEMU made in ``changed_in`` without compat, for upgrades
    that land before ``fixed_in`` (if QEMU fixed it later)."""

    invariant: tuple[str, ...]
    driver: str
    changed_in: Version
    reason: str
    fixed_in: Version | None = None

    def explains(self, failure: Failure) -> bool:
        if failure.invariant not in self.invariant or not self._covers(failure.driver):
            return False
        versions = [Version.parse(v) for v in failure.versions]
        return any(
            a < self.changed_in <= b and (self.fixed_in is None or b < self.fixed_in)
            for i, a in enumerate(versions)
            for b in versions[i + 1 :]
        )

    def _covers(self, driver: str | None) -> bool:
        """The finding's driver, or a subtype of it (a finding on pci-device covers all)."""
        if driver is None:
            return False
        if driver == self.driver:
            return True
        from compatlab.catalogue import active_catalogue

        cat = active_catalogue()
        return driver in cat.types and self.driver in cat.types and cat.is_a(driver, self.driver)


def load_findings(path: Path | None = None) -> list[Finding]:
    path = path or paths.findings_file()
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [
        Finding(
            tuple(f["invariants"]),
            f["driver"],
            Version.parse(f["changed_in"]),
            f["reason"],
            Version.parse(f["fixed_in"]) if "fixed_in" in f else None,
        )
        for f in data.get("finding", [])
    ]


# -- one task -------------------------------------------------------------------------


def run_task(
    task: Task,
    findings: Sequence[Finding] = (),
    *,
    scope: Scope | None = None,
    keep_failures: bool = True,
    excuse: Callable[[Case], bool] | None = None,
    failures: Path | None = None,
) -> ResultRecord:
    """Run one invariant on one version tuple under the task's profile (restricted to
    ``scope``'s device types when given, else to the task's device). A new failure is
    promoted to the failure corpus (``failures``, default :func:`compatlab.paths.failures_dir`)
    unless ``keep_failures`` is false. A violation on a
    case that ``excuse`` accepts does not count (the gate excuses what was already
    broken before the candidate)."""
    from hypothesis import Phase, given, seed, settings

    from compatlab import profiles

    profiles.load(task.profile)
    inv = get(task.invariant)
    versions = tuple(Version.parse(v) for v in task.versions)
    scope = scope or Scope(drivers=(task.device,) if task.device else None)
    examples = 0
    found: list[Case] = []

    strategy = inv.strategy(versions, scope)

    def body(case: Case) -> None:
        nonlocal examples
        examples += 1
        try:
            inv.run(case)
        except Violation:
            if excuse is not None and excuse(case):
                return
            found[:] = [case]
            raise

    def search(*, shrink: bool) -> None:
        """One Hypothesis search from the task's seed (a fresh test each time, since
        settings attach to the test function)."""

        def test(case: Case) -> None:
            body(case)

        current = settings.default
        assert current is not None
        phases = [p for p in current.phases if shrink or p != Phase.shrink]
        seed(task.seed)(
            settings(current, phases=phases, report_multiple_bugs=False)(given(strategy)(test))
        )()

    start = time.perf_counter()
    status, failure_json, note = "pass", None, None
    if inv.needs_qemu:
        from compatlab.oracles.qemu import available_binaries

        if not any(versions[0] in b.machines for b in available_binaries()):
            status, note = "skip", "no QEMU binary offers this machine type"
    if status != "skip":
        # First search without shrinking: a failure that a known finding explains
        # needs no minimal example, and shrinking is most of a failing run's cost.
        # Anything else is searched again from the same seed, and shrunk.
        try:
            try:
                search(shrink=False)
            except Violation as first:
                known = next((f for f in findings if f.explains(first.failure)), None)
                if known is not None:
                    status, note = "known", known.reason
                    failure_json = json.dumps(first.failure.to_json(), sort_keys=True)
                else:
                    search(shrink=True)
        except Violation as violation:
            failure = violation.failure
            failure_json = json.dumps(failure.to_json(), sort_keys=True)
            known = next((f for f in findings if f.explains(failure)), None)
            status, note = ("known", known.reason) if known else ("fail", None)
            if found and keep_failures:
                promote(inv.name, found[-1], failure, failures)
        except Exception as exc:  # a defect in a check or the model: keep going, say so
            status, note = "error", f"{type(exc).__name__}: {exc}"
    return ResultRecord(
        run_id=task.run_id,
        invariant=task.invariant,
        device=task.device or "*",
        versions="..".join(task.versions),
        version_from=task.versions[0],
        version_to=task.versions[-1],
        status=status,
        examples=examples,
        failures=int(status in ("fail", "known")),
        seconds=round(time.perf_counter() - start, 4),
        seed=task.seed,
        profile=task.profile,
        failure=failure_json,
        reproduce=reproduce_command(task.invariant, task.versions, task.device, task.seed),
        note=note,
    )


# -- the failure corpus -------------------------------------------------------------------


def _extra_to_json(extra: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in extra.items():
        if isinstance(value, Hints):
            out[key] = {"hints": encode(value).hex()}
        elif isinstance(value, list | tuple):
            out[key] = [list(v) if isinstance(v, tuple) else v for v in value]
        else:
            out[key] = value
    return out


def _extra_from_json(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and "hints" in value:
            out[key] = decode(bytes.fromhex(value["hints"]))
        elif key == "writes":
            out[key] = [tuple(v) for v in value]
        else:
            out[key] = value
    return out


def promote(name: str, case: Case, failure: Failure, root: Path | None = None) -> Path:
    """Keep a failing case as a readable corpus file (named by its content)."""
    entry = {
        "invariant": name,
        "versions": [str(v) for v in case.versions],
        "config": case.config.device_strings(),
        "extra": _extra_to_json(case.extra),
        "failure": failure.to_json(),
    }
    text = json.dumps(entry, indent=2, sort_keys=True) + "\n"
    digest = hashlib.sha256(
        json.dumps([name, entry["versions"], entry["config"], entry["extra"]]).encode()
    ).hexdigest()[:12]
    path = (root or paths.failures_dir()) / name / f"{digest}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True, slots=True)
class Replay:
    path: Path
    invariant: str
    still_failing: bool
    detail: str


def replay_corpus(
    root: Path | None = None, invariants: Iterable[str] | None = None
) -> list[Replay]:
    """Re-run every saved failing case; each is still failing or fixed."""
    root = root or paths.failures_dir()
    wanted = set(invariants) if invariants is not None else None
    known = registered()
    out: list[Replay] = []
    for path in sorted(root.glob("*/*.json")):
        entry = json.loads(path.read_text(encoding="utf-8"))
        name = entry["invariant"]
        if (wanted is not None and name not in wanted) or name not in known:
            continue
        case = Case(
            tuple(Version.parse(v) for v in entry["versions"]),
            Config(tuple(parse_device_string(s) for s in entry["config"])),
            _extra_from_json(entry.get("extra", {})),
        )
        try:
            known[name].run(case)
        except Violation as violation:
            out.append(Replay(path, name, True, violation.failure.detail))
            continue
        except Exception as exc:
            out.append(Replay(path, name, True, f"{type(exc).__name__}: {exc}"))
            continue
        out.append(Replay(path, name, False, "fixed"))
    return out
