"""The binary gate: do two real QEMU binaries show guests the same hardware?

Compares two binaries on the machine types both offer, device type by device
type: any guest-visible difference — a refusal on one side only, a config-space
byte, or what a guest reads back after writing all-ones and zeros (masks, BAR
sizes) — fails the gate, with the config shrunk to a minimal one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compatlab.config import Config
from compatlab.errors import CheckFailure
from compatlab.oracles.capture import CaptureRecord, capture_config
from compatlab.oracles.qemu import QemuBinary
from compatlab.versions import Version


class Difference(CheckFailure):
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
    differences: tuple[dict[str, Any], ...] = ()
    per_type: int = 0
    newly_accepted: tuple[dict[str, Any], ...] = ()

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
            "differences": list(self.differences),
            "per_type": self.per_type,
            "newly_accepted": list(self.newly_accepted),
        }


def _first_diff(a: str, b: str) -> int:
    return next(i for i in range(0, len(a), 2) if a[i : i + 2] != b[i : i + 2]) // 2


def compare_records(base: CaptureRecord, cand: CaptureRecord) -> dict[str, Any] | None:
    """The first guest-visible difference between two captures of one config, or None."""
    common = {"machine": base.machine, "config": list(base.devices)}
    if (base.error is None) != (cand.error is None):
        refused, by = (base, "baseline") if base.error else (cand, "candidate")
        return {**common, "what": f"only the {by} refuses: {refused.error}", "refused_by": by}
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
    max_examples: int = 2,
    derandomize: bool = True,
    drivers: Sequence[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> GateVerdict:
    """Run the gate device type by device type; the verdict holds each type's shrunk
    difference, if any.

    Every device type both releases have is tried first alone, with only the
    properties it cannot do without, on the oldest common machine type (where the
    most compat entries apply), then on ``max_examples`` generated configs of that
    type with random properties and machine types. Stratifying by type keeps the
    gate from missing a device by chance as the catalogue grows.
    """
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    from compatlab.catalogue import active_catalogue
    from compatlab.config import DeviceSpec
    from strategies.configs import required_pairs
    from strategies.suite import valid_configs

    cat = active_catalogue()
    # The binaries decide which devices and properties exist; a machine type only
    # decides defaults (QEMU accepts a property on any machine type).
    versions = (baseline.version, candidate.version)
    chosen = drivers or [
        d for d in cat.concrete if all(cat.types[d].exists_in(v) for v in versions)
    ]
    examples = 0
    differences: list[dict[str, Any]] = []
    # A config only the baseline refuses has no guest to keep: the candidate may
    # accept more. Noted (once per type), not failed.
    newly_accepted: dict[str, dict[str, Any]] = {}
    for index, driver in enumerate(chosen, start=1):
        alone = Config(
            (DeviceSpec(driver, "dev0", None, tuple(required_pairs(cat, driver, versions[0], 0))),)
        )

        @settings(
            max_examples=max_examples + 1,
            derandomize=derandomize,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            machine=st.sampled_from(machines),
            config=valid_configs(versions, drivers=(driver,), max_devices=2),
        )
        @example(machine=machines[0], config=alone)
        def search(machine: Version, config: Config) -> None:
            nonlocal examples
            examples += 1
            a = capture_config(baseline, machine, config, probe=True)
            b = capture_config(candidate, machine, config, probe=True)
            diff = compare_records(a, b)
            if diff is not None and diff.get("refused_by") == "baseline":
                newly_accepted.setdefault(driver, {"driver": driver, **diff})  # noqa: B023  (runs in this iteration)
            elif diff is not None:
                raise Difference(diff)

        try:
            search()
        except Difference as exc:
            differences.append({"driver": driver, **exc.detail})
        if progress is not None:
            progress(driver, index, len(chosen))
    return GateVerdict(
        baseline.release,
        candidate.release,
        tuple(map(str, machines)),
        examples,
        differences[0] if differences else None,
        tuple(differences),
        max_examples,
        tuple(newly_accepted.values()),
    )


def save_verdict(verdict: GateVerdict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(verdict.to_json(), indent=2, sort_keys=True) + "\n")
