"""The binary release gate: QEMU 7.2 against 10.0 on the machine types both offer.

Whatever the gate finds is a real finding; it is recorded, shrunk, in
corpora/gate/7.2-10.0.json, and this test asserts that the live verdict is still
the recorded one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compatlab.gate import compare_records
from compatlab.oracles.capture import CaptureRecord
from tests.conftest import require_qemu

RECORDED = Path(__file__).resolve().parent.parent / "corpora" / "gate" / "7.2-10.0.json"


def _record(
    space: str, probe: tuple[str, str] | None = None, error: str | None = None
) -> CaptureRecord:
    return CaptureRecord(
        "7.2",
        "7.2.22",
        "5.0",
        ("e1000,addr=03.0",),
        None if error else (space,),
        error,
        None if probe is None else (probe,),
    )


def test_compare_records_finds_bytes_probes_and_refusals() -> None:
    same = "00" * 256
    assert compare_records(_record(same, (same, same)), _record(same, (same, same))) is None
    moved = "00" * 4 + "01" + "00" * 251
    assert compare_records(_record(same), _record(moved))["offset"] == 4  # type: ignore[index]
    probe = compare_records(_record(same, (same, same)), _record(same, (moved, same)))
    assert probe is not None and "all-ones" in probe["what"]
    refused = compare_records(_record(same), _record(same, error="nope"))
    assert refused is not None and "only the candidate refuses" in refused["what"]
    assert refused["refused_by"] == "candidate"
    newer = compare_records(_record(same, error="nope"), _record(same))
    assert newer is not None and newer["refused_by"] == "baseline"


@pytest.mark.qemu
def test_gate_7_2_against_10_0_matches_the_recorded_finding() -> None:
    from compatlab.gate import binary_gate

    baseline, candidate = require_qemu("7.2"), require_qemu("10.0")
    recorded = json.loads(RECORDED.read_text())
    machines = [m for m in baseline.machines if m in candidate.machines]
    assert [str(m) for m in machines] == recorded["machines"]
    verdict = binary_gate(baseline, candidate, machines, max_examples=recorded["per_type"])
    assert verdict.to_json()["verdict"] == recorded["verdict"]
    live = {d["driver"]: d for d in verdict.differences}
    kept = {d["driver"]: d for d in recorded["differences"]}
    assert set(live) == set(kept)
    for driver, diff in kept.items():
        for key in ("machine", "config", "offset", "what"):
            assert live[driver][key] == diff[key], (driver, key)
    noted = {d["driver"] for d in verdict.newly_accepted}
    assert noted == {d["driver"] for d in recorded["newly_accepted"]}
