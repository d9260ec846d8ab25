"""The release gate on candidate releases given as data (docs/candidate-format.md).

Every seeded compat bug in corpora/candidates/seeded/ is modelled on QEMU's own
history; the gate must reject each at the ``ci`` profile and name what is wrong,
and accept the candidates in corpora/candidates/good/ (the same changes done
right, a release that changes nothing, a new device type)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from compatlab.catalogue import builtin_catalogue, using_catalogue
from compatlab.catalogue.candidate import (
    apply_candidate,
    as_of,
    load_candidate,
    parse_candidate,
    release_candidate,
)
from compatlab.config import Config, parse_device_string
from compatlab.engine.corpus import load_findings
from compatlab.gate import (
    CANDIDATE_INVARIANTS,
    GATE_INVARIANTS,
    GateFailure,
    broken_entries,
    candidate_gate,
    candidate_ref,
    gate_tasks,
)
from compatlab.realize import realize
from compatlab.versions import Version

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = ROOT / "corpora" / "candidates"

# For each seeded bug: the device types a failure may name, and what its message
# must say (the property behind it, or the data problem).
TRANSITIONAL = ("virtio-net-pci-transitional", "virtio-net-pci-non-transitional")
BLK = ("virtio-blk-pci", "virtio-blk-pci-transitional", "virtio-blk-pci-non-transitional")
SEEDED: dict[str, tuple[str | tuple[str, ...] | None, str]] = {
    "net-vectors-entry-misses-transitional": (TRANSITIONAL, "vectors changed 4294967295 → 6"),
    "rng-vectors-entry-misses-transitional": (
        ("virtio-rng-pci-transitional", "virtio-rng-pci-non-transitional"),
        "vectors is new in 7.2",
    ),
    "rng-vectors-no-entry": ("virtio-rng-pci", "vectors is new in 7.2"),
    "rng-vectors-default-change": ("virtio-rng-pci", "vectors changed"),
    "ext-tag-no-entry": (None, "x-pcie-ext-tag is new in 9.2"),
    "ext-tag-entry-misses-subtypes": ("e1000e", "x-pcie-ext-tag is new in 9.2"),
    "balloon-config-size": ("virtio-balloon-pci", "without a compat property"),
    "nvme-msix-bar-move": ("nvme", "msix-exclusive-bar is new in 6.0"),
    "page-per-vq-no-entry": (None, "page-per-vq changed on → off in 2.8"),
    "modern-default-half-entry": (None, "disable-modern changed on → off in 2.7"),
    "net-vectors-entry-wrong-version": (
        ("virtio-net-pci", *TRANSITIONAL),
        "versions ≤ 11.1 need a history entry",
    ),
    "net-vectors-entry-pins-new-value": (
        ("virtio-net-pci", *TRANSITIONAL),
        "vectors changed 4294967295 → 6",
    ),
    "net-vectors-entry-unknown-driver": (None, "driver 'virtio-net-pcie' does not exist"),
    "net-vectors-entry-unknown-property": (None, "no property 'vector'"),
    "net-vectors-entry-under-candidate": (None, "applies to the candidate 11.2 itself"),
    "e1000-removed": ("e1000", "refuses"),
    "property-removed": (None, "has no property 'modern-pio-notify'"),
    "blk-queues-auto-no-entry": (BLK, "num-queues changed 1 → 65535 in 5.2"),
    "blk-queues-entry-pins-auto": (BLK, "num-queues changed 1 → 65535 in 5.2"),
    "compat-property-removed": (
        None,
        "compat entry hw_compat_5_0 virtio-pci.x-disable-legacy-check=true: 18 device types",
    ),
    "builder-property-removed": (("virtio-net-pci", *TRANSITIONAL), "has no property 'host_mtu'"),
}
#: The seeded bugs only a guest with more than one vCPU sees.
MORE_THAN_ONE_VCPU = ("blk-queues-auto-no-entry", "blk-queues-entry-pins-auto")
GOOD = sorted(p.stem for p in (CANDIDATES / "good").glob("*.toml"))


def test_every_seeded_file_has_an_expectation() -> None:
    files = {p.stem for p in (CANDIDATES / "seeded").glob("*.toml")}
    assert files == set(SEEDED)
    assert len(files) >= 12


@pytest.mark.parametrize("name", sorted(SEEDED))
def test_gate_rejects_a_seeded_bug(name: str) -> None:
    cc = apply_candidate(load_candidate(CANDIDATES / "seeded" / f"{name}.toml"))
    verdict = candidate_gate(cc, profile="ci", fail_fast=True)
    assert not verdict.passed
    driver, said = SEEDED[name]
    messages = [p["message"] for p in verdict.problems]
    for f in verdict.failures:
        messages += [f.failure.detail, *f.explanation.lines]
        assert f.failure.config, "a failure carries its minimal config"
        if driver is not None:
            assert f.driver in ((driver,) if isinstance(driver, str) else driver)
        if f.failure.offset is not None:
            assert f.explanation.registers, "a byte difference comes with its register-level diff"
    assert any(said in m for m in messages), messages


@pytest.mark.parametrize("name", MORE_THAN_ONE_VCPU)
def test_gate_rejects_a_queue_count_bug_only_thanks_to_more_vcpus(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compat entry for an auto queue count that is missing, or pins auto, is
    rejected with a minimal config of more than one vCPU; the same gate with every
    config on one vCPU (as before configs had a vCPU count) accepts it."""
    from hypothesis import strategies as st

    import strategies.suite

    cc = apply_candidate(load_candidate(CANDIDATES / "seeded" / f"{name}.toml"))
    verdict = candidate_gate(cc, profile="ci", fail_fast=True)
    assert not verdict.passed
    assert all((f.failure.vcpus or 1) > 1 for f in verdict.failures)
    monkeypatch.setattr(strategies.suite, "vcpu_counts", lambda: st.none())
    one_vcpu = candidate_gate(cc, profile="ci", fail_fast=True)
    assert one_vcpu.passed and one_vcpu.complete and one_vcpu.examples > 0


