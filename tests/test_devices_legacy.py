"""e1000, rtl8139, vmxnet3, usb-ehci and pvpanic-pci as real QEMU shows them.

Expected bytes come from captures of QEMU 7.2 and 10.0 on pc-i440fx machine types
(corpora/qemu/*/{e1000,rtl8139,vmxnet3,usb-ehci,pvpanic-pci}.jsonl); register
meanings from the devices' datasheets cited in their builder modules.
"""

from __future__ import annotations

import pytest

from compatlab.config import Config, parse_device_string
from compatlab.errors import CompatlabError, DeviceRealizeError, UnknownPropertyError
from compatlab.pci import regs
from compatlab.pci.config_space import ConfigSpace
from compatlab.realize import realize


def _hex(*rows: str) -> bytes:
    data = bytes.fromhex("".join(rows))
    return data + bytes(regs.CONFIG_SPACE_SIZE - len(data))


# QEMU 10.0, pc-i440fx-10.0, "-device vmxnet3": MSI at 0x84, MSI-X at 0x9c.
VMXNET3_QEMU_10_0 = _hex(
    "ad15b007000010000100000200000000",  # 00
    "00000000000000000000000000000000",  # 10
    "000000000000000000000000ad15b007",  # 20
    "000000009c0000000000000000010000",  # 30
    "00000000000000000000000000000000" * 4,  # 40-7f
    "00000000050080000000000000000000",  # 80
    "00000000000000000000000011841800",  # 90
    "02000000021000000000000000000000",  # a0
)

# QEMU 7.2, pc-i440fx-1.4 (hw_compat_2_5: x-old-msi-offsets=on): MSI-X at 0x40,
# MSI at 0x50, PBA at 0x800 of BAR 2.
VMXNET3_QEMU_7_2_PC_1_4 = _hex(
    "ad15b007000010000100000200000000",  # 00
    "00000000000000000000000000000000",  # 10
    "000000000000000000000000ad15b007",  # 20
    "00000000400000000000000000010000",  # 30
    "11501800020000000208000000000000",  # 40
    "05008000000000000000000000000000",  # 50
)

# QEMU 7.2, pc-i440fx-7.2, "-device rtl8139".
RTL8139_QEMU_7_2 = _hex(
    "ec103981000000002000000200000000",  # 00
    "01000000000000000000000000000000",  # 10
    "000000000000000000000000f41a0011",  # 20
    "00000000dc0000000000000000010000",  # 30
)

# QEMU 10.0, pc-i440fx-10.0, "-device usb-ehci".
USB_EHCI_QEMU_10_0 = _hex(
    "8680cd24000000001020030c00000000",  # 00
    "00000000000000000000000000000000",  # 10
    "000000000000000000000000f41a0011",  # 20
    "00000000000000000000000000040000",  # 30
    "00000000000000000000000000000000" * 2,  # 40-5f
    "202000000000000001000000000000c0",  # 60
)

# QEMU 7.2, pc-i440fx-1.4 and every later machine type, "-device e1000".
E1000_QEMU_7_2 = _hex(
    "86800e10000000000300000200000000",  # 00
    "00000000010000000000000000000000",  # 10
    "000000000000000000000000f41a0011",  # 20
    "00000000000000000000000000010000",  # 30
)


def _space(device: str, version: str = "10.0", defaults_at: str | None = None) -> ConfigSpace:
    config = Config((parse_device_string(device),))
    return realize(config, version, defaults_at=defaults_at).devices[0].space


def _chain(space: ConfigSpace) -> list[tuple[int, int]]:
    return [(cap.offset, cap.cap_id) for cap in space.capabilities()]


