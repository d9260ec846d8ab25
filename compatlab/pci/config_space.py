"""Conventional PCI configuration space with QEMU's per-byte masks.

A device model builds its state with :class:`ConfigSpaceBuilder` (mutable, used
only while realizing) and hands out a frozen :class:`ConfigSpace`. The three masks
are QEMU's (hw/pci/pci.c):

- ``wmask``: bits a guest config write may change;
- ``w1cmask``: bits a guest clears by writing 1 (status error bits);
- ``cmask``: bits compared when migration state is loaded.

The reset state is the one a guest sees before firmware runs: BAR address bits
and the command register are zero.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from compatlab.errors import CapabilitySpaceError
from compatlab.pci import regs

_SIZE = regs.CONFIG_SPACE_SIZE


def _put(buf: bytearray, offset: int, value: int, width: int) -> None:
    buf[offset : offset + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")


_WORD = struct.Struct("<H")
_LONG = struct.Struct("<I")


def _get(buf: bytes | bytearray, offset: int, width: int) -> int:
    return int.from_bytes(buf[offset : offset + width], "little")


def _reset_masks() -> tuple[bytes, bytes, bytes]:
    """The masks every device starts from, before its builder adds to them."""
    wmask = bytearray(_SIZE)
    w1cmask = bytearray(_SIZE)
    cmask = bytearray(_SIZE)
    # pci_init_cmask
    _put(cmask, regs.VENDOR_ID, 0xFFFF, 2)
    _put(cmask, regs.DEVICE_ID, 0xFFFF, 2)
    cmask[regs.STATUS] = regs.STATUS_CAP_LIST
    cmask[regs.REVISION_ID] = 0xFF
    cmask[regs.CLASS_PROG] = 0xFF
    _put(cmask, regs.CLASS_DEVICE, 0xFFFF, 2)
    cmask[regs.HEADER_TYPE] = 0xFF
    cmask[regs.CAPABILITY_LIST] = 0xFF

    # pci_init_wmask: everything past the header is writable until a
    # capability claims it.
    wmask[regs.CACHE_LINE_SIZE] = 0xFF
    wmask[regs.INTERRUPT_LINE] = 0xFF
    _put(
        wmask,
        regs.COMMAND,
        regs.COMMAND_IO
        | regs.COMMAND_MEMORY
        | regs.COMMAND_MASTER
        | regs.COMMAND_INTX_DISABLE
        | regs.COMMAND_SERR,
        2,
    )
    wmask[regs.HEADER_SIZE :] = b"\xff" * (_SIZE - regs.HEADER_SIZE)

    # pci_init_w1cmask
    _put(
        w1cmask,
        regs.STATUS,
        regs.STATUS_PARITY
        | regs.STATUS_SIG_TARGET_ABORT
        | regs.STATUS_REC_TARGET_ABORT
        | regs.STATUS_REC_MASTER_ABORT
        | regs.STATUS_SIG_SYSTEM_ERROR
        | regs.STATUS_DETECTED_PARITY,
        2,
    )
    return bytes(wmask), bytes(w1cmask), bytes(cmask)


_RESET_WMASK, _RESET_W1CMASK, _RESET_CMASK = _reset_masks()


class ConfigSpaceBuilder:
    """Mutable config space and masks, initialised as QEMU's do_pci_register_device does."""

    __slots__ = ("cmask", "config", "used", "w1cmask", "wmask")

    def __init__(
        self,
        *,
        vendor_id: int,
        device_id: int,
        class_id: int,
        revision: int = 0,
        subsystem_vendor_id: int = 0,
        subsystem_id: int = 0,
        multifunction: bool = False,
    ) -> None:
        self.config = bytearray(_SIZE)
        self.wmask = bytearray(_RESET_WMASK)
        self.w1cmask = bytearray(_RESET_W1CMASK)
        self.cmask = bytearray(_RESET_CMASK)
        # Bytes taken by capabilities, in 4-byte granules (QEMU's pdev->used).
        self.used = bytearray(_SIZE)

        self.set_word(regs.VENDOR_ID, vendor_id)
        self.set_word(regs.DEVICE_ID, device_id)
        self.config[regs.REVISION_ID] = revision
        self.set_word(regs.CLASS_DEVICE, class_id)
        if subsystem_vendor_id or subsystem_id:
            self.set_word(regs.SUBSYSTEM_VENDOR_ID, subsystem_vendor_id)
            self.set_word(regs.SUBSYSTEM_ID, subsystem_id)
        else:
            # QEMU's pci_set_default_subsystem_id: Red Hat / QEMU.
            self.set_word(regs.SUBSYSTEM_VENDOR_ID, 0x1AF4)
            self.set_word(regs.SUBSYSTEM_ID, 0x1100)

        if multifunction:
            self.config[regs.HEADER_TYPE] |= regs.HEADER_TYPE_MULTI_FUNCTION

    # -- plain accessors -------------------------------------------------

    def set_byte(self, offset: int, value: int) -> None:
        self.config[offset] = value & 0xFF

    def set_word(self, offset: int, value: int) -> None:
        _WORD.pack_into(self.config, offset, value & 0xFFFF)

    def set_long(self, offset: int, value: int) -> None:
        _LONG.pack_into(self.config, offset, value & 0xFFFFFFFF)

    def get(self, offset: int, width: int) -> int:
        return _get(self.config, offset, width)

    def set_mask(self, mask: str, offset: int, value: int, width: int) -> None:
        """Set ``wmask``, ``w1cmask`` or ``cmask`` bytes at ``offset``."""
        _put(getattr(self, mask), offset, value, width)

    def or_mask(self, mask: str, offset: int, value: int, width: int) -> None:
        buf: bytearray = getattr(self, mask)
        _put(buf, offset, _get(buf, offset, width) | value, width)

    # -- BARs ---------------------------------------------------------------

    def register_bar(self, region: int, size: int, bar_type: int = 0) -> None:
        """Declare a BAR of ``size`` bytes (a power of two), as pci_register_bar does.

        ``bar_type`` holds the low flag bits: I/O space, 64-bit, prefetchable
        (PCI Local Bus 3.0 §6.2.5.1). The address bits stay 0 until firmware runs.
        """
        if size & (size - 1) or size == 0:
            raise ValueError(f"BAR {region} size {size:#x} is not a power of two")
        offset = regs.bar_offset(region)
        wmask = ~(size - 1)
        if region == regs.ROM_SLOT:
            wmask |= regs.ROM_ADDRESS_ENABLE
        self.set_long(offset, bar_type)
        is_64 = (
            not bar_type & regs.BASE_ADDRESS_SPACE_IO and bar_type & regs.BASE_ADDRESS_MEM_TYPE_64
        )
        width = 8 if is_64 else 4
        _put(self.wmask, offset, wmask, width)
        _put(self.cmask, offset, ~0, width)

    # -- capabilities ---------------------------------------------------------

    def find_space(self, size: int) -> int:
        """First-fit search from 0x40 for ``size`` free bytes (QEMU's pci_find_space)."""
        # The first run of ``size`` free bytes at or after the header.
        start = self.used.find(bytes(size), regs.HEADER_SIZE) if size > 0 else -1
        if start < 0:
            raise CapabilitySpaceError(f"no room for a {size}-byte capability")
        return start

    def add_capability(self, cap_id: int, size: int, offset: int = 0) -> int:
        """Link a capability at ``offset`` (0: first fit) at the head of the list.

        PCI Local Bus 3.0 §6.7; QEMU's pci_add_capability prepends, so the list
        runs newest first. The capability's bytes become read-only and checked on
        migration load; devices open writable bits afterwards.
        """
        if offset == 0:
            offset = self.find_space(size)
        else:
            for i in range(offset, offset + size):
                if self.used[i]:
                    raise CapabilitySpaceError(
                        f"capability {cap_id:#04x} at {offset:#04x} overlaps byte {i:#04x}"
                    )
        self.config[offset + regs.CAP_LIST_ID] = cap_id
        self.config[offset + regs.CAP_LIST_NEXT] = self.config[regs.CAPABILITY_LIST]
        self.config[regs.CAPABILITY_LIST] = offset
        self.config[regs.STATUS] |= regs.STATUS_CAP_LIST
        granules = (size + 3) & ~3
        self.used[offset : offset + granules] = b"\xff" * granules
        self.wmask[offset : offset + size] = bytes(size)
        self.cmask[offset : offset + size] = b"\xff" * size
        return offset

    def freeze(self) -> ConfigSpace:
        return ConfigSpace(
            bytes(self.config), bytes(self.wmask), bytes(self.w1cmask), bytes(self.cmask)
        )


