"""``compatlab qemu discover DEVICE``: which properties change config space?

Asks the binary for the device's properties (``-device DRIVER,help``), then
toggles each one through a few values, captures the device with each setting
and reports the offsets that differ from the device with no properties, and the
settings QEMU refuses. It needs no catalogue knowledge of the device.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from compatlab.oracles.capture import capture_singles
from compatlab.oracles.qemu import QemuBinary
from compatlab.versions import Version

_HELP_RE = re.compile(r"^\s+([\w.\-]+)=<([\w\-]+)>(?:\s+-\s+(.*?))?\s*$")
_DEFAULT_RE = re.compile(r"\(default: (.*)\)$")

_TRIALS: dict[str, list[str]] = {
    "bool": ["on", "off"],
    "OnOffAuto": ["on", "off", "auto"],
    "OnOffSplit": ["on", "off", "split"],
    "uint8": ["0", "1", "2", "4", "255"],
    "uint16": ["0", "1", "2", "4", "64", "65535"],
    "uint32": ["0", "1", "2", "4", "8", "31", "32", "64", "2048"],
    "int32": ["-1", "0", "1", "2", "4"],
    "uint64": ["0", "1", "4096"],
    "size": ["0", "4096", "1M"],
}


def device_help(binary: QemuBinary, driver: str) -> list[dict[str, str | None]]:
    """The property list ``-device DRIVER,help`` prints: name, type and default."""
    import os
    import subprocess

    out = subprocess.run(
        # Through the binary's own loader when its tree holds one (QEMU 5.2, 11.1).
        binary.command([str(binary.path), "-device", f"{driver},help"]),
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, **binary.env},
    ).stdout
    rows: list[dict[str, str | None]] = []
    for line in out.splitlines():
        m = _HELP_RE.match(line)
        if m:
            d = _DEFAULT_RE.search(m.group(3) or "")
            rows.append(
                {"name": m.group(1), "type": m.group(2), "default": d.group(1) if d else None}
            )
    return rows


def discover(
    binary: QemuBinary,
    machine: Version,
    driver: str,
    *,
    base: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    base = base or driver
    props = [p for p in device_help(binary, driver) if p["name"] != "addr"]
    trials: list[tuple[str, str]] = []
    for p in props:
        for value in _TRIALS.get(str(p["type"]), []):
            trials.append((str(p["name"]), value))
    strings = [base] + [f"{base},{name}={value}" for name, value in trials]
    records = capture_singles(
        binary,
        machine,
        strings,
        progress=(lambda n: progress(f"{driver}: {n} more configs")) if progress else None,
    )
    reference = records[0]
    if reference.config_space is None:
        raise ValueError(f"QEMU refuses the bare device {base!r}: {reference.error}")
    ref = bytes.fromhex(reference.config_space[0])
    table: dict[str, dict[str, Any]] = {
        str(p["name"]): {**p, "changes": [], "refused": []} for p in props
    }
    for (name, value), rec in zip(trials, records[1:], strict=True):
        row = table[name]
        if rec.config_space is None:
            row["refused"].append(f"{value}: {rec.error}")
            continue
        got = bytes.fromhex(rec.config_space[0])
        offsets = [i for i in range(256) if got[i] != ref[i]]
        if offsets:
            row["changes"].append(f"{value} -> " + ",".join(f"{o:#04x}" for o in offsets[:12]))
    return {
        "driver": driver,
        "binary": binary.release,
        "machine": str(machine),
        "reference": ref.hex(),
        "properties": list(table.values()),
    }
