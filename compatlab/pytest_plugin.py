"""Run the invariant suite as ordinary pytest tests: ``pytest --compatlab``.

The items are the run engine's tasks (:func:`compatlab.engine.plan`), the same
that ``compatlab check`` runs on the same selection: one item per selected version
for one-version invariants, one per ordered pair U < V otherwise (three-version
invariants draw their middle version from the seed), and, with
``--compatlab-device``, one per device type. Items are named like
``upgrade-round-trip[2.4->10.0]`` (``-DRIVER`` added for one device type). With
``--compatlab``, only these items are run: the rest of what pytest collected is
deselected.

An item runs its task with :func:`compatlab.engine.run_task` under the chosen
Hypothesis profile (``--hypothesis-profile`` or ``$HYPOTHESIS_PROFILE``, else
``dev``; compatlab's profiles, loaded explicitly so CI's auto-loaded ``ci`` does
not win) from the run's seed (``--compatlab-seed``, else drawn once per run and
shared by every xdist worker), and reports a violation as the structured
:class:`~compatlab.invariants.Failure` with the engine's reproduce command, which
replays exactly that case. A failure a known finding explains is an expected
failure unless ``--compatlab-strict``.

Results survive pytest-xdist: every item attaches a JSON record to its report's
``user_properties``; the controller gathers them from the reports it receives and
prints one summary. Without ``--compatlab`` the plugin adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from compatlab.engine.outcome import Outcome, Status
from compatlab.engine.tasks import Task
from compatlab.errors import CompatlabError
from compatlab.invariants.registry import Failure
from compatlab.versions import Version

#: Default selection: the oldest catalogue version, the oldest machine type QEMU
#: 10.0 offers, the newest QEMU 7.2 offers, and the newest. The whole matrix is
#: for ``compatlab check``.
DEFAULT_VERSIONS = "1.4,2.4,7.2,11.1"
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
        "--compatlab-seed",
        metavar="N",
        type=int,
        default=None,
        help="base seed of the run (default: drawn once per run; printed in the header)",
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

    invariants: tuple[str, ...]
    versions: tuple[Version, ...]
    drivers: tuple[str, ...]
    profile: str
    seed: int
    strict: bool


@dataclass(slots=True)
class _State:
    selection: Selection
    findings: str
    captures: str
    records: list[dict[str, Any]] = field(default_factory=list)


_STATE = pytest.StashKey[_State]()


def _run_seed(config: pytest.Config) -> int:
    """``--compatlab-seed``, else one seed for the whole run: xdist workers derive it
    from the run's id, so they all plan (and collect) the same items."""
    chosen: int | None = config.getoption("compatlab_seed")
    if chosen is not None:
        return chosen
    worker = getattr(config, "workerinput", None)
    if worker is not None and "testrunuid" in worker:
        digest = hashlib.sha256(str(worker["testrunuid"]).encode()).digest()
        return int.from_bytes(digest[:4], "little")
    return random.randrange(2**32)


def _select(config: pytest.Config, profile: str) -> Selection:
    from compatlab.catalogue import builtin_catalogue
    from compatlab.errors import UnknownDeviceError
    from compatlab.invariants import in_suite, registered
    from compatlab.versions import version_range

    names = config.getoption("compatlab_invariant") or list(registered())
    invariants = tuple(dict.fromkeys(in_suite(n).name for n in names))
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
    return Selection(
        invariants, versions, drivers, profile, _run_seed(config),
        config.getoption("compatlab_strict"),
    )  # fmt: skip


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register and load compatlab's profile before Hypothesis' own plugin looks at
    ``--hypothesis-profile`` (it then loads the same, registered, profile and may
    add its verbosity on top)."""
    config.addinivalue_line("markers", f"{MARKER}: an item of compatlab's invariant suite")
    if not config.getoption("compatlab"):
        return
    from hypothesis import settings

    from compatlab import paths, profiles

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
    state = _State(
        selection,
        str(config.rootpath / paths.findings_file()),
        str(config.rootpath / paths.captures_dir()),
    )
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
        f"profile {sel.profile!r}, seed {sel.seed}"
    )


# -- collection ---------------------------------------------------------------------


def tasks(state: _State) -> list[Task]:
    """The engine's tasks for the selection, as ``compatlab check`` would plan them."""
    from compatlab.engine.tasks import Context, Request, plan

    sel = state.selection
    return plan(
        Request(
            invariants=sel.invariants,
            versions=sel.versions,
            context=Context(
                profile=sel.profile,
                seed=sel.seed,
                findings=state.findings,
                captures=state.captures,
                run_id="pytest",
            ),
            devices=sel.drivers or (None,),
        )
    )


