"""Compare the reference model with what real QEMU did (``model-matches-qemu``),
and two real binaries with each other (:func:`compare_records`, the binary gate).

A capture made by binary B on machine type ``pc-i440fx-M`` with ``-smp N``
corresponds to the model on version B with defaults from version M (DESIGN.md §2:
the machine type is QEMU's built-in compat hint) and a config giving ``vcpus`` N. Device and property existence are judged at B,
unset values at M.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from compatlab.catalogue import Catalogue
from compatlab.errors import CompatlabError
from compatlab.hints.model import Hints
from compatlab.oracles.capture import CaptureRecord
from compatlab.oracles.guest import probe_sequence
from compatlab.pci.config_space import ConfigSpace
from compatlab.realize import Realized, realize
from compatlab.resolve import dump_hints
from compatlab.versions import Version, active_versions


@dataclass(frozen=True, slots=True)
class Verdict:
    """``applicable`` is False for a capture the model cannot be held to; then
    ``unmodelled`` says whether that is because the catalogue does not cover the
    binary's release or the machine type's version at all."""

    agrees: bool
    detail: str = ""
    applicable: bool = True
    unmodelled: bool = False


def byte_diff(expected: bytes, actual: bytes, limit: int = 8) -> str:
    diffs = [
        f"{i:#04x}: qemu {e:02x} model {a:02x}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True))
        if e != a
    ]
    more = f" (+{len(diffs) - limit} more)" if len(diffs) > limit else ""
    return "; ".join(diffs[:limit]) + more


def model_write_probe(space: ConfigSpace) -> tuple[bytes, bytes]:
    """The model's answer to the guest write probe QEMU gets (see
    :func:`compatlab.oracles.guest.probe_sequence`): bytes read back after writing
    all-ones, and after writing zeros, to each dword in turn."""
    ones = bytearray()
    zeros = bytearray()
    for offset in range(0, 256, 4):
        original = space.read(offset)
        for written, read in probe_sequence(offset, original):
            if written is not None:
                space = space.write(offset, written)
            if read:
                (zeros if written == 0 else ones).extend(space.config[offset : offset + 4])
    return bytes(ones), bytes(zeros)


def check_record(
    record: CaptureRecord,
    catalogue: Catalogue | None = None,
    *,
    via_hints: bool = False,
    realize_fn: Callable[..., Realized] = realize,
    dump_fn: Callable[..., Hints] = dump_hints,
) -> Verdict:
    """Does the model do what QEMU did for this capture?

    With ``via_hints``, the machine type is played by compat hints: the config is
    dumped on the machine type's version and loaded on the binary's version
    (DESIGN.md §2). A config that the machine type's version could not have run
    (a device or property it did not have yet) has no hints to dump, and a capture
    of a crash has no bytes: the verdict is then not applicable.
    """
    if record.fault is not None:
        # QEMU crashed on it: a finding about QEMU, with no bytes to compare.
        return Verdict(True, f"QEMU crashed on it ({record.fault})", False)
    known = active_versions()
    outside = [v for v in (record.binary, record.machine) if Version.parse(v) not in known]
    if outside:
        # A release newer than the catalogue (one that offers old machine types too):
        # nothing to compare with until the catalogue covers it.
        return Verdict(
            True, f"the catalogue does not cover version {outside[0]}", False, unmodelled=True
        )
    config = record.config()
    try:
        if via_hints:
            try:
                hints = dump_fn(config, record.machine, catalogue=catalogue)
            except CompatlabError:
                return Verdict(True, "not dumpable on the machine type's version", False)
            realized = realize_fn(config, record.binary, hints=hints, catalogue=catalogue)
        else:
            realized = realize_fn(
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
    for dev, text, probe in zip(
        realized.devices, record.devices, record.write_probe or (), strict=False
    ):
        ones, zeros = model_write_probe(dev.space)
        for label, got, want in (("ones", ones, probe[0]), ("zeros", zeros, probe[1])):
            if got != bytes.fromhex(want):
                detail = byte_diff(bytes.fromhex(want), got)
                return Verdict(False, f"{text}: after writing {label}: {detail}")
    return Verdict(True)


def _first_diff(a: str, b: str) -> int:
    return next(i for i in range(0, len(a), 2) if a[i : i + 2] != b[i : i + 2]) // 2


def compare_records(base: CaptureRecord, cand: CaptureRecord) -> dict[str, Any] | None:
    """The first guest-visible difference between two captures of one config, or None."""
    common: dict[str, Any] = {"machine": base.machine, "config": list(base.devices)}
    if base.vcpus != 1:
        common["vcpus"] = base.vcpus
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
