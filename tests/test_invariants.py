"""Every invariant of DESIGN.md §3 holds on the real system and can fail.

For each registered invariant: a Hypothesis run against the real
:class:`System` that passes (on the drivers and versions where the invariant
holds, see ``HOLDS``), and a run against a system with one deliberately broken
component (``tests/broken.py``) that must raise a
:class:`Violation` naming the invariant, with a shrunk, minimal counterexample
that the real system accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from compatlab.catalogue import builtin_catalogue
from compatlab.config import Config, parse_device_string
from compatlab.errors import CatalogueError, QemuNotFoundError
from compatlab.invariants import (
    Case,
    Failure,
    Invariant,
    Scope,
    System,
    Violation,
    checks,
    get,
    invariant,
    registered,
)
from compatlab.versions import ALL_VERSIONS, Version
from strategies.suite import ordered_versions
from tests import broken
from tests.conftest import require_qemu

DESIGN_NAMES = (
    "config-overrides-hints",
    "no-hint-means-default",
    "absent-device-hints-ignored",
    "same-version-round-trip",
    "upgrade-round-trip",
    "upgrade-chain",
    "hints-codec-round-trip",
    "config-space-well-formed",
    "migration-load-accepts",
    "explicit-default-is-neutral",
    "per-device-independence",
    "guest-write-equivalence",
    "model-matches-qemu",
)
# Registered beside DESIGN.md §3's set: the machine-type view the release gate needs,
# and hint matching (its resolution rules for partial, padded and mismatched hints).
MORE_NAMES = ("machine-type-upgrade", "hint-matching")

_QUIET = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]


def _between(low: str, high: str) -> tuple[Version, ...]:
    lo, hi = Version.parse(low), Version.parse(high)
    return tuple(v for v in ALL_VERSIONS if lo <= v <= hi)


def _cases(
    inv: Invariant, versions: Sequence[Version], drivers: tuple[str, ...] | None
) -> st.SearchStrategy[Case]:
    """Cases of ``inv`` over ordered version tuples drawn from ``versions``."""
    scope = Scope(drivers=drivers)
    cat = builtin_catalogue()
    # as the planner does: only the version tuples the invariant applies to
    drawn = ordered_versions(inv.arity, versions)
    if inv.applies is not None:
        drawn = drawn.filter(lambda vs: inv.applies(cat, vs))
    return drawn.flatmap(lambda vs: inv.strategy(vs, scope))


# -- registry -------------------------------------------------------------------------


def test_every_design_invariant_is_registered() -> None:
    names = registered()
    missing = [name for name in DESIGN_NAMES if name not in names]
    assert not missing, f"DESIGN.md §3 invariants not registered: {missing}"
    for name in DESIGN_NAMES:
        assert names[name].statement.strip(), name
    # The suite is DESIGN.md §3's set and MORE_NAMES; the binary gate's invariant is
    # registered outside it.
    assert set(names) == {*DESIGN_NAMES, *MORE_NAMES}
    assert "binaries-agree" not in names and get("binaries-agree").suite is False


@pytest.mark.parametrize(
    ("name", "arity"),
    [("same-version-round-trip", 1), ("upgrade-round-trip", 2), ("upgrade-chain", 3)],
    ids=lambda x: str(x),
)
def test_arity_follows_the_statement(name: str, arity: int) -> None:
    # DESIGN.md §3: realize(V, …); for U ≤ V; for U ≤ V ≤ W.
    assert get(name).arity == arity


def test_registry_refuses_a_duplicate_name() -> None:
    before = get("upgrade-round-trip")
    with pytest.raises(CatalogueError, match="'upgrade-round-trip' is registered twice"):
        invariant(
            "upgrade-round-trip",
            statement="an impostor",
            arity=2,
            strategy=lambda versions, scope: st.nothing(),
        )(lambda case, system: None)
    assert get("upgrade-round-trip") is before
    assert before.check is checks.upgrade_round_trip


def test_every_invariant_has_a_breakage() -> None:
    assert set(broken.BROKEN) == set(registered())
    assert {b.invariant for b in BREAKAGES} | {"model-matches-qemu"} == set(registered())


# -- the real system --------------------------------------------------------------------

NVME, BALLOON, VMXNET3, E1000E = "nvme", "virtio-balloon-pci", "vmxnet3", "e1000e"
BALLOON_VARIANTS = ("virtio-balloon-pci-non-transitional", "virtio-balloon-pci-transitional")
SERIAL = (
    "virtio-serial-pci",
    "virtio-serial-pci-non-transitional",
    "virtio-serial-pci-transitional",
)
STABLE = tuple(
    d
    for d in builtin_catalogue().concrete
    if d not in (NVME, BALLOON, VMXNET3, E1000E, *BALLOON_VARIANTS, *SERIAL)
)

# Invariants comparing a device across an upgrade fail, on the real system, for
# devices whose guest-visible state changes without a compat property (in the model,
# following QEMU; corpora/findings.toml):
# - nvme in 6.0 (BAR 0 size, BAR 4 gone, MSI-X table and PBA offsets; Link Active
#   no longer set), in 7.1 (power management and Function Level Reset) and in 9.1
#   (Device Control error-reporting enables made writable);
# - e1000e in 6.0 (Link Active no longer set);
# - virtio-balloon-pci in 4.0 (config size 16 on every machine type; 4.1 added
#   qemu-4-0-config-size, so only V = 4.0 shows it), and every balloon from 4.0 to 11.1,
#   which removed qemu-4-0-config-size;
# - vmxnet3 from <= 2.5 to >= 10.1, which removed x-old-msi-offsets;
# - virtio-serial from <= 2.7 to >= 11.0, which removed emergency-write.
# They are run only on version ranges that do not straddle those releases.
ACROSS_UPGRADE = (
    "upgrade-round-trip",
    "machine-type-upgrade",
    "upgrade-chain",
    "guest-write-equivalence",
    "migration-load-accepts",
)
WHERE_STABLE: list[tuple[str, tuple[str, ...], tuple[Version, ...]]] = [
    ("stable-drivers", STABLE, ALL_VERSIONS),
    ("nvme-before-6.0", (NVME,), _between("1.4", "5.2")),
    ("nvme-6.0-to-7.0", (NVME,), _between("6.0", "7.0")),
    ("nvme-7.1-to-9.0", (NVME,), _between("7.1", "9.0")),
    ("nvme-since-9.1", (NVME,), _between("9.1", "11.1")),
    ("e1000e-before-6.0", (E1000E,), _between("2.6", "5.2")),
    ("e1000e-since-6.0", (E1000E,), _between("6.0", "11.1")),
    ("balloon-before-4.0", (BALLOON,), _between("1.4", "3.1")),
    ("balloon-4.0-to-11.0", (BALLOON, *BALLOON_VARIANTS), _between("4.0", "11.0")),
    ("balloon-since-4.1", (BALLOON, *BALLOON_VARIANTS), _between("4.1", "11.1")),
    ("vmxnet3-before-10.1", (VMXNET3,), _between("1.4", "10.0")),
    ("vmxnet3-since-2.6", (VMXNET3,), _between("2.6", "11.1")),
    ("serial-before-11.0", SERIAL, _between("1.4", "10.2")),
    ("serial-since-2.8", SERIAL, _between("2.8", "11.1")),
]

HOLDS = [
    pytest.param(name, drivers, versions, id=f"{name}-{label}")
    for name in (*DESIGN_NAMES, *MORE_NAMES)
    if name != "model-matches-qemu"
    for label, drivers, versions in (
        WHERE_STABLE if name in ACROSS_UPGRADE else [("all-drivers", None, ALL_VERSIONS)]
    )
]


@pytest.mark.parametrize(("name", "drivers", "versions"), HOLDS)
def test_holds_on_the_real_system(
    name: str, drivers: tuple[str, ...] | None, versions: tuple[Version, ...]
) -> None:
    inv = get(name)

    @settings(max_examples=30, deadline=None, database=None, suppress_health_check=_QUIET)
    @given(_cases(inv, versions, drivers))
    def body(case: Case) -> None:
        inv.run(case, System())

    body()


@pytest.mark.qemu
def test_model_matches_qemu_holds() -> None:
    binary = require_qemu("7.2")
    inv = get("model-matches-qemu")

    @settings(max_examples=8, deadline=None, database=None, suppress_health_check=_QUIET)
    @given(_cases(inv, binary.machines, None))
    def body(case: Case) -> None:
        inv.run(case, System())

    body()


def test_the_nvme_9_1_finding_is_found() -> None:
    """QEMU 9.1 made nvme's Device Control error-reporting enables (0x88, bits 0-3)
    guest-writable on every machine type (corpora/findings.toml)."""
    inv = get("upgrade-round-trip")
    versions = (Version.parse("9.0"), Version.parse("9.1"))
    failure, _ = _counterexample(inv, System(), versions, Scope((NVME,)))
    assert (failure.driver, failure.offset) == (NVME, 0x88)
    assert failure.detail.endswith("wmask differs at 0x88")
    assert (failure.expected, failure.actual) == ("00", "0f")


def test_the_nvme_7_1_finding_is_found() -> None:
    """QEMU 7.1 gave nvme a power-management capability at 0x60, behind the PCI
    Express one (QEMU 5.2's own binary has none; corpora/findings.toml)."""
    inv = get("upgrade-round-trip")
    versions = (Version.parse("7.0"), Version.parse("7.1"))
    failure, _ = _counterexample(inv, System(), versions, Scope((NVME,)))
    assert (failure.driver, failure.offset) == (NVME, 0x60)
    assert (failure.expected, failure.actual) == ("00", "01")  # PCI_CAP_ID_PM


def test_the_link_active_6_0_finding_is_found() -> None:
    """QEMU 6.0 stopped setting Data Link Layer Link Active at realize: e1000e's Link
    Status (0xf2) loses bit 13 on an upgrade from 5.2 (corpora/findings.toml)."""
    inv = get("upgrade-round-trip")
    versions = (Version.parse("5.2"), Version.parse("6.0"))
    failure, _ = _counterexample(inv, System(), versions, Scope(("e1000e",)))
    assert (failure.driver, failure.offset) == ("e1000e", 0xF3)
    assert (failure.expected, failure.actual) == ("20", "00")


def test_model_matches_qemu_never_asks_a_release_newer_than_the_catalogue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A QEMU 12.0 offers machine types up to 12.0, which the catalogue does not
    cover: a machine type only it offers has no oracle (DESIGN.md §2 asks V's own
    release or a later one the model knows)."""
    from compatlab.oracles import capture, qemu

    newer = qemu.QemuBinary(
        qemu.Path("/nonexistent/qemu-12.0"),
        "12.0.0",
        Version(12, 0),
        tuple(Version(m, n) for m, n in ((5, 2), (6, 0), (7, 2), (10, 0), (11, 1), (12, 0))),
    )
    monkeypatch.setattr(qemu, "available_binaries", lambda: (newer,))

    def no_capture(*args: object, **kwargs: object) -> None:
        raise AssertionError("QEMU 12.0 was asked")

    monkeypatch.setattr(capture, "capture_config", no_capture)
    case = Case((Version.parse("11.1"),), Config((parse_device_string("e1000,id=dev0"),)))
    # No oracle is no evidence: not a pass (the engine skips such a task, or replays
    # what was recorded for it).
    with pytest.raises(QemuNotFoundError, match="no QEMU binary the catalogue covers offers"):
        get("model-matches-qemu").run(case, System())


# -- broken systems -----------------------------------------------------------------------


@dataclass(frozen=True)
class Breakage:
    """One broken system, where its defect shows, and what its minimal case looks like."""

    invariant: str
    label: str
    versions: tuple[str, ...]
    drivers: tuple[str, ...] | None
    devices: int  # how many devices the minimal config needs to show the defect
    minimal: str = ""  # what else the minimal case is: "one write", "one property", …
    system: System | None = None  # default: broken.BROKEN[invariant]

    @property
    def broken_system(self) -> System:
        return self.system or broken.BROKEN[self.invariant]


NET = ("virtio-net-pci",)
BREAKAGES = [
    Breakage("config-overrides-hints", "hints-beat-config", ("2.4", "10.0"), None, 1),
    Breakage("no-hint-means-default", "unhinted-take-oldest-values", ("10.0",), None, 1),
    Breakage(
        "absent-device-hints-ignored", "absent-hints-matched-by-driver", ("2.4", "10.0"),
        ("e1000",), 1,
    ),
    Breakage("same-version-round-trip", "dump-holds-oldest-values", ("10.0",), NET, 1),
    Breakage("upgrade-round-trip", "history-rule-forgotten", ("2.4", "10.0"), STABLE, 1),
    Breakage("upgrade-chain", "re-dump-forgets-history", ("2.4", "7.2", "10.0"), STABLE, 1),
    Breakage("machine-type-upgrade", "machine-type-pins-nothing", ("2.4", "10.0"), STABLE, 1),
    Breakage("hints-codec-round-trip", "nondeterministic-encode", ("10.0",), None, 0, "no hints"),
    Breakage(
        "hints-codec-round-trip", "decode-loses-a-property", ("10.0",), None, 0, "one property",
        System(decode=broken.decode_drops_last_property),
    ),
    Breakage("config-space-well-formed", "capability-list-dropped", ("10.0",), None, 1),
    Breakage(
        "migration-load-accepts", "destination-bars-read-only", ("2.4", "10.0"), STABLE, 1,
        "one write",
    ),
    Breakage("explicit-default-is-neutral", "explicit-means-newest-defaults", ("2.4",), NET, 1),
    Breakage(
        "per-device-independence", "properties-leak-between-devices", ("2.4", "10.0"), NET, 2
    ),
    Breakage(
        "guest-write-equivalence", "destination-ignores-wmask", ("2.4", "10.0"), STABLE, 1,
        "one write",
    ),
    Breakage("hint-matching", "borrows-a-siblings-entry", ("2.4", "10.0"), None, 2),
    Breakage(
        "hint-matching", "accepts-another-driver", ("2.4", "10.0"), None, 1, "",
        broken.with_resolver(broken.resolve_accepts_another_driver),
    ),
    Breakage(
        "hint-matching", "absent-hints-matched-by-driver", ("2.4", "10.0"), None, 1, "",
        broken.with_resolver(broken.resolve_matches_absent_hints_by_driver),
    ),
    Breakage(
        "hint-matching", "uses-no-entry", ("2.4", "10.0"), None, 1, "",
        broken.with_resolver(broken.resolve_uses_no_entry),
    ),
    Breakage(
        "hint-matching", "reports-nothing", ("2.4", "10.0"), None, 1, "",
        broken.with_resolver(broken.resolve_reports_nothing),
    ),
    Breakage(
        "hint-matching", "one-reason-for-all", ("2.4", "10.0"), None, 1, "",
        broken.with_resolver(broken.resolve_one_reason_for_all),
    ),
]  # fmt: skip


def _counterexample(
    inv: Invariant, system: System, versions: tuple[Version, ...], scope: Scope
) -> tuple[Failure, Case]:
    """Run ``inv`` against ``system`` under Hypothesis, expecting a violation: the
    failure reported and the shrunk case it came from (Hypothesis replays it last)."""
    seen: list[Case] = []

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        derandomize=True,
        report_multiple_bugs=False,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],  # no slow "explain" phase
        suppress_health_check=_QUIET,
    )
    @given(inv.strategy(versions, scope))
    def body(case: Case) -> None:
        seen[:] = [case]
        inv.run(case, system)

    try:
        body()
    except Violation as exc:
        return exc.failure, seen[-1]
    pytest.fail(f"{inv.name} never failed on {[str(v) for v in versions]}")


@pytest.mark.parametrize("breakage", BREAKAGES, ids=[f"{b.invariant}-{b.label}" for b in BREAKAGES])
def test_fails_on_a_broken_system(breakage: Breakage) -> None:
    inv = get(breakage.invariant)
    versions = tuple(Version.parse(v) for v in breakage.versions)
    failure, case = _counterexample(inv, breakage.broken_system, versions, Scope(breakage.drivers))

    assert failure.invariant == breakage.invariant
    assert failure.versions == breakage.versions
    assert failure.config == tuple(case.config.device_strings())
    assert len(failure.config) == breakage.devices, failure.config
    if breakage.drivers is not None and breakage.devices:
        assert failure.driver in breakage.drivers
    if breakage.minimal == "one write":
        assert len(case.extra["writes"]) == 1
    elif breakage.minimal == "no hints":
        assert case.extra["hints"].entries == ()
    elif breakage.minimal == "one property":
        (entry,) = case.extra["hints"].entries
        assert len(entry.properties) == 1
    # The counterexample shows the broken component, not a defect of the real system.
    inv.run(case, System())


@pytest.mark.qemu
def test_model_matches_qemu_fails_on_a_broken_realize(monkeypatch: pytest.MonkeyPatch) -> None:
    require_qemu("7.2")
    from compatlab.oracles import qemu

    # Shrinking replays many cases whose device strings are the same: start QEMU once each.
    runs: dict[tuple[object, ...], qemu.BatchResult] = {}
    real_run = qemu.run_batch

    def run_once(
        binary: qemu.QemuBinary,
        machine: Version,
        strings: Sequence[str],
        slots: Sequence[qemu.Slot],
        *,
        probe: bool = False,
    ) -> qemu.BatchResult:
        key = (binary.path, machine, tuple(strings), tuple(slots), probe)
        if key not in runs:
            runs[key] = real_run(binary, machine, strings, slots, probe=probe)
        return runs[key]

    monkeypatch.setattr(qemu, "run_batch", run_once)
    inv = get("model-matches-qemu")
    failure, _ = _counterexample(
        inv, broken.BROKEN[inv.name], (Version.parse("7.2"),), Scope(("e1000",))
    )
    assert failure.invariant == "model-matches-qemu"
    assert failure.config == ("e1000,id=dev0",)
    assert "0x08" in failure.detail  # the revision ID byte


@pytest.mark.qemu
def test_model_matches_qemu_checks_the_system_under_test() -> None:
    require_qemu("7.2")
    case = Case((Version.parse("7.2"),), Config((parse_device_string("e1000,id=dev0"),)))
    with pytest.raises(Violation):
        get("model-matches-qemu").run(case, broken.BROKEN["model-matches-qemu"])