class InvariantSuite(pytest.Collector):
    """The suite's items, one per engine task."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        state = self.config.stash[_STATE]
        out: list[pytest.Item | pytest.Collector] = []
        for task in tasks(state):
            item = InvariantItem.from_parent(self, name=task.label, task=task)
            item.add_marker(MARKER)
            out.append(item)
        return out


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Replace what pytest collected with the suite, before ``-k``/``-m``/``--deselect``
    filter the items (tryfirst), in the same order on every xdist worker."""
    if _STATE not in config.stash:
        return
    if items:
        config.hook.pytest_deselected(items=list(items))
        items.clear()
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


class InvariantFailed(Exception):
    """An item's task failed (or errored); carries the outcome for the report."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        super().__init__(outcome.failure.detail if outcome.failure else outcome.note)


class InvariantItem(pytest.Item):
    """One engine task, run by the engine."""

    def __init__(self, *, task: Task, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task = task

    def _record(self, outcome: Outcome, status: Status) -> dict[str, Any]:
        """The record every outcome leaves, with the status pytest reports (a known
        finding under ``--compatlab-strict`` fails; a skip where QEMU is mandatory is an
        error); ``examples`` counts every call of the check, shrinking included."""
        strict = self.config.stash[_STATE].selection.strict
        return {
            "invariant": self.task.invariant,
            "versions": list(self.task.versions),
            "drivers": list(self.task.drivers or ()),
            "profile": self.task.context.profile,
            "seed": self.task.seed,
            "status": str(status),
            "examples": outcome.examples,
            "seconds": round(outcome.seconds, 4),
            "failure": outcome.failure.to_json() if outcome.failure else None,
            "reproduce": outcome.reproduce_command(strict=strict),
        }

    def runtest(self) -> None:
        from compatlab.engine.run import run_task

        outcome = run_task(self.task)
        strict = self.config.stash[_STATE].selection.strict
        required = os.environ.get("COMPATLAB_REQUIRE_QEMU") == "1"
        status = outcome.status
        if status is Status.KNOWN and strict:
            status = Status.FAIL
        elif status is Status.SKIP and required:
            status = Status.ERROR
        self.user_properties.append(
            (RECORD_KEY, json.dumps(self._record(outcome, status), sort_keys=True))
        )
        if outcome.status is Status.SKIP:
            if required:
                pytest.fail(f"real QEMU is mandatory here: {outcome.note}", pytrace=False)
            pytest.skip(str(outcome.note))
        if outcome.status is Status.KNOWN and not strict:
            first_line = (outcome.note or "").strip().splitlines()[0]
            pytest.xfail(f"known finding: {first_line}")
        if outcome.failed(strict=strict):
            raise InvariantFailed(outcome)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        if not isinstance(excinfo.value, InvariantFailed):
            return super().repr_failure(excinfo, style=style)
        outcome = excinfo.value.outcome
        strict = self.config.stash[_STATE].selection.strict
        if outcome.failure is None:
            return (
                f"{self.task.invariant} could not run on {' -> '.join(self.task.versions)}: "
                f"{outcome.note}\n  reproduce: {outcome.reproduce_command(strict=strict)}"
            )
        return render_failure(outcome.failure, outcome.reproduce_command(strict=strict))

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
    """Counts per invariant, in first-seen order, as :func:`compatlab.results.summarize`
    counts them, with the items and seconds a pytest summary shows."""
    from compatlab.results import summarize as counts

    rows = counts(_Row(r) for r in records)
    seconds: dict[str, float] = {}
    for r in records:
        seconds[r["invariant"]] = seconds.get(r["invariant"], 0.0) + r["seconds"]
    return [
        (name, {"items": sum(row[str(s)] for s in Status), **row, "seconds": seconds[name]})
        for name, row in rows.items()
    ]


@dataclass(frozen=True, slots=True)
class _Row:
    """A plugin record as :func:`compatlab.results.summarize` reads one."""

    data: dict[str, Any]

    @property
    def invariant(self) -> str:
        return str(self.data["invariant"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def examples(self) -> int:
        return int(self.data["examples"])


_COLUMNS = ("items", "pass", "fail", "known", "skip", "error", "examples")


class _Results:
    """Registered only with ``--compatlab``: keeps each item's record and prints the
    summary. Under xdist, workers' reports reach the controller's logreport hook."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
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