@pytest.mark.parametrize("name", GOOD)
def test_gate_accepts_a_correct_candidate(name: str) -> None:
    cc = apply_candidate(load_candidate(CANDIDATES / "good" / f"{name}.toml"))
    verdict = candidate_gate(cc, profile="ci")
    assert verdict.passed, [f.explanation.lines or f.failure.detail for f in verdict.failures]
    assert verdict.complete


def test_gate_accepts_the_unmodified_catalogue_on_every_device() -> None:
    """A release that changes nothing, checked on every device type from old and
    recent versions: the unmodified catalogue passes (its own released breaks,
    QEMU's, are excused as the base's, not the candidate's)."""
    cc = apply_candidate(load_candidate(CANDIDATES / "good" / "11.2-empty.toml"))
    everything = builtin_catalogue().concrete
    baselines = [Version.parse(v) for v in ("2.4", "6.0", "9.0", "10.0")]
    verdict = candidate_gate(cc, profile="ci", drivers=everything, baselines=baselines)
    assert verdict.passed, [f.failure.detail for f in verdict.failures]
    # machine-type-upgrade only from the machine types the candidate still offers
    offered = [b for b in baselines if cc.catalogue.removal_of(b, cc.candidate.version) is None]
    assert len(offered) < len(baselines)
    assert verdict.runs == (
        len(GATE_INVARIANTS) * len(baselines)
        - (len(baselines) - len(offered))
        + len(CANDIDATE_INVARIANTS)
    )
    assert verdict.examples > 0


def test_the_correct_candidates_check_something() -> None:
    """A gate that accepts because it ran nothing would prove nothing."""
    cc = apply_candidate(load_candidate(CANDIDATES / "good" / "rng-vectors.toml"))
    verdict = candidate_gate(cc, profile="dev", baselines=[Version.parse("7.1")])
    assert verdict.drivers == (
        "virtio-rng-pci",
        "virtio-rng-pci-non-transitional",
        "virtio-rng-pci-transitional",
    )
    assert verdict.runs == len(GATE_INVARIANTS) + len(CANDIDATE_INVARIANTS)
    assert verdict.examples > 0


def test_a_new_device_type_is_checked_on_the_candidate() -> None:
    """No older guest can have it, but its own config space is still checked."""
    cc = apply_candidate(load_candidate(CANDIDATES / "good" / "new-device.toml"))
    verdict = candidate_gate(cc, profile="ci")
    assert verdict.drivers == ("e1000-82545em",)
    assert verdict.runs == len(CANDIDATE_INVARIANTS) and verdict.examples > 0


def test_the_gate_excuses_breaks_already_released() -> None:
    """nvme's error-reporting enables changed in QEMU 9.1 without compat (a known
    finding): an 11.2 that touches nvme inherits that break and is not blamed for it."""
    cc = apply_candidate(
        load_candidate(CANDIDATES / "good" / "11.2-empty.toml"), builtin_catalogue()
    )
    verdict = candidate_gate(cc, profile="ci", drivers=("nvme",), baselines=[Version.parse("9.0")])
    assert verdict.passed and verdict.runs == len(GATE_INVARIANTS) + len(CANDIDATE_INVARIANTS)


