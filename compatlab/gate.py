"""Release gating across real emulator binaries.

``binary_gate`` compares two real QEMU binaries on the machine types both
offer: Hypothesis generates configs (devices and guest-visible properties both
releases have), both binaries realize them on the same machine type, and any
guest-visible difference — a refusal on one side only, a config-space byte, or
what a guest reads back after writing all-ones and zeros (masks, BAR sizes) —
fails the gate, with the config shrunk to a minimal one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        }


def _first_diff(a: str, b: str) -> int:
    return next(i for i in range(0, len(a), 2) if a[i : i + 2] != b[i : i + 2]) // 2


def compare_records(base: CaptureRecord, cand: CaptureRecord) -> dict[str, Any] | None:
    """The first guest-visible difference between two captures of one config, or None."""
    common = {"machine": base.machine, "config": list(base.devices)}
    if (base.error is None) != (cand.error is None):
        refused, by = (base, "baseline") if base.error else (cand, "candidate")
        return {**common, "what": f"only the {by} refuses: {refused.error}"}
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
    max_examples: int = 25,
    derandomize: bool = True,
) -> GateVerdict:
    """Run the gate; the verdict holds the shrunk difference, if any."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from strategies.suite import valid_configs

    examples = 0

    @settings(
        max_examples=max_examples,
        derandomize=derandomize,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def search(data: st.DataObject) -> None:
        nonlocal examples
        examples += 1
        machine = data.draw(st.sampled_from(machines), label="machine")
        config: Config = data.draw(
            valid_configs((machine, baseline.version, candidate.version), max_devices=3),
            label="config",
        )
        a = capture_config(baseline, machine, config, probe=True)
        b = capture_config(candidate, machine, config, probe=True)
        diff = compare_records(a, b)
        if diff is not None:
            raise Difference(diff)

    difference = None
    try:
        search()
    except Difference as exc:
        difference = exc.detail
    return GateVerdict(
        baseline.release, candidate.release, tuple(map(str, machines)), examples, difference
    )


def save_verdict(verdict: GateVerdict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(verdict.to_json(), indent=2, sort_keys=True) + "\n")
