"""ich9-ahci, intel-hda and megasas: layouts and defaults as real QEMU shows them.

Expected values come from captures of QEMU 7.2 and 10.0 on pc-i440fx machine
types (corpora/qemu/*/{ich9-ahci,intel-hda,megasas}.jsonl), not from the model.
"""

from __future__ import annotations

import pytest

from compatlab.config import Config, parse_device_string
from compatlab.errors import ConfigError
from compatlab.pci import regs
from compatlab.pci.config_space import ConfigSpace
from compatlab.realize import realize

# QEMU 10.0, pc-i440fx-10.0, "-device ich9-ahci": the header, MSI (0x80), the
# address map register (0x90) and the SATA capability (0xa8); the rest is zero.
AHCI_QEMU_10_0 = bytes.fromhex(
    "".join(
        (
            "86802229000010000201060100000000",  # 00
            "00000000000000000000000000000000",  # 10
            "010000000000000000000000f41a0011",  # 20
            "00000000800000000000000000010000",  # 30
            "00000000000000000000000000000000",  # 40
            "00000000000000000000000000000000",  # 50
            "00000000000000000000000000000000",  # 60
            "00000000000000000000000000000000",  # 70
            "05a88000000000000000000000000000",  # 80
            "40000000000000000000000000000000",  # 90
            "00000000000000001200100048000000",  # a0
            "00000000000000000000000000000000",  # b0
            "00000000000000000000000000000000",  # c0
            "00000000000000000000000000000000",  # d0
            "00000000000000000000000000000000",  # e0
            "00000000000000000000000000000000",  # f0
        )
    )
)


def _space(device: str, version: str = "10.0", defaults_at: str | None = None) -> ConfigSpace:
    config = Config((parse_device_string(device),))
    return realize(config, version, defaults_at=defaults_at).devices[0].space


def _chain(space: ConfigSpace) -> list[tuple[int, int]]:
    return [(cap.offset, cap.cap_id) for cap in space.capabilities()]


def test_ich9_ahci_matches_a_real_capture_byte_for_byte() -> None:
    assert len(AHCI_QEMU_10_0) == regs.CONFIG_SPACE_SIZE
    assert _space("ich9-ahci").config == AHCI_QEMU_10_0


def test_ich9_ahci_lists_msi_before_the_sata_capability() -> None:
    space = _space("ich9-ahci")
    assert _chain(space) == [(0x80, regs.CAP_ID_MSI), (0xA8, regs.CAP_ID_SATA)]
    # SATA capability: revision 1.0, index/data pair in BAR 4 at offset 0x10.
    assert space.read(0xA8 + 2, 2) == 0x0010
    assert space.read(0xA8 + 4, 4) == 0x48
    assert space.read(regs.bar_offset(4), 4) == regs.BASE_ADDRESS_SPACE_IO


@pytest.mark.parametrize(
    ("binary", "machine", "msi_offset"),
    [("7.2", "1.4", 0x50), ("7.2", "2.1", 0x50), ("7.2", "2.2", 0x60), ("10.0", "10.0", 0x60)],
)
def test_intel_hda_msi_moves_with_hw_compat_2_1(binary: str, machine: str, msi_offset: int) -> None:
    space = _space("intel-hda", binary, machine)
    assert _chain(space) == [(msi_offset, regs.CAP_ID_MSI)]
    assert space.read(msi_offset + 2, 2) == 0x0080  # 64-bit, one vector
    assert space.read(0x40, 1) == 0x01  # HDCTL: HD Audio mode


def test_intel_hda_explicit_property_beats_the_machine_type() -> None:
    assert _chain(_space("intel-hda,old_msi_addr=off", "7.2", "2.1")) == [(0x60, regs.CAP_ID_MSI)]
    space = _space("intel-hda,msi=off")
    assert _chain(space) == []
    assert not space.read(regs.STATUS, 2) & regs.STATUS_CAP_LIST


def test_megasas_capabilities_and_bars() -> None:
    space = _space("megasas")
    assert _chain(space) == [(0x68, regs.CAP_ID_MSIX), (0x50, regs.CAP_ID_MSI)]
    assert space.read(0x68 + 2, 2) == 14  # 15 MSI-X vectors
    assert space.read(0x68 + 4, 4) == 0x2000  # table in BAR 0
    assert space.read(0x68 + 8, 4) == 0x3800  # PBA in BAR 0
    assert space.read(regs.bar_offset(0), 4) == regs.BASE_ADDRESS_MEM_TYPE_64
    assert space.read(regs.bar_offset(2), 4) == regs.BASE_ADDRESS_SPACE_IO
    assert space.read(regs.bar_offset(3), 4) == regs.BASE_ADDRESS_MEM_TYPE_64
    assert space.read(regs.SUBSYSTEM_VENDOR_ID, 4) == 0x1013_1000


@pytest.mark.parametrize(
    ("props", "chain"),
    [
        ("msi=off", [(0x68, regs.CAP_ID_MSIX)]),
        ("msix=off", [(0x50, regs.CAP_ID_MSI)]),
        ("msi=off,msix=off", []),
    ],
)
def test_megasas_msi_switches(props: str, chain: list[tuple[int, int]]) -> None:
    assert _chain(_space(f"megasas,{props}")) == chain


@pytest.mark.parametrize(
    "device",
    ["megasas,msix=maybe", "intel-hda,msi=2", "ich9-ahci,romsize=31", "megasas,max_cmds=-1"],
)
def test_refused_like_qemu(device: str) -> None:
    with pytest.raises(ConfigError):
        _space(device)
