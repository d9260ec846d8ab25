"""Run the invariant suite as ordinary pytest tests: ``pytest --compatlab``.

Each (invariant, version tuple) becomes one test item, named like
``upgrade-round-trip[2.4->10.0]``: one item per selected version for
one-version invariants, one per ordered pair U ≤ V for two-version ones, and
one per pair U ≤ W for three-version ones, with V drawn by Hypothesis from the
catalogue's versions between them. An item runs the invariant under the chosen
Hypothesis profile (``--hypothesis-profile`` or ``$HYPOTHESIS_PROFILE``, else
``dev``; compatlab's profiles, loaded explicitly so CI's auto-loaded ``ci``
does not win) and reports a violation as the structured
:class:`~compatlab.invariants.Failure` with a ``compatlab check`` command that
reproduces it. A failure a known finding (``corpora/findings.toml``) explains
is an expected failure unless ``--compatlab-strict``.

Results survive pytest-xdist: every item attaches a JSON record (invariant,
versions, examples run, status, seconds) to its report's ``user_properties``;
the controller gathers them from the reports it receives and prints one
summary, with our own example counts (Hypothesis' statistics stay on workers).

Without ``--compatlab`` the plugin adds nothing and loads no profile.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compatlab.errors import CompatlabError
from compatlab.invariants.registry import Case, Failure, Invariant, Scope, Violation, get
from compatlab.versions import Version, active_versions

#: Default selection: the oldest catalogue version, the oldest machine type QEMU
#: 10.0 offers, the newest QEMU 7.2 offers, and the newest. The whole matrix is
#: for ``compatlab check``.
DEFAULT_VERSIONS = "1.4,2.4,7.2,10.0"
RECORD_KEY = "compatlab"
MARKER = "compatlab"


# -- options and configuration ------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("compatlab", "compatlab invariant suite")
    group.addoption(
        "--compatlab",
        action="store_true",
        default=False,
        help="add the invariant suite: one test per invariant and version tuple",
    )
    group.addoption(
        "--compatlab-versions",
        metavar="A..B",
        default=DEFAULT_VERSIONS,
        help=f"versions to cover (A..B or A,B,C; default {DEFAULT_VERSIONS})",
    )
    group.addoption(
        "--compatlab-invariant",
        metavar="NAME",
        action="append",
        default=[],
        help="run only this invariant (repeatable; default all)",
    )
    group.addoption(
        "--compatlab-device",
        metavar="DRIVER",
        action="append",
        default=[],
        help="restrict generated configs to these device types (repeatable; default all)",
    )
    group.addoption(
        "--compatlab-strict",
        action="store_true",
        default=False,
        help="failures explained by a known finding fail too (default: expected failures)",
    )


@dataclass(frozen=True, slots=True)
class Selection:
    """What ``--compatlab-*`` selected, validated once per process."""

    invariants: tuple[Invariant, ...]
    versions: tuple[Version, ...]
    drivers: tuple[str, ...]
    profile: str
    strict: bool

    @property
    def scope(self) -> Scope:
        return Scope(drivers=self.drivers or None)


@dataclass(slots=True)
class _State:
    selection: Selection
    findings: list[Any]
    records: list[dict[str, Any]] = field(default_factory=list)


_STATE = pytest.StashKey[_State]()


def _select(config: pytest.Config, profile: str) -> Selection:
    from compatlab.catalogue import builtin_catalogue
    from compatlab.errors import UnknownDeviceError
    from compatlab.invariants import registered
    from compatlab.versions import version_range

    names = config.getoption("compatlab_invariant") or list(registered())
    invariants = tuple(dict.fromkeys(get(n) for n in names))
    versions = version_range(config.getoption("compatlab_versions"))
    if not versions:
        raise CompatlabError(
            f"--compatlab-versions {config.getoption('compatlab_versions')!r} selects no version"
        )
    drivers = tuple(dict.fromkeys(config.getoption("compatlab_device")))
    concrete = builtin_catalogue().concrete
    for driver in drivers:
        if driver not in concrete:
            raise UnknownDeviceError(driver, concrete)
    return Selection(invariants, versions, drivers, profile, config.getoption("compatlab_strict"))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register and load compatlab's profile before Hypothesis' own plugin looks at
    ``--hypothesis-profile`` (it then loads the same, registered, profile and may
    add its verbosity on top)."""
    config.addinivalue_line("markers", f"{MARKER}: an item of compatlab's invariant suite")
    if not config.getoption("compatlab"):
        return
    from compatlab import paths, profiles
    from compatlab.invariants.runner import load_findings

    # Validate everything before touching Hypothesis' global settings.
    try:
        profile = profiles.choose(config.getoption("hypothesis_profile", None))
        selection = _select(config, profile)
    except CompatlabError as exc:
        raise pytest.UsageError(f"compatlab: {exc}") from exc
    # Under CI Hypothesis has already loaded its own "ci" profile, and profiles
    # registered now would inherit its settings (derandomize, print_blob): start
    # from Hypothesis' defaults so "dev" means the same in CI and out of it.
    settings.load_profile("default")
    profiles.load(profile)
    findings = list(load_findings(config.rootpath / paths.findings_file()))
    state = _State(selection, findings)
    config.stash[_STATE] = state
    config.pluginmanager.register(_Results(state), "compatlab-results")


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(_STATE, None)
    if state is None:
        return None
    sel = state.selection
    return (
        f"compatlab: {len(sel.invariants)} invariant{'s' * (len(sel.invariants) != 1)}, versions "
        f"{','.join(map(str, sel.versions))}, devices {','.join(sel.drivers) or 'all'}, "
        f"profile {sel.profile!r}"
    )