def _msi_size(flags: int) -> int:
    return regs.msi_cap_size(
        bool(flags & regs.MSI_FLAGS_64BIT), bool(flags & regs.MSI_FLAGS_MASKBIT)
    )


def _msi_clamp_qsize(config: bytearray, cap: int) -> None:
    """Keep Multiple Message Enable within Multiple Message Capable.

    PCI Local Bus 3.0 §6.8.1.3 forbids software to enable more vectors than the
    function can take; QEMU's msi_write_config clamps it once MSI is enabled.
    """
    flags = _get(config, cap + regs.MSI_FLAGS, 2)
    if not flags & regs.MSI_FLAGS_ENABLE:
        return
    enabled = (flags & regs.MSI_FLAGS_QSIZE) >> 4
    capable = (flags & regs.MSI_FLAGS_QMASK) >> 1
    if enabled > capable:
        _put(config, cap + regs.MSI_FLAGS, (flags & ~regs.MSI_FLAGS_QSIZE) | (capable << 4), 2)


@dataclass(frozen=True, slots=True)
class Capability:
    offset: int
    cap_id: int

    @property
    def name(self) -> str:
        return regs.CAP_NAMES.get(self.cap_id, f"capability {self.cap_id:#04x}")


def walk_capabilities(config: bytes) -> Iterator[Capability]:
    """The capability list of config-space bytes, in list order (PCI Local Bus 3.0
    §6.7); stops at a loop or an out-of-bounds pointer."""
    for offset, cap_id in _capability_list(config):
        yield Capability(offset, cap_id)


