"""The generic config-space model against the PCI spec and QEMU's rules."""

from __future__ import annotations

import pytest

from compatlab.pci import regs
from compatlab.pci.capabilities import (
    MsiError,
    add_msi,
    add_msix,
    add_msix_exclusive_bar,
    msix_exclusive_bar_layout,
)
from compatlab.pci.config_space import CapabilitySpaceError, ConfigSpaceBuilder


def _builder() -> ConfigSpaceBuilder:
    return ConfigSpaceBuilder(vendor_id=0x1234, device_id=0x5678, class_id=0x0200)


def test_header_defaults_follow_qemu() -> None:
    space = _builder().freeze()
    assert space.read(regs.VENDOR_ID, 2) == 0x1234
    # pci_set_default_subsystem_id: Red Hat / QEMU 1af4:1100 when the device names none
    assert space.read(regs.SUBSYSTEM_VENDOR_ID, 2) == 0x1AF4
    assert space.read(regs.SUBSYSTEM_ID, 2) == 0x1100
    assert space.read(regs.COMMAND, 2) == 0  # before firmware runs
    assert not space.read(regs.STATUS, 2) & regs.STATUS_CAP_LIST
    assert list(space.capabilities()) == []


def test_capabilities_are_first_fit_and_prepended() -> None:
    cs = _builder()
    first = cs.add_capability(regs.CAP_ID_PM, 8)
    second = cs.add_capability(regs.CAP_ID_MSI, 10)  # occupies 12 bytes (4-byte granules)
    third = cs.add_capability(regs.CAP_ID_MSIX, 12)
    assert (first, second, third) == (0x40, 0x48, 0x54)
    space = cs.freeze()
    # The list runs newest first (QEMU's pci_add_capability prepends).
    assert [c.offset for c in space.capabilities()] == [0x54, 0x48, 0x40]
    assert space.config[0x40 + 1] == 0  # the oldest capability terminates the list
    assert space.read(regs.STATUS, 2) & regs.STATUS_CAP_LIST


def test_explicit_offset_that_overlaps_is_refused() -> None:
    cs = _builder()
    cs.add_capability(regs.CAP_ID_PM, 8, 0x50)
    with pytest.raises(CapabilitySpaceError):
        cs.add_capability(regs.CAP_ID_MSI, 10, 0x54)


def test_a_capability_becomes_read_only_and_checked() -> None:
    cs = _builder()
    cs.add_capability(regs.CAP_ID_VNDR, 16, 0x60)
    space = cs.freeze()
    assert space.wmask[0x60:0x70] == bytes(16)
    assert space.cmask[0x60:0x70] == b"\xff" * 16
    assert space.wmask[0x70] == 0xFF  # the rest of the device area stays writable


def test_msix_stores_table_size_minus_one() -> None:
    cs = _builder()
    cap = add_msix(cs, 4, table_bar=1, table_offset=0, pba_bar=1, pba_offset=0x800)
    space = cs.freeze()
    assert space.read(cap + 2, 2) == 3
    assert space.read(cap + 4, 4) == 1
    assert space.read(cap + 8, 4) == 0x801
    assert space.wmask[cap + 3] == 0xC0  # enable and function mask


@pytest.mark.parametrize("n", [0, 2049])
def test_msix_vector_counts_out_of_range(n: int) -> None:
    with pytest.raises(MsiError):
        add_msix(_builder(), n, table_bar=1, table_offset=0, pba_bar=1, pba_offset=0x800)


def test_msix_exclusive_bar_layout() -> None:
    # ≤128 vectors: a 4 KiB BAR, table below 2 KiB, PBA at 2 KiB (hw/pci/msix.c)
    assert msix_exclusive_bar_layout(128) == (4096, 2048)
    # past 128, the PBA follows the table; the BAR grows once the PBA no longer fits in 4 KiB
    assert msix_exclusive_bar_layout(129) == (4096, 129 * 16)
    assert msix_exclusive_bar_layout(256) == (8192, 4096)
    cs = _builder()
    add_msix_exclusive_bar(cs, 4, 1)
    space = cs.freeze()
    assert space.wmask[0x14:0x18] == (~(4096 - 1) & 0xFFFFFFFF).to_bytes(4, "little")


def test_msi_flags_and_size() -> None:
    cs = _builder()
    cap = add_msi(cs, 0x50, 4, is_64bit=True, per_vector_mask=False)
    space = cs.freeze()
    # Multiple Message Capable = log2(4), 64-bit address capable.
    assert space.read(cap + 2, 2) == (2 << 1) | 0x80
    with pytest.raises(MsiError):
        add_msi(_builder(), 0x50, 3, is_64bit=False, per_vector_mask=False)


def test_bar_flags_and_sizing_mask() -> None:
    cs = _builder()
    cs.register_bar(0, 0x20, regs.BASE_ADDRESS_SPACE_IO)
    cs.register_bar(4, 0x4000, regs.BASE_ADDRESS_MEM_TYPE_64 | regs.BASE_ADDRESS_MEM_PREFETCH)
    space = cs.freeze()
    assert space.read(0x10) == 0x1
    assert space.read(0x20) == 0xC
    assert space.read(0x24) == 0
    assert space.wmask[0x10:0x14] == bytes.fromhex("e0ffffff")
    assert space.wmask[0x20:0x28] == bytes.fromhex("00c0ffffffffffff")
    with pytest.raises(ValueError):
        cs.register_bar(1, 24)


def test_guest_writes_obey_wmask_and_w1c() -> None:
    cs = _builder()
    cs.config[regs.STATUS + 1] = 0xF9  # pretend every error bit is latched
    space = cs.freeze()
    after = space.write(regs.COMMAND, 0xFFFF_FFFF)
    # command: only IO, memory, master, SERR, INTx-disable are writable
    assert after.read(regs.COMMAND, 2) == 0x0507
    # status: writing 1 clears the write-1-to-clear bits
    assert after.config[regs.STATUS + 1] == 0
    assert space.write(regs.VENDOR_ID, 0).read(regs.VENDOR_ID, 2) == 0x1234
    with pytest.raises(ValueError):
        space.write(0x02, 0, 4)
