"""Name the register behind a config-space offset, and diff the differing bytes.

Header offsets (0x00–0x3f) are named from :data:`compatlab.pci.regs.HEADER_FIELDS`
(PCI Local Bus 3.0 §6.1, type 0 header). Above the header lies the capability
area (§6.7); given the device's config-space bytes, the capability list in them
is walked to say which capability holds the byte. Nothing here realizes a config:
the caller passes the bytes it has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from compatlab.invariants.registry import Failure
from compatlab.pci import regs
from compatlab.pci.config_space import ConfigSpace, walk_capabilities


def _header_names() -> dict[int, str]:
    names: dict[int, str] = {}
    for start, (size, name) in regs.HEADER_FIELDS.items():
        for i in range(size):
            names[start + i] = name if size == 1 else f"{name} (byte {i})"
    return names


_HEADER = _header_names()
_MASKS = re.compile(r"\b(w1cmask|wmask|cmask)\b")


def header_field(offset: int) -> str | None:
    """The header field holding ``offset`` (``"bar0 (byte 1)"``), or None above the header."""
    if offset < regs.HEADER_SIZE:
        return _HEADER.get(offset, "reserved (header)")
    return None


def field_name(offset: int, space: ConfigSpace | bytes | None = None) -> str:
    """What the byte at ``offset`` is: a header field, the capability holding it (from
    the capability list of ``space``, the device's config space or its bytes), or the
    area."""
    header = header_field(offset)
    if header is not None:
        return header
    if offset >= regs.CONFIG_SPACE_SIZE:
        return "extended configuration space"
    if space is not None:
        config = space.config if isinstance(space, ConfigSpace) else space
        below = [(c.offset, c.name) for c in walk_capabilities(config) if c.offset <= offset]
        if below:
            start, name = max(below)
            return f"capability area: {name} capability at {start:#04x} + {offset - start:#04x}"
    return "capability area"


@dataclass(frozen=True, slots=True)
class ByteDiff:
    offset: int
    field: str
    expected: int | None
    actual: int | None

    @property
    def changed_bits(self) -> list[int]:
        if self.expected is None or self.actual is None:
            return []
        x = self.expected ^ self.actual
        return [b for b in range(8) if x >> b & 1]


def _bytes(text: str | None) -> bytes | None:
    if not text:
        return None
    clean = text.strip().lower().removeprefix("0x").replace(" ", "")
    try:
        return bytes.fromhex(clean)
    except ValueError:
        return None


def register_diff(failure: Failure, space: ConfigSpace | bytes | None = None) -> list[ByteDiff]:
    """One row per differing byte from ``failure.offset`` on, named with :func:`field_name`
    in ``space`` (the failing device's config space); empty when there is no offset."""
    if failure.offset is None:
        return []
    exp, act = _bytes(failure.expected), _bytes(failure.actual)
    if exp is None or act is None:
        return [ByteDiff(failure.offset, field_name(failure.offset, space), None, None)]
    rows = [
        ByteDiff(failure.offset + i, field_name(failure.offset + i, space), e, a)
        for i, (e, a) in enumerate(zip(exp, act, strict=False))
        if e != a
    ]
    return rows or [
        ByteDiff(
            failure.offset,
            field_name(failure.offset, space),
            exp[0] if exp else None,
            act[0] if act else None,
        )
    ]


def register_kind(detail: str) -> str:
    """Which image differs, as the detail says: a mask, else the config-space bytes."""
    m = _MASKS.search(detail)
    return m.group(1) if m else "config"


def bits(changed: list[int]) -> str:
    if not changed:
        return ""
    if changed == list(range(changed[0], changed[-1] + 1)) and len(changed) > 1:
        return f"bits {changed[0]}-{changed[-1]}"
    return ("bit " if len(changed) == 1 else "bits ") + ", ".join(map(str, changed))