# -- collection ---------------------------------------------------------------------


def version_tuples(arity: int, versions: Sequence[Version]) -> list[tuple[Version, ...]]:
    """The version tuples an invariant of ``arity`` runs on: each version, or each
    ordered pair U ≤ V (for arity 3 the ends U ≤ W; V is drawn per example)."""
    ordered = sorted(set(versions))
    if arity == 1:
        return [(v,) for v in ordered]
    return [(u, w) for i, u in enumerate(ordered) for w in ordered[i:]]


def item_name(name: str, versions: Sequence[Version]) -> str:
    return f"{name}[{'->'.join(map(str, versions))}]"


class InvariantSuite(pytest.Collector):
    """The suite's items, one per (invariant, version tuple)."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        sel = self.config.stash[_STATE].selection
        out: list[pytest.Item | pytest.Collector] = []
        for inv in sel.invariants:
            for versions in version_tuples(inv.arity, sel.versions):
                item = InvariantItem.from_parent(
                    self,
                    name=item_name(inv.name, versions),
                    invariant=inv,
                    versions=versions,
                    selection=sel,
                )
                item.add_marker(MARKER)
                out.append(item)
        return out


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Append the suite before ``-k``/``-m``/``--deselect`` filter the items (tryfirst),
    in the same order on every xdist worker."""
    if _STATE not in config.stash:
        return
    suite = InvariantSuite.from_parent(session, name="compatlab", nodeid="compatlab")
    # Through the collection hooks, so the terminal counts the items and a defect in
    # the suite is reported as a collection error.
    report = suite.ihook.pytest_make_collect_report(collector=suite)
    suite.ihook.pytest_collectreport(report=report)
    for node in report.result:
        if isinstance(node, pytest.Item):
            node.ihook.pytest_itemcollected(item=node)
            items.append(node)


# -- running one item ---------------------------------------------------------------


@cache
def _qemu_machines() -> tuple[tuple[str, tuple[Version, ...]], ...]:
    from compatlab.oracles.qemu import available_binaries

    return tuple((b.release, tuple(b.machines)) for b in available_binaries())


def reproduce_command(name: str, versions: Sequence[str], drivers: Sequence[str]) -> str:
    span = f"{versions[0]}..{versions[-1]}" if len(versions) > 1 else versions[0]
    devices = "".join(f" --device {d}" for d in drivers)
    return f"compatlab check --invariant {name} --versions {span}{devices} --profile gate"


