"""The oracle captures what it captured before: recorded configs, captured again
(marker ``qemu``).

``corpora/qemu/<binary>/`` (and its ``writes/``) were recorded by the oracle that
did every port access through the human monitor; today's oracle runs a guest
program instead (:mod:`compatlab.oracles.guest`). A sample of the recorded lines is
captured again from the same binaries, configs as recorded (same device strings,
same addresses, same machine type, a write probe where the line has one), and every
field must be the same: bytes, probe images, refusal text. The sample is every
N-th line of the binary's corpus, N chosen so that ``COMPATLAB_IDENTITY_SAMPLE``
lines (default 120) are taken; configs of one machine type whose addresses do not
clash share a QEMU start (one of its own each if QEMU refuses them together), a
refused or multi-device config gets one of its own.
Lines recorded before crashes were told from refusals (QEMU dying before its
monitor answered, recorded as a refusal) are today's faults, and only that may
differ.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from compatlab.catalogue import builtin_catalogue
from compatlab.oracles.capture import CaptureRecord, _instance_limits, capture_one
from compatlab.oracles.qemu import QemuBinary, Slot, run_batch
from compatlab.versions import Version
from tests.conftest import require_qemu

pytestmark = pytest.mark.qemu

CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "qemu"
SAMPLE = int(os.environ.get("COMPATLAB_IDENTITY_SAMPLE", "120"))


def recorded(binary: str) -> list[dict[str, Any]]:
    """Every recorded line of ``binary``, plain and write-probe captures, in file order."""
    files = sorted((CORPUS / binary).glob("*.jsonl")) + sorted(
        (CORPUS / binary / "writes").glob("*.jsonl")
    )
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line]


def sample(lines: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    stride = max(1, len(lines) // size)
    return lines[::stride][:size]


def _slot(device: str) -> Slot:
    addr = next(p for p in device.split(",") if p.startswith("addr="))[5:]
    slot, _, function = addr.partition(".")
    return Slot(int(slot, 16), int(function or "0", 16))


def _shared_starts(lines: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """One-device lines that read bytes, by machine type and probe, in starts whose
    addresses do not clash, with no more of a kind than a machine may hold."""
    catalogue = builtin_catalogue()
    starts: dict[tuple[str, bool], list[tuple[list[dict[str, Any]], Counter[str]]]]
    starts = defaultdict(list)
    for line in lines:
        (device,) = line["devices"]
        limits = _instance_limits(catalogue, device.split(",")[0])
        for start, kinds in starts[line["machine"], "write_probe" in line]:
            if all(_slot(device) != _slot(o["devices"][0]) for o in start) and all(
                kinds[k] < n for k, n in limits
            ):
                break
        else:
            start, kinds = [], Counter()
            starts[line["machine"], "write_probe" in line].append((start, kinds))
        start.append(line)
        kinds.update(k for k, _ in limits)
    return [start for group in starts.values() for start, _ in group]


def capture_again(binary: QemuBinary, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each line's config captured again, in the order given."""
    again: dict[int, dict[str, Any]] = {}
    alone = [
        line for line in lines if "error" in line or "fault" in line or len(line["devices"]) != 1
    ]
    for line in alone:
        record = capture_one(
            binary, Version.parse(line["machine"]), line["devices"], probe="write_probe" in line
        )
        again[id(line)] = record.to_json()
    shared = [line for line in lines if not any(line is a for a in alone)]
    for start in _shared_starts(shared):
        devices = [line["devices"][0] for line in start]
        probe = "write_probe" in start[0]
        machine = Version.parse(start[0]["machine"])
        result = run_batch(binary, machine, devices, [_slot(d) for d in devices], probe=probe)
        if result.spaces is None:  # they clash (a backend name two sweeps both used)
            for line in start:
                again[id(line)] = capture_one(
                    binary, machine, line["devices"], probe=probe
                ).to_json()
            continue
        probes = result.probes or [None] * len(start)
        for line, space, p in zip(start, result.spaces, probes, strict=True):
            again[id(line)] = CaptureRecord(
                str(binary.version),
                binary.release,
                str(machine),
                tuple(line["devices"]),
                (space.hex(),),
                write_probe=None if p is None else ((p[0].hex(), p[1].hex()),),
            ).to_json()
    return [again[id(line)] for line in lines]


def _without_stderr(line: dict[str, Any]) -> dict[str, Any]:
    """A capture without the end of QEMU's standard error, which names a crash's
    temporary files."""
    return {k: v for k, v in line.items() if k != "stderr"}


def crashed_before_faults_were_told_apart(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """A line recorded before the oracle told crashes from refusals: QEMU died before
    its monitor answered (no config space was read, by either oracle), and the line
    kept its last words, or "QEMU exited without a message", as if it were a refusal.
    Today that is a fault."""
    return (
        "error" in old
        and new.get("fault", "").endswith("before its monitor answered")
        and {k: v for k, v in old.items() if k != "error"}
        == {k: v for k, v in new.items() if k not in ("fault", "stderr")}
    )


@pytest.mark.parametrize("release", sorted(p.name for p in CORPUS.iterdir() if p.is_dir()))
def test_recorded_captures_are_captured_again_byte_for_byte(release: str) -> None:
    binary = require_qemu(release)
    lines = sample(recorded(release), SAMPLE)
    again = capture_again(binary, lines)
    differ = [
        (old, new)
        for old, new in zip(lines, again, strict=True)
        if _without_stderr(old) != _without_stderr(new)
        and not crashed_before_faults_were_told_apart(old, new)
    ]
    assert not differ, (
        f"{len(differ)} of {len(lines)} recorded captures differ; first: "
        f"{json.dumps(differ[0][0])[:300]} vs {json.dumps(differ[0][1])[:300]}"
    )
