"""nvme, e1000e and qemu-xhci: PCI Express devices on the conventional i440fx bus.

Expected values come from captures of QEMU 7.2 and 10.0 on pc-i440fx machine
types (corpora/qemu/*/{nvme,e1000e,qemu-xhci}.jsonl) and from the PCI Express
Base specification, not from the model.
"""

from __future__ import annotations

import pytest

from compatlab.config import Config, parse_device_string
from compatlab.errors import ConfigError, DeviceRealizeError, UnknownPropertyError
from compatlab.pci import regs
from compatlab.pci.config_space import ConfigSpace
from compatlab.realize import realize


def _rows(*rows: str) -> bytes:
    return bytes.fromhex("".join(rows).ljust(512, "0"))


# QEMU 10.0, pc-i440fx-10.0, "-device nvme,serial=deadbeef": MSI-X at 0x40 (65
# vectors, table 0x2000 and PBA 0x3000 in BAR 0), PM at 0x60, PCI Express v2 at 0x80.
NVME_QEMU_10_0 = _rows(
    "361b1000000010000202080100000000",  # 00
    "04000000000000000000000000000000",  # 10
    "000000000000000000000000f41a0011",  # 20
    "00000000400000000000000000010000",  # 30
    "11804000002000000030000000000000",  # 40
    "00000000000000000000000000000000",  # 50
    "01000300080000000000000000000000",  # 60
    "00000000000000000000000000000000",  # 70
    "10600200208000100000000011040000",  # 80
    "00001100000000000000000000000000",  # 90
    "00000000000030000000000000000000",  # a0
)

# QEMU 7.2, pc-i440fx-5.1: hw_compat_5_1 (Intel IDs) and hw_compat_5_2 (MSI-X alone
# in a 32-bit BAR 4); no Extended Tag (hw_compat_9_1).
NVME_QEMU_7_2_ON_5_1 = _rows(
    "86804558000010000202080100000000",  # 00
    "04000000000000000000000000000000",  # 10
    "000000000000000000000000f41a0011",  # 20
    "00000000400000000000000000010000",  # 30
    "11804000040000000408000000000000",  # 40
    "00000000000000000000000000000000",  # 50
    "01000300080000000000000000000000",  # 60
    "00000000000000000000000000000000",  # 70
    "10600200008000100000000011040000",  # 80
    "00001100000000000000000000000000",  # 90
    "00000000000030000000000000000000",  # a0
)

# QEMU 10.0, pc-i440fx-10.0, "-device e1000e".
E1000E_QEMU_10_0 = _rows(
    "8680d310000010000000000200000000",  # 00
    "00000000000000000100000000000000",  # 10
    "00000000000000000000000086800000",  # 20
    "00000000c80000000000000000010000",  # 30
    "0" * 32 * 6,  # 40-90
    "11000400030000000320000000000000",  # a0
    "00000000000000000000000000000000",  # b0
    "000000000000000001d0220000000000",  # c0
    "05e08000000000000000000000000000",  # d0
    "10a00100208000000000000011040000",  # e0
    "00001100000000000000000000000000",  # f0
)


def _space(device: str, version: str = "10.0", defaults_at: str | None = None) -> ConfigSpace:
    config = Config((parse_device_string(device),))
    return realize(config, version, defaults_at=defaults_at).devices[0].space


def _chain(space: ConfigSpace) -> list[tuple[int, int]]:
    return [(cap.offset, cap.cap_id) for cap in space.capabilities()]


def test_nvme_matches_a_real_capture_byte_for_byte() -> None:
    space = _space("nvme,serial=deadbeef")
    assert space.config == NVME_QEMU_10_0
    assert _chain(space) == [
        (0x40, regs.CAP_ID_MSIX),
        (0x80, regs.CAP_ID_EXP),
        (0x60, regs.CAP_ID_PM),
    ]