# -- the catalogue as it stood ----------------------------------------------------------


@pytest.mark.parametrize("base", ["2.6", "4.0", "7.1", "9.1"])
def test_as_of_keeps_every_released_value(base: str) -> None:
    """The catalogue as of B gives every driver, at every version up to B, exactly
    the properties and builder values of the full catalogue."""
    full = builtin_catalogue()
    b = Version.parse(base)
    old = as_of(full, b)
    assert old.versions[-1] == b
    for driver in old.types:
        for v in old.versions:
            assert set(old.properties(driver, v)) == set(full.properties(driver, v))
            assert old.all_values_at(driver, v) == full.all_values_at(driver, v), (driver, v)


def test_a_candidate_changes_nothing_released() -> None:
    cc = apply_candidate(load_candidate(CANDIDATES / "seeded" / "page-per-vq-no-entry.toml"))
    config = Config((parse_device_string("virtio-net-pci,id=n"),))
    with using_catalogue(cc.catalogue):
        on_2_7 = realize(config, "2.7")
        on_2_8 = realize(config, "2.8")
    assert on_2_7.devices[0].space == realize(config, "2.7").devices[0].space
    assert on_2_8.devices[0].space != on_2_7.devices[0].space  # the seeded change


# -- removals: compat entries that name them, configs that set them ----------------------


def test_an_entry_naming_a_removed_property_is_a_problem_naming_it() -> None:
    """hw_compat_5_0 sets virtio-pci's x-disable-legacy-check, which the candidate
    removes: one problem, naming the entry, the machine types, the property and
    every device type QEMU would abort creating."""
    cc = apply_candidate(load_candidate(CANDIDATES / "seeded" / "compat-property-removed.toml"))
    assert not cc.problems  # the file itself is well formed: the gate finds it
    (problem,) = broken_entries(cc)
    virtio = tuple(d for d in cc.catalogue.concrete if cc.catalogue.is_a(d, "virtio-pci"))
    assert problem.kind == "entry-property-removed"
    details = dict(problem.details)
    assert details["entry"] == "hw_compat_5_0"
    assert details["machine_types"] == ["1.4", "5.0"]
    assert (details["driver"], details["property"], details["value"]) == (
        "virtio-pci", "x-disable-legacy-check", "true",
    )  # fmt: skip
    assert tuple(details["drivers"]) == virtio
    assert "machine types up to 5.0 (guests of 1.4 … 5.0)" in problem.message
    # Only the machine types the gate checks, and only the ones still offered.
    (newer,) = broken_entries(cc, baselines=[Version.parse(v) for v in ("4.2", "5.0", "9.0")])
    assert dict(newer.details)["machine_types"] == ["4.2", "5.0"]
    assert broken_entries(cc, baselines=[Version.parse("5.1")]) == ()
    assert broken_entries(cc, drivers=("e1000",)) == ()


def test_an_entry_whose_value_no_longer_parses_is_a_problem() -> None:
    """virtio-serial's vectors narrowed to uint16: pc_compat_1_4's vectors=0xFFFFFFFF
    cannot be applied on the candidate; its other entries still can."""
    spec = {"type": "uint16", "default": 2}
    data = {
        "version": "11.2",
        "types": {"virtio-serial-pci-base": {"properties": {"vectors": spec}}},
    }
    cc = apply_candidate(parse_candidate(data, "<test>"))
    (problem,) = broken_entries(cc)
    details = dict(problem.details)
    assert problem.kind == "entry-value-refused"
    assert (details["entry"], details["property"], details["value"]) == (
        "pc_compat_1_4", "vectors", "0xFFFFFFFF",
    )  # fmt: skip
    assert details["machine_types"] == ["1.4", "1.4"]
    # The entry names virtio-serial-pci: the -transitional types are its siblings.
    assert details["drivers"] == ["virtio-serial-pci"]
    assert "out of range" in problem.message and "refuses to start" in problem.message


def test_an_entry_already_broken_in_the_released_history_is_not_the_candidates() -> None:
    """QEMU 10.1 removed migrate-extra, which hw_compat_2_4 still sets: an 11.2 that
    changes nothing about it is not blamed for that."""
    cc = apply_candidate(load_candidate(CANDIDATES / "good" / "11.2-empty.toml"))
    assert broken_entries(cc, drivers=builtin_catalogue().concrete) == ()


