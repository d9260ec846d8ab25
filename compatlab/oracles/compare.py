"""Compare the reference model with what real QEMU did (``model-matches-qemu``).

A capture made by binary B on machine type ``pc-i440fx-M`` corresponds to the
model on version B with defaults from version M (DESIGN.md §2: the machine type
is QEMU's built-in compat hint). Device and property existence are judged at B,
unset values at M.
"""

from __future__ import annotations

from dataclasses import dataclass

from compatlab.catalogue import Catalogue
from compatlab.config import Config, parse_device_string
from compatlab.errors import CompatlabError
from compatlab.oracles.capture import CaptureRecord
from compatlab.realize import realize
from compatlab.resolve import dump_hints


@dataclass(frozen=True, slots=True)
class Verdict:
    agrees: bool
    detail: str = ""
    applicable: bool = True


def byte_diff(expected: bytes, actual: bytes, limit: int = 8) -> str:
    diffs = [
        f"{i:#04x}: qemu {e:02x} model {a:02x}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True))
        if e != a
    ]
    more = f" (+{len(diffs) - limit} more)" if len(diffs) > limit else ""
    return "; ".join(diffs[:limit]) + more


def check_record(
    record: CaptureRecord, catalogue: Catalogue | None = None, *, via_hints: bool = False
) -> Verdict:
    """Does the model do what QEMU did for this capture?

    With ``via_hints``, the machine type is played by compat hints: the config is
    dumped on the machine type's version and loaded on the binary's version
    (DESIGN.md §2). A config that the machine type's version could not have run
    (a device or property it did not have yet) has no hints to dump: the verdict
    is then not applicable.
    """
    config = Config(tuple(parse_device_string(d) for d in record.devices))
    try:
        if via_hints:
            try:
                hints = dump_hints(config, record.machine, catalogue=catalogue)
            except CompatlabError:
                return Verdict(True, "not dumpable on the machine type's version", False)
            realized = realize(config, record.binary, hints=hints, catalogue=catalogue)
        else:
            realized = realize(
                config, record.binary, defaults_at=record.machine, catalogue=catalogue
            )
    except CompatlabError as exc:
        if record.error is not None:
            return Verdict(True)
        return Verdict(False, f"model refused ({exc}) but QEMU accepted")
    if record.error is not None:
        return Verdict(False, f"QEMU refused ({record.error}) but the model accepted")
    assert record.config_space is not None
    for dev, text, expected_hex in zip(
        realized.devices, record.devices, record.config_space, strict=True
    ):
        expected = bytes.fromhex(expected_hex)
        if dev.space.config != expected:
            return Verdict(False, f"{text}: {byte_diff(expected, dev.space.config)}")
    return Verdict(True)