def test_nvme_old_machine_type_uses_intel_ids_and_an_msix_bar() -> None:
    assert _space("nvme,serial=deadbeef", "7.2", "5.1").config == NVME_QEMU_7_2_ON_5_1


@pytest.mark.parametrize(("machine", "devcap"), [("9.1", 0x10008000), ("9.2", 0x10008020)])
def test_nvme_extended_tag_follows_hw_compat_9_1(machine: str, devcap: int) -> None:
    # Device Capabilities: RBER (bit 15) and FLR (bit 28); Extended Tag is bit 5.
    assert _space("nvme,serial=x", "10.0", machine).read(0x84, 4) == devcap


def test_nvme_pcie_capability_masks() -> None:
    space = _space("nvme,serial=x")
    # Link Status is not checked on migration load; FLR and error enables are writable.
    assert space.cmask[0x92:0x94] == b"\0\0"
    assert int.from_bytes(space.wmask[0x88:0x8A], "little") == 0x800F
    assert int.from_bytes(space.w1cmask[0x8A:0x8C], "little") == 0x000F


def test_nvme_queue_pairs_move_the_msix_table() -> None:
    # 2048 I/O queue pairs: doorbells end at 0x5008, table at 0x6000, PBA at 0x7000.
    space = _space("nvme,serial=x,max_ioqpairs=2048")
    assert space.read(0x44, 4) == 0x6000
    assert space.read(0x48, 4) == 0x7000


@pytest.mark.parametrize(
    "device",
    [
        "nvme",
        "nvme,serial=x,msix_qsize=0",
        "nvme,serial=x,num_queues=1",
        "nvme,serial=x,vsl=0",
        "nvme,serial=x,cmb_size_mb=3",
        "nvme,serial=x,sriov_max_vfs=1",
    ],
)
def test_nvme_refused_like_qemu(device: str) -> None:
    with pytest.raises(DeviceRealizeError):
        _space(device)


def test_e1000e_matches_a_real_capture_byte_for_byte() -> None:
    space = _space("e1000e")
    assert space.config == E1000E_QEMU_10_0
    assert _chain(space) == [
        (0xC8, regs.CAP_ID_PM),
        (0xD0, regs.CAP_ID_MSI),
        (0xE0, regs.CAP_ID_EXP),
        (0xA0, regs.CAP_ID_MSIX),
    ]
    # The default option ROM (efi-e1000e.rom, 244 KiB) is a 256 KiB ROM BAR.
    assert space.wmask[regs.ROM_ADDRESS : regs.ROM_ADDRESS + 4] == bytes.fromhex("01 00 fc ff")


def test_e1000e_subsystem_ids_are_written_even_when_zero() -> None:
    assert _space("e1000e,subsys_ven=0").read(regs.SUBSYSTEM_VENDOR_ID, 4) == 0


@pytest.mark.parametrize(
    ("device", "version", "chain"),
    [
        ("qemu-xhci", "7.2", [(0x90, regs.CAP_ID_MSIX)]),
        ("qemu-xhci", "10.0", [(0x90, regs.CAP_ID_MSIX)]),
        ("qemu-xhci,msi=on", "10.0", [(0x90, regs.CAP_ID_MSIX), (0x70, regs.CAP_ID_MSI)]),
        ("qemu-xhci,msix=off", "10.0", []),
    ],
)
def test_qemu_xhci_interrupt_capabilities(
    device: str, version: str, chain: list[tuple[int, int]]
) -> None:
    space = _space(device, version)
    assert _chain(space) == chain
    assert space.read(regs.VENDOR_ID, 4) == 0x000D_1B36
    assert space.read(0x60, 1) == 0x30  # USB 3.0 serial bus release number


@pytest.mark.parametrize("device", ["qemu-xhci,msi=on", "qemu-xhci,intrs=4"])
def test_qemu_xhci_properties_it_lacks(device: str) -> None:
    with pytest.raises(UnknownPropertyError):
        _space(device, "7.2")


def test_refusals_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        _space("e1000e,subsys=65536")