def test_the_cli_reports_a_broken_entry_in_text_and_json(tmp_path: Path) -> None:
    record = tmp_path / "verdict.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "compatlab", "gate", "--profile", "ci", "--fail-fast",
            "--candidate", str(CANDIDATES / "seeded" / "compat-property-removed.toml"),
            "--record", str(record),
        ],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    said = "compat entry hw_compat_5_0 virtio-pci.x-disable-legacy-check=true"
    assert f"gate: FAIL (data problem; the report follows): (entry-property-removed) {said}" in (
        proc.stderr
    )
    assert f"problem (entry-property-removed): {said}" in proc.stdout
    verdict = json.loads(record.read_text(encoding="utf-8"))
    (problem,) = verdict["problems"]
    assert verdict["verdict"] == "fail"
    assert problem["entry"] == "hw_compat_5_0" and problem["machine_types"] == ["1.4", "5.0"]
    assert (
        problem["property"] == "x-disable-legacy-check" and "virtio-net-pci" in problem["drivers"]
    )


@pytest.mark.parametrize(
    ("driver", "prop", "version"),
    [("virtio-net-pci", "host_mtu", "11.1"), ("virtio-rng-pci", "x-disable-legacy-check", "10.0")],
)
def test_the_gate_draws_properties_that_are_not_guest_visible(
    driver: str, prop: str, version: str
) -> None:
    """The older version's configs may set every property a user can set, not only
    the guest-visible ones (host_mtu sizes virtio-net's config space unflagged)."""
    from hypothesis import find, settings

    from strategies.suite import valid_configs

    v = Version.parse(version)
    assert not builtin_catalogue().properties(driver, v)[prop].guest_visible
    # Raises NoSuchExample when no drawn config sets the property.
    find(
        valid_configs([v], drivers=(driver,)),
        lambda c: any(name == prop for d in c.devices for name, _ in d.properties),
        settings=settings(max_examples=2000, database=None),
    )


def test_a_config_setting_a_removed_property_is_refused_by_the_candidate() -> None:
    """The runs find the removal too: a config an older version ran with
    x-disable-legacy-check set is refused by the candidate."""
    cc = apply_candidate(load_candidate(CANDIDATES / "seeded" / "compat-property-removed.toml"))
    verdict = candidate_gate(
        cc, profile="ci", drivers=("virtio-rng-pci",), invariants=["machine-type-upgrade"],
        baselines=[Version.parse(v) for v in ("9.2", "10.0", "10.1", "10.2", "11.0", "11.1")],
    )  # fmt: skip
    refused = [f for f in verdict.failures if "x-disable-legacy-check" in f.failure.detail]
    assert refused, [f.failure.detail for f in verdict.failures]
    assert all("refuses" in f.failure.detail for f in refused)


# -- which subtype history a candidate's property replaces -------------------------------


def test_a_changed_property_leaves_a_subtype_that_fixes_it_alone() -> None:
    """virtio-pci's disable-legacy changes default: the -transitional types, which
    have no such property (their instance_init fixes the interface), keep their own
    behaviour on the candidate and on every older machine type, and the entry for
    virtio-pci reaches virtio-net-pci only."""
    cc = apply_candidate(load_candidate(CANDIDATES / "good" / "disable-legacy-on.toml"))
    cat, n = cc.catalogue, cc.version
    fixed = {"virtio-net-pci-transitional": "off", "virtio-net-pci-non-transitional": "on"}
    for driver, value in fixed.items():
        assert "disable-legacy" not in cat.properties(driver, n)
        for machine in ("2.6", "11.1", "11.2"):
            u = Version.parse(machine)
            assert cat.all_values_at(driver, u, as_of=n)["disable-legacy"] == value, machine
    want = {"2.6": "off", "2.7": "auto", "11.1": "auto", "11.2": "on"}
    for machine, value in want.items():
        got = cat.all_values_at("virtio-net-pci", Version.parse(machine), as_of=n)
        assert got["disable-legacy"] == value, machine


def test_an_introduced_property_replaces_the_history_on_subtypes() -> None:
    """virtio-rng-pci's vectors, introduced in 7.2 on virtio-rng-pci-base: as of 7.1
    every variant carried its history as fixed behaviour (no MSI-X); on the
    candidate all three inherit the new property, settable, with its default."""
    cc = apply_candidate(load_candidate(CANDIDATES / "good" / "rng-vectors.toml"))
    cat, n = cc.catalogue, cc.version
    for driver in (
        "virtio-rng-pci",
        "virtio-rng-pci-transitional",
        "virtio-rng-pci-non-transitional",
    ):
        assert all(p.internal for p in cc.base.types[driver].properties["vectors"])
        assert "vectors" not in cat.types[driver].properties
        assert cat.properties(driver, n)["vectors"].default == 4294967295
        assert cat.all_values_at(driver, Version.parse("7.1"), as_of=n)["vectors"] == 0


