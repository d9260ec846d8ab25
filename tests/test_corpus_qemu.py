"""The model reproduces every recorded real-QEMU capture (no QEMU needed).

Each corpus file under corpora/qemu/ is one test, named after the file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from compatlab.catalogue import builtin_catalogue
from compatlab.oracles.capture import read_corpus
from compatlab.oracles.compare import check_record
from compatlab.versions import Version

CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "qemu"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "corpus_file" in metafunc.fixturenames:
        files = sorted(CORPUS.rglob("*.jsonl"))
        metafunc.parametrize("corpus_file", files, ids=[str(f.relative_to(CORPUS)) for f in files])


@pytest.mark.corpus
def test_model_reproduces_capture_file(corpus_file: Path) -> None:
    records = list(read_corpus(corpus_file))
    assert records, f"{corpus_file} holds no captures"
    failures = []
    for rec in records:
        verdict = check_record(rec)
        if not verdict.agrees:
            failures.append(f"QEMU {rec.binary} pc-i440fx-{rec.machine}: {verdict.detail}")
    assert not failures, f"{len(failures)}/{len(records)} disagree:\n" + "\n".join(failures[:10])


@pytest.mark.corpus
def test_upgrade_path_reproduces_capture_file(corpus_file: Path) -> None:
    """Hints dumped on the machine type's version and loaded on the binary's version
    give what QEMU gave with that machine type (DESIGN.md §2)."""
    failures = []
    checked = 0
    for rec in read_corpus(corpus_file):
        verdict = check_record(rec, via_hints=True)
        if not verdict.applicable:
            continue
        checked += 1
        if not verdict.agrees:
            failures.append(f"QEMU {rec.binary} pc-i440fx-{rec.machine}: {verdict.detail}")
    assert not failures, f"{len(failures)}/{checked} disagree:\n" + "\n".join(failures[:10])


@pytest.mark.corpus
def test_most_captures_are_checked_through_hints() -> None:
    records = [r for f in sorted(CORPUS.rglob("*.jsonl")) for r in read_corpus(f)]
    applicable = [r for r in records if check_record(r, via_hints=True).applicable]
    upgrades = [r for r in applicable if r.machine != r.binary]
    assert len(applicable) >= 5000
    # machine types 1.4..5.2 on 5.2, 1.4..7.2 on 7.2, 2.4..10.0 on 10.0 and 5.2..11.1
    # on 11.1 appear as upgrades
    assert {r.binary for r in upgrades} == {"5.2", "7.2", "10.0", "11.1"}
    oldest = {
        "5.2": Version(1, 4),
        "7.2": Version(1, 4),
        "10.0": Version(2, 4),
        "11.1": Version(5, 2),
    }
    for binary, first in oldest.items():
        assert min(Version.parse(r.machine) for r in upgrades if r.binary == binary) == first


@pytest.mark.corpus
def test_corpus_is_large_and_covers_every_binary() -> None:
    records = [r for f in sorted(CORPUS.rglob("*.jsonl")) for r in read_corpus(f)]
    assert len(records) >= 3000
    assert {r.binary for r in records} == {"5.2", "7.2", "10.0", "11.1"}
    assert any(r.error for r in records), "the corpus should hold refused configs too"


@pytest.mark.corpus
@pytest.mark.parametrize("kind", ["plain", "writes"])
@pytest.mark.parametrize("binary", ["5.2", "7.2", "10.0", "11.1"])
def test_every_type_was_captured_alone_on_each_machine_type_of_its_binary(
    binary: str, kind: str
) -> None:
    """Each binary's captures hold every device type it has, alone with its example
    properties, on every machine type it offers (data/machines.toml, checked against
    the binaries' own list in tests/test_machine_types.py), started or refused:
    plain and with the write probe."""
    cat = builtin_catalogue()
    release = Version.parse(binary)

    def alone(spec: str) -> tuple[str, frozenset[str]]:
        # The driver and the properties set, but no address (backend names are made
        # unique per config, so their values differ).
        driver, *props = spec.split(",")
        return driver, frozenset(p.partition("=")[0] for p in props) - {"addr"}

    folder = CORPUS / binary / ("writes" if kind == "writes" else "")
    seen = {
        (r.machine, alone(r.devices[0]))
        for f in sorted(folder.glob("*.jsonl"))
        for r in read_corpus(f)
        if len(r.devices) == 1 and r.fault is None
    }
    missing = [
        f"{d} on pc-i440fx-{m}"
        for d in cat.devices(release)
        for m in cat.machine_types(release)
        if (str(m), alone(cat.device(d, release).example or d)) not in seen
    ]
    assert not missing, f"{len(missing)} missing, e.g. {missing[:5]}"


@pytest.mark.corpus
def test_corpus_covers_more_than_one_vcpu_on_every_binary() -> None:
    """Captures made with ``-smp N`` (their ``vcpus``) on every binary, on its own
    machine type and on one whose compat entries pin the queue count (pc-i440fx-5.1;
    11.1 no longer has it, so 5.2 there), each one the model reproduces only with its
    vCPU count: read as one vCPU, every one disagrees."""
    records = [r for f in sorted(CORPUS.rglob("*.jsonl")) for r in read_corpus(f)]
    more = [r for r in records if r.vcpus > 1]
    assert {(r.binary, r.machine) for r in more} >= {
        ("5.2", "5.1"), ("5.2", "5.2"), ("7.2", "5.1"), ("7.2", "7.2"),
        ("10.0", "5.1"), ("10.0", "10.0"), ("11.1", "5.2"), ("11.1", "11.1"),
    }  # fmt: skip
    assert max(r.vcpus for r in more) == 255
    for rec in more:
        assert check_record(rec).agrees
        assert not check_record(dataclasses.replace(rec, vcpus=1)).agrees, rec.devices
