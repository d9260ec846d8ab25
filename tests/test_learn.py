"""The catalogue against QEMU's own introspection, and releases learned from binaries.

QEMU's introspection is ground truth for what it can see: property sets, defaults,
and the compat properties of every machine type. Where the catalogue disagrees it
is wrong, unless ``catalogue/data/unmodelled.toml`` says why (reviewed data, not a
filter in a test). Every binary whose release the catalogue knows is checked; a
binary whose release it does not know yet (11.1 today) joins by itself once it does.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from compatlab.catalogue.candidate import (
    apply_candidate,
    as_of,
    candidate_document,
    candidate_from_text,
    release_candidate,
)
from compatlab.catalogue.loader import builtin_catalogue
from compatlab.catalogue.model import Catalogue
from compatlab.oracles.introspect import Introspection, introspect
from compatlab.oracles.learn import (
    SECTIONS,
    blind_defaults,
    candidate_toml,
    compat_disagreements,
    learn,
    machine_versions,
    modelled_props,
    modelled_values,
    property_disagreements,
    summarise,
    unmodelled,
)
from compatlab.oracles.qemu import QemuBinary
from compatlab.versions import Version
from tests.conftest import require_qemu

#: The releases .ci/install-qemu installs.
RELEASES = ("5.2", "7.2", "10.0", "11.1")
#: The releases whose query-machines takes ``compat-props`` (QEMU 5.2 and 7.2 refuse
#: the argument): only they can show the compat values and entries they apply.
COMPAT_RELEASES = ("10.0", "11.1")
FAKE = Path(__file__).resolve().parent / "fake_qemu" / "fake-qemu"


@cache
def _introspect(release: str) -> tuple[QemuBinary, Introspection]:
    binary = require_qemu(release)
    return binary, introspect(binary, builtin_catalogue().types)


def known_binary(release: str) -> tuple[QemuBinary, Introspection]:
    """The binary of ``release`` and its introspection; skipped while the catalogue
    does not know its release."""
    binary = require_qemu(release)
    if binary.version not in builtin_catalogue().versions:
        pytest.skip(f"the catalogue does not know QEMU {binary.version} yet")
    return _introspect(release)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compatlab", *args], capture_output=True, text=True, timeout=300
    )


# -- the catalogue against each binary ---------------------------------------------------------


@pytest.mark.qemu
@pytest.mark.parametrize("release", RELEASES)
def test_property_sets_and_defaults_match_qemu(release: str) -> None:
    binary, intro = known_binary(release)
    cat = builtin_catalogue()
    devices = cat.devices(binary.version)
    found = property_disagreements(cat, intro, binary.version)
    assert not found, summarise(found)
    compared = sum(len(modelled_props(intro, d)) for d in devices)
    assert len(devices) >= 17 and compared > 25 * len(devices)


@pytest.mark.qemu
@pytest.mark.parametrize("release", COMPAT_RELEASES)
def test_compat_values_match_qemu(release: str) -> None:
    """Every property's value on every machine type: QEMU's compat properties applied
    along the QOM ancestry (the virtio backend's too) onto the binary's defaults."""
    binary, intro = known_binary(release)
    assert intro.compat_props, f"QEMU {intro.release} reported no compat properties"
    cat = builtin_catalogue()
    machines = [m for m in machine_versions(intro) if m in cat.versions]
    found = compat_disagreements(cat, intro, binary.version)
    assert not found, summarise(found)
    assert len(machines) >= 10
    sample = modelled_values(intro, "virtio-net-pci", machines[0].machine_type)
    assert len(sample) > 40


@pytest.mark.qemu
def test_which_binaries_report_compat_props() -> None:
    """query-machines takes "compat-props" from QEMU 9.1 on."""
    for release in RELEASES:
        binary, intro = _introspect(release)
        assert intro.compat_props == (binary.version >= Version(9, 1)), release
        if intro.compat_props:
            assert all(v is not None for v in intro.machines.values())


# -- a release learned from its binary -----------------------------------------------------------


def _pairs() -> list[tuple[str, str]]:
    """(base, release): each release that reports its compat entries on the release
    before it."""
    return [(a, b) for a, b in itertools.pairwise(RELEASES) if b in COMPAT_RELEASES]


def _compare(
    learned: Catalogue, curated: Catalogue, intro: Introspection, version: Version
) -> list[str]:
    """Where ``learned`` differs from ``curated`` on ``version``, in what introspection
    sees: device types, property sets, and values on every machine type both know."""
    out: list[str] = []
    if learned.oldest_machine(version) != curated.oldest_machine(version):
        out.append(
            f"oldest machine type: learned {learned.oldest_machine(version)}, "
            f"curated {curated.oldest_machine(version)}"
        )
    if set(learned.devices(version)) != set(curated.devices(version)):
        out.append(f"device types: {set(learned.devices(version)) ^ set(curated.devices(version))}")
    machines = [
        m
        for m in machine_versions(intro)
        if m in learned.versions and m in curated.versions and m <= version
    ]
    for driver in sorted(set(learned.devices(version)) & set(curated.devices(version))):
        ours, theirs = learned.properties(driver, version), curated.properties(driver, version)
        if set(ours) != set(theirs):
            out.append(f"{driver}: properties {sorted(set(ours) ^ set(theirs))}")
        blind = blind_defaults(intro, driver)
        for prop in sorted((set(ours) & set(theirs)) - blind):
            for machine in machines:
                a = learned.default(driver, prop, machine, as_of=version)
                b = curated.default(driver, prop, machine, as_of=version)
                if a != b:
                    out.append(f"{driver}.{prop} on {machine}: learned {a!r}, curated {b!r}")
    return out


@pytest.mark.qemu
@pytest.mark.parametrize(("base", "release"), _pairs(), ids=lambda v: str(v))
def test_learned_release_equals_curated(base: str, release: str) -> None:
    """Learning a release against the catalogue as of the release before it gives a
    candidate that, applied, is the curated catalogue on everything introspection can
    see."""
    binary, intro = known_binary(release)
    assert intro.compat_props, f"QEMU {intro.release} reported no compat entries"
    full = builtin_catalogue()
    base_version = Version.parse(base)
    if base_version not in full.versions:
        pytest.skip(f"the catalogue does not know {base}")
    candidate = learn(as_of(full, base_version), intro, binary.version)
    text = candidate_toml(candidate)
    parsed = candidate_from_text(text, f"<learned {release}>")
    assert candidate_document(parsed) == candidate_document(candidate)
    applied = apply_candidate(parsed, full)
    # The one problem a real release may have: machine types it no longer offers
    # (beyond those the release before it had already deleted).
    deletes = binary.machines[0] > full.oldest_machine(base_version)
    assert [p.kind for p in applied.problems] == (["machine-type-removed"] if deletes else [])
    assert candidate.oldest_machine == (binary.machines[0] if deletes else None)
    differences = _compare(applied.catalogue, full, intro, binary.version)
    assert not differences, "\n".join(differences)


@pytest.mark.qemu
def test_learn_cli_writes_a_candidate_the_gate_takes(tmp_path: Path) -> None:
    require_qemu("10.0")
    out = tmp_path / "10.0.toml"
    proc = run("qemu", "learn", "10.0", "--base", "9.2", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.startswith('version = "10.0"\nbase = "9.2"\n')
    proc = run("gate", "--candidate", str(out), "--drivers", "e1000", "--fail-fast")
    assert proc.returncode in (0, 1), proc.stderr
    assert "gate: PASS" in proc.stdout + proc.stderr or "gate: FAIL" in proc.stdout + proc.stderr


# -- without a binary --------------------------------------------------------------------------


def test_unmodelled_data_is_reviewed() -> None:
    """Every entry of data/unmodelled.toml says why, in one of the known sections."""
    table = unmodelled()
    assert set(table) == set(SECTIONS)
    assert table["properties"]["pci-device"]["addr"]
    for section in table.values():
        for props in section.values():
            assert all(len(why) > 20 for why in props.values())


@pytest.mark.parametrize("version", ["2.7", "4.0", "9.1", "10.0"])
def test_candidate_toml_reads_back(version: str) -> None:
    """candidate_toml writes what candidate_from_text reads back, for every kind of
    change a release has (new types, retyped and removed properties, entries)."""
    candidate = release_candidate(builtin_catalogue(), Version.parse(version))
    parsed = candidate_from_text(candidate_toml(candidate))
    assert candidate_document(parsed) == candidate_document(candidate)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["9.9"], "no QEMU 9.9 binary"),
        (["/etc/passwd"], "not an executable file"),
        (["/bin/true"], "not a QEMU binary"),
        (["/nonexistent/qemu"], "not an executable file"),
        (["10.0", "--base", "10.0"], ""),
        (["10.0", "-o", "/proc/version/x"], "-o /proc/version/x"),
    ],
    ids=["unknown-version", "not-executable", "not-qemu", "missing", "base-not-older", "output"],
)
def test_learn_bad_input_exits_2(args: list[str], message: str) -> None:
    proc = run("qemu", "learn", *args)
    if proc.returncode != 2 and "no QEMU 10.0 binary" in proc.stderr:
        pytest.skip("needs QEMU 10.0")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("compatlab: error: ")
    assert message in lines[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fake QEMU needs Linux")
@pytest.mark.parametrize("mode", ["crash-start", "ok", "garbage", "exit-zero"])
def test_learn_oracle_error_exits_3(tmp_path: Path, mode: str) -> None:
    """A QEMU that crashes or answers introspection with nonsense is an oracle error."""
    fake = tmp_path / f"qemu-10.0-{mode}"
    fake.symlink_to(FAKE)
    proc = run("qemu", "learn", str(fake))
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("compatlab: oracle error: QEMU 10.0.99")


def test_oldest_machine_is_a_problem_of_the_candidate() -> None:
    """A release that drops machine types leaves their guests without one: a problem
    the gate reports (and fails on), named with the versions it drops."""
    from compatlab.errors import CandidateError

    text = 'version = "10.1"\nbase = "10.0"\noldest_machine = "2.6"\n'
    applied = apply_candidate(candidate_from_text(text))
    (problem,) = applied.problems
    assert problem.kind == "machine-type-removed"
    # 10.0 had deleted 1.4 .. 2.3 already (data/machines.toml)
    assert "2.4 … 2.5 (2 versions)" in problem.message
    assert applied.catalogue.oldest_machine(Version(10, 1)) == Version(2, 6)
    assert applied.catalogue.oldest_machine(Version(10, 0)) == Version(2, 4)
    assert candidate_from_text(text).oldest_machine == Version(2, 6)
    assert not apply_candidate(candidate_from_text(text.replace("2.6", "2.4"))).problems
    with pytest.raises(CandidateError, match=r"oldest_machine 10\.2 is newer"):
        apply_candidate(candidate_from_text(text.replace("2.6", "10.2")))
    with pytest.raises(CandidateError, match=r"older than 2\.4.*cannot bring deleted"):
        apply_candidate(candidate_from_text(text.replace("2.6", "1.4")))
    with pytest.raises(CandidateError, match="oldest_machine must be a string"):
        candidate_from_text(text.replace('"2.6"', "2"))