def test_the_disable_legacy_change_without_its_entry_is_rejected() -> None:
    """The same change as good/disable-legacy-on.toml without the hw_compat_11_1
    entry: rejected, on virtio-net-pci only (the -transitional types do not change)."""
    data = {
        "version": "11.2",
        "types": {"virtio-pci": {"properties": {"disable-legacy": {"default": "on"}}}},
    }
    cc = apply_candidate(parse_candidate(data, "<test>"))
    drivers = ("virtio-net-pci", *TRANSITIONAL)
    verdict = candidate_gate(
        cc, profile="ci", drivers=drivers, baselines=[Version.parse("11.1")],
        invariants=["machine-type-upgrade"],
    )  # fmt: skip
    assert {f.driver for f in verdict.failures} == {"virtio-net-pci"}
    said = [line for f in verdict.failures for line in f.explanation.lines]
    assert any("virtio-net-pci.disable-legacy changed auto → on" in line for line in said), said


# -- bad candidate files: exit 2, one line --------------------------------------------------

BAD = {
    "not-toml": ("version = ", "not valid TOML"),
    "no-version": ('doc = "x"\n', "missing 'version'"),
    "unknown-key": ('version = "11.2"\nfoo = 1\n', "unknown key 'foo'"),
    "not-newer": ('version = "9.0"\n', "must be newer than its base 11.1"),
    "unknown-base": ('version = "11.2"\nbase = "3.7"\n', "base 3.7 is not a version"),
    "bad-version": ('version = "ten"\n', "unknown emulator version 'ten'"),
    "bad-default": (
        'version = "11.2"\n[types.virtio-pci.properties.page-per-vq]\ndefault = "maybe"\n',
        "expected on or off",
    ),
    "new-property-without-type": (
        'version = "11.2"\n[types.e1000.properties.turbo]\ndefault = true\n',
        "a new property needs a type",
    ),
    "history-rewritten": (
        'version = "11.2"\n[types.e1000.properties.turbo]\ntype = "bool"\nsince = "2.0"\n',
        "can only add what appears in 11.2",
    ),
    "unknown-builder": ('version = "11.2"\n[types.flux]\nparent = "pci-device"\n', "flux"),
    "compat-not-a-list": ('version = "11.2"\ncompat = 3\n', "array of tables"),
    "compat-row-incomplete": (
        'version = "11.2"\n[[compat]]\ndriver = "e1000"\n',
        "compat entry 1: missing",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_candidate_file_is_exit_2(name: str, tmp_path: Path) -> None:
    text, said = BAD[name]
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "compatlab", "gate", "--candidate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("compatlab: error:")]
    assert len(lines) == 1 and said in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_names_the_missing_entry(tmp_path: Path) -> None:
    record = tmp_path / "verdict.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "compatlab", "gate", "--profile", "ci", "--fail-fast",
            "--candidate", str(CANDIDATES / "seeded" / "net-vectors-entry-wrong-version.toml"),
            "--record", str(record),
        ],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert (
        "virtio-net-pci.vectors changed 4294967295 → 6 in 11.2; versions ≤ 11.1 need a "
        "history entry vectors=4294967295" in proc.stdout
    )
    assert "minimal config: -device virtio-net-pci,id=dev0" in proc.stdout
    assert '"verdict": "fail"' in record.read_text(encoding="utf-8")


def test_cli_says_the_first_failure_before_it_shrinks() -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "compatlab", "gate", "--profile", "ci", "-n", "2",
            "--candidate", str(CANDIDATES / "seeded" / "rng-vectors-no-entry.toml"),
            "--baseline", "7.0..7.1", "--invariant", "machine-type-upgrade",
        ],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("gate: FAIL (first failing"))
    assert "machine-type-upgrade 7.1 → 7.2: virtio-rng-pci" in lines[first]
    assert "missing: virtio-rng-pci.vectors is new in 7.2" in lines[first + 1]
    shrinking = lines.index(
        "gate: shrinking 1 counterexample(s), one per cause, for 2 failing run(s)"
    )
    assert first < shrinking
    # One block for the two runs that share the counterexample.
    assert proc.stdout.count("FAIL machine-type-upgrade") == 1
    assert "also fails from 7.0 (same explanation)" in proc.stdout
    assert "2 failing run(s), 1 shrunk" in proc.stdout