class InvariantItem(pytest.Item):
    """One invariant on one version tuple, run under Hypothesis."""

    def __init__(
        self,
        *,
        invariant: Invariant,
        versions: tuple[Version, ...],
        selection: Selection,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.invariant = invariant
        self.versions = versions
        self.selection = selection
        self.failure: Failure | None = None

    # The record every outcome leaves; ``examples`` counts every call of the check,
    # shrinking included (Hypothesis' own statistics stay on xdist workers).
    def _record(self, status: str, examples: int = 0, seconds: float = 0.0) -> dict[str, Any]:
        names = [str(v) for v in self.versions]
        return {
            "invariant": self.invariant.name,
            "versions": names,
            "drivers": list(self.selection.drivers),
            "profile": self.selection.profile,
            "status": status,
            "examples": examples,
            "seconds": round(seconds, 4),
            "failure": self.failure.to_json() if self.failure else None,
            "reproduce": reproduce_command(self.invariant.name, names, self.selection.drivers),
        }

    def _attach(self, record: dict[str, Any]) -> None:
        self.user_properties.append((RECORD_KEY, json.dumps(record, sort_keys=True)))

    def setup(self) -> None:
        if not self.invariant.needs_qemu:
            return
        machine = self.versions[0]
        binaries = _qemu_machines()
        if any(machine in machines for _, machines in binaries):
            return
        have = ", ".join(release for release, _ in binaries) or "none"
        reason = (
            f"{self.invariant.name} needs a QEMU binary offering {machine.machine_type} "
            f"(found: {have}); run .ci/install-qemu or set COMPATLAB_QEMU"
        )
        required = os.environ.get("COMPATLAB_REQUIRE_QEMU") == "1"
        self._attach(self._record("error" if required else "skip"))
        if required:
            pytest.fail(f"real QEMU is mandatory here: {reason}", pytrace=False)
        pytest.skip(reason)

    def _strategy(self) -> st.SearchStrategy[Case]:
        inv, scope = self.invariant, self.selection.scope
        if inv.arity != 3:
            return inv.strategy(self.versions, scope)
        first, last = self.versions
        middles = [v for v in active_versions() if first <= v <= last]
        # Shrinks towards V = U.
        return st.sampled_from(middles).flatmap(lambda v: inv.strategy((first, v, last), scope))

    def runtest(self) -> None:
        inv = self.invariant
        examples = 0

        @settings(report_multiple_bugs=False)
        @given(self._strategy())
        def body(case: Case) -> None:
            nonlocal examples
            examples += 1
            inv.run(case)

        start = time.perf_counter()
        status = "error"
        try:
            body()
            status = "pass"
        except Violation as violation:
            self.failure = violation.failure
            known = next(
                (f for f in self.config.stash[_STATE].findings if f.explains(self.failure)), None
            )
            if known is None or self.selection.strict:
                status = "fail"
                raise
            status = "known"
            first_line = known.reason.strip().splitlines()[0]
            pytest.xfail(
                f"known finding ({known.driver}, changed in {known.changed_in}): {first_line}"
            )
        finally:
            self._attach(self._record(status, examples, time.perf_counter() - start))

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        if not isinstance(excinfo.value, Violation):
            return super().repr_failure(excinfo, style=style)
        return render_failure(
            excinfo.value.failure,
            reproduce_command(
                self.invariant.name, excinfo.value.failure.versions, self.selection.drivers
            ),
            [
                note
                for note in getattr(excinfo.value, "__notes__", ())
                if self.config.option.verbose > 0 or str(note).startswith("Falsifying")
            ],
        )

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


def render_failure(failure: Failure, reproduce: str, notes: Sequence[str] = ()) -> str:
    """A violation as a reader wants it: what, where, the bytes, the minimal
    config and how to see it again."""
    device = failure.device or "-"
    if failure.driver:
        device += f" ({failure.driver})"
    lines = [
        f"invariant {failure.invariant} violated on {' -> '.join(failure.versions)}",
        f"  device:    {device}",
        f"  detail:    {failure.detail}",
    ]
    if failure.offset is not None:
        lines.append(
            f"  offset:    {failure.offset:#04x}  expected {failure.expected}  "
            f"actual {failure.actual}"
        )
    elif failure.expected is not None or failure.actual is not None:
        lines.append(f"  expected:  {failure.expected}  actual: {failure.actual}")
    lines.append("  minimal config:")
    lines.extend(f"    -device {s}" for s in failure.config)
    lines.append(f"  reproduce: {reproduce}")
    for note in notes:
        lines.append("")
        lines.append(str(note))
    return "\n".join(lines)


# -- gathering results (on the xdist controller, or the only process) ---------------------


def summarize(records: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, float]]]:
    """Counts per invariant, in first-seen order."""
    table: dict[str, dict[str, float]] = {}
    for r in records:
        row = table.setdefault(r["invariant"], dict.fromkeys((*_COLUMNS, "seconds"), 0))
        row["items"] += 1
        row[r["status"]] += 1
        row["examples"] += r["examples"]
        row["seconds"] += r["seconds"]
    return list(table.items())


_COLUMNS = ("items", "pass", "fail", "known", "skip", "error", "examples")


class _Results:
    """Registered only with ``--compatlab``: keeps each item's record and prints the
    summary. Under xdist, workers' reports reach the controller's logreport hook."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # One record per item, from the phase that decided it (setup for a skip).
        if not (report.when == "call" or (report.when == "setup" and not report.passed)):
            return
        for key, value in report.user_properties:
            if key == RECORD_KEY:
                self.state.records.append(json.loads(str(value)))
                return

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        if hasattr(config, "workerinput") or config.option.collectonly:
            return
        tr = terminalreporter
        tr.write_sep("=", f"compatlab invariant suite (profile {self.state.selection.profile})")
        rows = summarize(self.state.records)
        if not rows:
            tr.write_line("no invariant items ran")
            return
        width = max(len("invariant"), *(len(name) for name, _ in rows))
        head = "  ".join(f"{c:>8}" for c in (*_COLUMNS, "seconds"))
        tr.write_line(f"{'invariant':<{width}}  {head}")
        for name, row in rows:
            cells = "  ".join(f"{int(row[c]):>8}" for c in _COLUMNS)
            tr.write_line(f"{name:<{width}}  {cells}  {row['seconds']:>8.2f}")