def _capability_list(config: bytes) -> Iterator[tuple[int, int]]:
    """(offset, ID) of each capability, as :func:`walk_capabilities` finds them."""
    if len(config) <= regs.CAPABILITY_LIST or not config[regs.STATUS] & regs.STATUS_CAP_LIST:
        return
    seen: set[int] = set()
    end = min(len(config), _SIZE) - 1
    pointer = config[regs.CAPABILITY_LIST] & ~3
    while pointer and pointer not in seen and regs.HEADER_SIZE <= pointer < end:
        seen.add(pointer)
        yield pointer, config[pointer]
        pointer = config[pointer + regs.CAP_LIST_NEXT] & ~3


@dataclass(frozen=True, slots=True)
class ConfigSpace:
    """A device's 256 bytes of config space and QEMU's three masks, immutable."""

    config: bytes
    wmask: bytes
    w1cmask: bytes
    cmask: bytes

    def __post_init__(self) -> None:
        for name in ("config", "wmask", "w1cmask", "cmask"):
            if len(getattr(self, name)) != _SIZE:
                raise ValueError(f"{name} must be {_SIZE} bytes")

    def read(self, offset: int, width: int = 4) -> int:
        return _get(self.config, offset, width)

    def write(self, offset: int, value: int, width: int = 4) -> ConfigSpace:
        """A guest config write, as QEMU's pci_default_write_config applies it.

        Each byte keeps its read-only bits, takes the written value on ``wmask``
        bits, and clears the ``w1cmask`` bits written as 1.
        """
        if width not in (1, 2, 4) or offset % width or offset + width > _SIZE:
            raise ValueError(f"unaligned or out-of-range config write {offset:#x}/{width}")
        config = bytearray(self.config)
        # Bitwise, so all bytes of the access at once.
        value &= (1 << (8 * width)) - 1
        wmask, w1c = _get(self.wmask, offset, width), _get(self.w1cmask, offset, width)
        kept = (_get(config, offset, width) & ~wmask) | (value & wmask)
        _put(config, offset, kept & ~(value & w1c), width)
        # Capabilities live past the header: a write to the header touches none (one
        # walk of the list serves both lookups; a guest write probe makes 128 writes).
        caps: dict[int, int] = {}
        if offset + width > regs.HEADER_SIZE:
            for cap_offset, cap_id in _capability_list(self.config):
                caps.setdefault(cap_id, cap_offset)
        msi = caps.get(regs.CAP_ID_MSI)
        if msi is not None and offset < msi + regs.MSI_32_SIZEOF and msi < offset + width:
            _msi_clamp_qsize(config, msi)
        after = ConfigSpace(bytes(config), self.wmask, self.w1cmask, self.cmask)
        exp = caps.get(regs.CAP_ID_EXP)
        if (
            exp is not None
            and offset < exp + regs.EXP_DEVCTL + 2
            and exp + regs.EXP_DEVCTL < offset + width
        ):
            devctl = after.read(exp + regs.EXP_DEVCTL, 2)
            if devctl & regs.EXP_DEVCTL_BCR_FLR:
                # PCIe Base 3.0 §6.6.2: Initiate Function Level Reset resets the
                # function and always reads 0 (QEMU's pcie_cap_flr_write_config).
                after = after.function_reset()
                config = bytearray(after.config)
                _put(config, exp + regs.EXP_DEVCTL, devctl & ~regs.EXP_DEVCTL_BCR_FLR, 2)
                after = ConfigSpace(bytes(config), self.wmask, self.w1cmask, self.cmask)
        return after

    def function_reset(self) -> ConfigSpace:
        """The registers a reset returns to their reset values (QEMU's
        pci_do_device_reset, msi_reset, msix_reset): command and status bits a
        guest can set, interrupt line, cache line size, BAR addresses, and the
        MSI and MSI-X enables."""
        config = bytearray(self.config)
        for reg, width in ((regs.COMMAND, 2), (regs.STATUS, 2), (regs.INTERRUPT_LINE, 1)):
            clear = _get(self.wmask, reg, width) | _get(self.w1cmask, reg, width)
            _put(config, reg, _get(config, reg, width) & ~clear, width)
        config[regs.CACHE_LINE_SIZE] = 0
        for region in range(regs.NUM_BARS + 1):
            bar = regs.bar_offset(region)
            if _get(self.cmask, bar, 4):  # registered BARs are checked on migration
                _put(config, bar, _get(config, bar, 4) & ~_get(self.wmask, bar, 4), 4)
        msi = self.find_capability(regs.CAP_ID_MSI)
        if msi is not None:
            flags = _get(config, msi + regs.MSI_FLAGS, 2)
            _put(
                config,
                msi + regs.MSI_FLAGS,
                flags & ~(regs.MSI_FLAGS_QSIZE | regs.MSI_FLAGS_ENABLE),
                2,
            )
            size = _msi_size(flags)
            config[msi + regs.MSI_ADDRESS_LO : msi + size] = bytes(size - regs.MSI_ADDRESS_LO)
        msix = self.find_capability(regs.CAP_ID_MSIX)
        if msix is not None:
            config[msix + regs.MSIX_CONTROL_BYTE] &= (
                ~self.wmask[msix + regs.MSIX_CONTROL_BYTE] & 0xFF
            )
        return ConfigSpace(bytes(config), self.wmask, self.w1cmask, self.cmask)

    def capabilities(self) -> Iterator[Capability]:
        """Walk the capability list (:func:`walk_capabilities` of :attr:`config`)."""
        return walk_capabilities(self.config)

    def find_capability(self, cap_id: int) -> int | None:
        return next((c.offset for c in self.capabilities() if c.cap_id == cap_id), None)