@pytest.mark.parametrize(
    ("device", "binary", "machine", "expected"),
    [
        ("vmxnet3", "10.0", "10.0", VMXNET3_QEMU_10_0),
        ("vmxnet3", "7.2", "1.4", VMXNET3_QEMU_7_2_PC_1_4),
        ("rtl8139", "7.2", "7.2", RTL8139_QEMU_7_2),
        ("usb-ehci", "10.0", "10.0", USB_EHCI_QEMU_10_0),
        ("e1000", "7.2", "1.4", E1000_QEMU_7_2),
        ("e1000", "10.0", "2.4", E1000_QEMU_7_2),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_matches_a_real_capture_byte_for_byte(
    device: str, binary: str, machine: str, expected: bytes
) -> None:
    assert _space(device, binary, machine).config == expected


@pytest.mark.parametrize(
    ("machine", "chain", "pba"),
    [
        ("2.5", [(0x40, regs.CAP_ID_MSIX), (0x50, regs.CAP_ID_MSI)], 0x800),
        ("2.6", [(0x9C, regs.CAP_ID_MSIX), (0x84, regs.CAP_ID_MSI)], 0x1000),
    ],
)
def test_vmxnet3_msi_offsets_follow_hw_compat_2_5(
    machine: str, chain: list[tuple[int, int]], pba: int
) -> None:
    space = _space("vmxnet3", "10.0", machine)
    assert _chain(space) == chain
    msix = chain[0][0]
    assert space.read(msix + 2, 2) == 24  # 25 vectors, stored minus one
    assert space.read(msix + 8, 4) == pba | 2  # PBA in BAR 2


def test_vmxnet3_explicit_property_beats_the_machine_type() -> None:
    assert _space("vmxnet3,x-old-msi-offsets=off", "7.2", "1.4").config == VMXNET3_QEMU_10_0
    assert _space("vmxnet3,x-old-msi-offsets=on").config == VMXNET3_QEMU_7_2_PC_1_4


@pytest.mark.parametrize(
    ("device", "machine", "accepted"),
    [
        # pxe-e1000.rom (75264 bytes) fits 128 KiB; efi-e1000.rom (249856) does not.
        ("e1000", "1.4", True),
        ("e1000", "1.5", False),
        ("rtl8139", "1.4", True),
        ("rtl8139", "1.5", False),
        # pc_compat_2_6 gives vmxnet3 no option ROM at all.
        ("vmxnet3", "2.6", True),
        ("vmxnet3", "2.7", False),
    ],
)
def test_option_rom_follows_the_machine_type(device: str, machine: str, accepted: bool) -> None:
    spec = f"{device},romsize=131072"
    if accepted:
        _space(spec, "7.2", machine)
    else:
        with pytest.raises(DeviceRealizeError, match="too large"):
            _space(spec, "7.2", machine)


def test_e1000_rom_bar_is_invisible_until_firmware_maps_it() -> None:
    space = _space("e1000")
    assert space.read(regs.ROM_ADDRESS) == 0
    # efi-e1000.rom (249856 bytes) rounds up to a 256 KiB BAR.
    assert int.from_bytes(space.wmask[regs.ROM_ADDRESS : regs.ROM_ADDRESS + 4], "little") == (
        0xFFFC0001
    )


def test_e1000_properties_removed_with_the_1_x_machine_types() -> None:
    assert _space("e1000,autonegotiation=off,mitigation=off", "7.2").config == E1000_QEMU_7_2
    with pytest.raises(UnknownPropertyError):
        _space("e1000,autonegotiation=off", "10.0")


def test_rtl8139_pointer_without_a_capability_list() -> None:
    space = _space("rtl8139")
    assert space.read(regs.CAPABILITY_LIST, 1) == 0xDC
    assert not space.read(regs.STATUS, 2) & regs.STATUS_CAP_LIST
    assert _chain(space) == []


@pytest.mark.parametrize("maxframes", [0, 7, 513, 4096])
def test_usb_ehci_refuses_frame_lists_outside_8_to_512(maxframes: int) -> None:
    with pytest.raises(CompatlabError, match="maxframes"):
        _space(f"usb-ehci,maxframes={maxframes}")


@pytest.mark.parametrize("maxframes", [8, 100, 512])
def test_usb_ehci_frame_list_size_is_not_in_config_space(maxframes: int) -> None:
    assert _space(f"usb-ehci,maxframes={maxframes}").config == USB_EHCI_QEMU_10_0


def test_pvpanic_events_live_in_the_bar_not_config_space() -> None:
    assert _space("pvpanic-pci,events=1", "7.2").config == _space("pvpanic-pci", "7.2").config