def test_cli_refuses_both_gates_at_once() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "compatlab", "gate", "--candidate", "x.toml",
         "--baseline-binary", "7.2", "--candidate-binary", "10.0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "not several" in proc.stderr


def test_cli_json_verdict_carries_the_register_diff() -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "compatlab", "gate", "--profile", "ci", "--fail-fast",
            "--format", "json",
            "--candidate", str(CANDIDATES / "seeded" / "ext-tag-no-entry.toml"),
        ],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    verdict = json.loads(proc.stdout)
    assert verdict["verdict"] == "fail" and verdict["candidate"] == "9.2"
    (failure,) = verdict["failures"]
    assert any("x-pcie-ext-tag" in line for line in failure["explanation"])
    fields = [r["field"] for r in failure["registers"]]
    assert any("PCI Express capability" in f for f in fields), fields
    assert {"kind": "entry", "driver": failure["driver"], "prop": "x-pcie-ext-tag"} in failure[
        "causes"
    ]
    assert failure["shrunk"] and failure["shared_from"] is None and verdict["shrinks"] == 1


def test_cli_unknown_driver_is_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "compatlab", "gate", "--drivers", "e1001",
         "--candidate", str(CANDIDATES / "good" / "11.2-empty.toml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "did you mean 'e1000'" in proc.stderr, proc.stderr


# -- QEMU's own releases as candidates --------------------------------------------------------

RELEASES = [str(v) for v in builtin_catalogue().versions[1:]]


@pytest.mark.parametrize("release", RELEASES)
def test_a_release_written_as_a_candidate_gives_back_the_catalogue(release: str) -> None:
    """release_candidate(N) is what a candidate file for N would say; applied to the
    release before it, N and every older machine type on N see the catalogue's values."""
    full = builtin_catalogue()
    n = Version.parse(release)
    cc = apply_candidate(release_candidate(full, n), full)
    # The one problem a release may have: the machine types it deleted.
    deletes = any(r.release == n for r in full.removals)
    assert [p.kind for p in cc.problems] == (["machine-type-removed"] if deletes else [])
    cat = cc.catalogue
    assert cat.machine_types(n) == full.machine_types(n)
    for driver in cat.concrete:
        if not cat.types[driver].exists_in(n):
            continue
        props = full.properties(driver, n)
        assert set(cat.properties(driver, n)) == set(props)
        assert cat.all_values_at(driver, n) == full.all_values_at(driver, n), driver
        for u in (v for v in full.versions if v <= n):
            got, want = (
                cat.all_values_at(driver, u, as_of=n),
                full.all_values_at(driver, u, as_of=n),
            )
            assert {p: got[p] for p in props} == {p: want[p] for p in props}, (driver, u)


@pytest.mark.parametrize("release", RELEASES)
def test_the_gate_rejects_exactly_the_releases_with_known_findings(release: str) -> None:
    """Every QEMU release of the catalogue, gated as a candidate on the one before:
    it fails exactly where corpora/findings.toml records a compat break QEMU made in
    that release (the failure on a device the finding covers) or where the release
    deleted machine types (data/machines.toml: a data problem of the candidate)."""
    full = builtin_catalogue()
    n = Version.parse(release)
    findings = [
        f for f in load_findings(str(ROOT / "corpora" / "findings.toml")) if f.changed_in == n
    ]
    deletes = any(r.release == n for r in full.removals)
    cc = apply_candidate(release_candidate(full, n), full)
    verdict = candidate_gate(cc, profile="dev", fail_fast=True)
    kinds = [p["kind"] for p in verdict.problems]
    # A fail-fast gate stops at its first data problem: a deletion of machine types
    # (data/machines.toml), or a compat entry the release broke (it removed a
    # property the entry sets).
    assert "machine-type-removed" in kinds if deletes else "machine-type-removed" not in kinds
    assert verdict.passed == (not findings and not deletes), (
        [f.explanation.lines for f in verdict.failures],
        [p["message"] for p in verdict.problems],
    )
    if deletes:
        # gate the rest as if the release had kept its machine types
        cc = apply_candidate(
            dataclasses.replace(release_candidate(full, n), oldest_machine=None), full
        )
        verdict = candidate_gate(cc, profile="dev", fail_fast=True)
        assert verdict.passed == (not findings), (
            [f.explanation.lines for f in verdict.failures],
            [p["message"] for p in verdict.problems],
        )
    with using_catalogue(cc.catalogue):
        for f in verdict.failures:
            assert any(k._covers(f.driver) for k in findings), (f.driver, f.explanation.lines)
        # A compat entry the release broke (it removed a property the entry sets).
        for p in verdict.problems:
            for driver in p.get("drivers", ()):
                assert any(k._covers(driver) for k in findings), (driver, p["message"])


def test_workers_give_the_same_verdict() -> None:
    cc = apply_candidate(load_candidate(CANDIDATES / "seeded" / "rng-vectors-default-change.toml"))
    baselines = [Version.parse(v) for v in ("9.2", "10.0")]
    one = candidate_gate(cc, profile="dev", baselines=baselines)
    two = candidate_gate(cc, profile="dev", baselines=baselines, workers=2)
    assert (one.runs, one.examples) == (two.runs, two.examples)
    assert [f.to_json() | {"seconds": 0} for f in one.failures] == [
        f.to_json() | {"seconds": 0} for f in two.failures
    ]
    # A changed default shows only in the machine-type view, from both baselines.
    assert {(f.invariant, f.versions[0]) for f in one.failures} == {
        ("machine-type-upgrade", "9.2"),
        ("machine-type-upgrade", "10.0"),
    }


# -- one shrunk counterexample per cause ------------------------------------------------


def _minimal(config: tuple[str, ...]) -> bool:
    """What the gate's configs shrink towards: one device, no explicit property."""
    return len(config) == 1 and parse_device_string(config[0]).properties == ()


def test_failures_of_one_cause_share_one_shrunk_counterexample() -> None:
    """Five baselines fail for one missing entry: one run shrinks, the other four
    replay its counterexample on their own versions and say whose it is."""
    cc = apply_candidate(load_candidate(CANDIDATES / "seeded" / "rng-vectors-no-entry.toml"))
    baselines = [Version.parse(v) for v in ("6.0", "6.1", "6.2", "7.0", "7.1")]
    verdict = candidate_gate(
        cc, profile="ci", baselines=baselines, invariants=["machine-type-upgrade"]
    )
    assert not verdict.passed and verdict.runs == 5
    assert verdict.shrinks == 1
    first, *rest = verdict.failures
    assert [f.versions for f in verdict.failures] == [(v, "7.2") for v in ("7.1", "7.0", "6.2", "6.1", "6.0")]  # fmt: skip
    assert first.shrunk and first.shared_from is None
    assert _minimal(first.failure.config)
    for f in rest:
        assert not f.shrunk and f.shared_from == first.outcome.task.label
        assert f.failure.config == first.failure.config
        assert f.to_json()["shared_from"] == first.outcome.task.label
    for f in verdict.failures:
        assert f.explanation.lines == first.explanation.lines
        assert "virtio-rng-pci.vectors is new in 7.2" in f.explanation.lines[0]


def test_two_causes_keep_two_counterexamples_in_one_process_or_two() -> None:
    """virtio-net's vectors entry misses both -transitional types: two missing
    entries, two shrunk counterexamples, each shared only by its own cause's runs;
    two processes give the same verdict as one."""
    cc = apply_candidate(
        load_candidate(CANDIDATES / "seeded" / "net-vectors-entry-misses-transitional.toml")
    )
    one = candidate_gate(cc, profile="ci", invariants=["machine-type-upgrade"])
    assert {f.driver for f in one.failures} == set(TRANSITIONAL)
    assert one.shrinks == 2
    for driver in TRANSITIONAL:
        mine = [f for f in one.failures if f.driver == driver]
        (shrunk,) = [f for f in mine if f.shrunk]
        assert _minimal(shrunk.failure.config)
        assert all(f.failure.config == shrunk.failure.config for f in mine)
        assert all(f.shared_from == shrunk.outcome.task.label for f in mine if f is not shrunk)
        assert all(f"{driver}.vectors changed" in f.explanation.lines[0] for f in mine)
    two = candidate_gate(cc, profile="ci", invariants=["machine-type-upgrade"], workers=2)
    assert (one.runs, one.examples, one.shrinks) == (two.runs, two.examples, two.shrinks)
    assert [f.to_json() | {"seconds": 0} for f in one.failures] == [
        f.to_json() | {"seconds": 0} for f in two.failures
    ]


def test_a_gate_reports_its_first_failure_before_it_shrinks() -> None:
    cc = apply_candidate(load_candidate(CANDIDATES / "seeded" / "rng-vectors-no-entry.toml"))
    events: list[tuple[str, object]] = []
    verdict = candidate_gate(
        cc,
        profile="ci",
        baselines=[Version.parse("7.0"), Version.parse("7.1")],
        invariants=["machine-type-upgrade"],
        first_failure=lambda f: events.append(("first", f)),
        shrinking=lambda causes, failing: events.append(("shrinking", (causes, failing))),
    )
    assert [kind for kind, _ in events] == ["first", "shrinking"]
    first = events[0][1]
    assert isinstance(first, GateFailure) and not first.shrunk
    assert first.explanation.lines == verdict.failures[0].explanation.lines
    assert events[1][1] == (1, 2)


def test_a_removed_device_type_fails_the_whole_gate_without_an_error() -> None:
    """A chain through the candidate that removed e1000 cannot carry an e1000 guest:
    it is not planned (it would draw no config and error), and the rest fail."""
    cc = apply_candidate(load_candidate(CANDIDATES / "seeded" / "e1000-removed.toml"))
    baselines = [Version.parse(v) for v in ("9.2", "10.0")]
    tasks = gate_tasks(candidate_ref(cc), baselines=baselines, profile="ci")
    assert all("11.2" not in t.versions[:-1] for t in tasks if t.drivers == ("e1000",))
    verdict = candidate_gate(cc, profile="ci", baselines=baselines)
    assert not verdict.passed and verdict.complete and verdict.runs == len(tasks)
    assert {f.driver for f in verdict.failures} == {"e1000"}
    assert all("refuses" in f.failure.detail for f in verdict.failures)


def test_an_inherited_break_does_not_hide_a_new_one() -> None:
    """From 9.0, every nvme already differs on 11.1 (QEMU's 9.1 change). An 11.2 that
    also changes nvme's MSI-X table size without an entry is still rejected there:
    a violation is excused only when the candidate realizes exactly what the base's
    newest release does."""
    data = {"version": "11.2", "types": {"nvme": {"properties": {"msix_qsize": {"default": 32}}}}}
    cc = apply_candidate(parse_candidate(data, "<test>"))
    verdict = candidate_gate(
        cc, profile="ci", drivers=("nvme",), baselines=[Version.parse("9.0")], fail_fast=True
    )
    assert not verdict.passed
    said = [line for f in verdict.failures for line in f.explanation.lines]
    assert any("nvme.msix_qsize changed 65 → 32 in 11.2" in line for line in said), said


@pytest.mark.parametrize(
    ("release", "code", "drivers"),
    # 9.1 also removed virtio-blk's scsi, which hw_compat_2_4 sets (a problem found
    # before anything runs, test_the_gate_rejects_exactly_the_releases_...): on nvme
    # alone, the run that fails shows its registers.
    [("9.1", 1, ["--drivers", "nvme"]), ("9.2", 0, [])],
)
def test_cli_gates_a_release_of_the_catalogue(release: str, code: int, drivers: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "compatlab", "gate", "--release", release, "--profile", "dev",
         "--baseline", "9.0", "-n", "2", *drivers],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == code, proc.stdout + proc.stderr
    if code:
        # 9.1 deleted machine types 2.0 .. 2.3 and changed nvme without compat
        assert "problem (machine-type-removed): 9.1 offers no machine type older than 2.4" in (
            proc.stdout
        )
        assert "nvme: behaviour _deverr_init changed off → on in 9.1" in proc.stdout
        assert "wmask   0x88 capability area: PCI Express capability at 0x80 + 0x08" in proc.stdout


def test_a_retyped_property_starts_a_new_variant() -> None:
    """Changing a property's type (as intel-hda's msi went from a number to on/off/auto)
    starts a variant in the candidate; released versions keep the old one."""
    data = {
        "version": "11.2",
        "types": {
            "virtio-net-pci-base": {"properties": {"vectors": {"type": "uint16", "default": 3}}}
        },
    }
    cc = apply_candidate(parse_candidate(data, "<test>"))
    cat = cc.catalogue
    old, new = Version.parse("11.1"), Version.parse("11.2")
    assert cat.properties("virtio-net-pci", old)["vectors"].type.kind == "uint32"
    assert cat.properties("virtio-net-pci", new)["vectors"].type.kind == "uint16"
    assert cat.default("virtio-net-pci", "vectors", new) == 3
    verdict = candidate_gate(
        cc, profile="ci", drivers=("virtio-net-pci",), baselines=[old], fail_fast=True
    )
    assert not verdict.passed
