"""The virtio PCI family: layouts, refusals and compat defaults as real QEMU shows them.

Expected values come from captures of QEMU 7.2 and 10.0 on pc-i440fx machine types
(corpora/qemu/*/virtio-*.jsonl), not from the model.
"""

from __future__ import annotations

import pytest

from compatlab.config import Config, parse_device_string
from compatlab.errors import ConfigError
from compatlab.pci import regs
from compatlab.pci.config_space import ConfigSpace
from compatlab.realize import realize

# QEMU 10.0, pc-i440fx-10.0, "-device virtio-net-pci": transitional device (legacy
# ID 0x1000, subsystem ID 1), I/O BAR 0, 64-bit prefetchable BAR 4, five vendor
# capabilities (common, ISR, device, notify, PCI cfg) and MSI-X with 4 vectors.
NET_QEMU_10_0 = bytes.fromhex(
    "".join(
        (
            "f41a0010000010000000000200000000",  # 00
            "01000000000000000000000000000000",  # 10
            "0c0000000000000000000000f41a0100",  # 20
            "00000000980000000000000000010000",  # 30
            "09001001040000000000000000100000",  # 40
            "09401003040000000010000000100000",  # 50
            "09501004040000000020000000100000",  # 60
            "09601402040000000030000000100000",  # 70
            "04000000097014050000000000000000",  # 80
            "00000000000000001184030001000000",  # 90
            "01080000000000000000000000000000",  # a0
            "00" * 16,  # b0
            "00" * 16,  # c0
            "00" * 16,  # d0
            "00" * 16,  # e0
            "00" * 16,  # f0
        )
    )
)

MSIX_FLAGS = 2


def _space(device: str, version: str = "10.0", defaults_at: str | None = None) -> ConfigSpace:
    config = Config((parse_device_string(device),))
    return realize(config, version, defaults_at=defaults_at).devices[0].space


def _chain(space: ConfigSpace) -> list[tuple[int, int]]:
    return [(cap.offset, cap.cap_id) for cap in space.capabilities()]


def _msix_vectors(space: ConfigSpace) -> int | None:
    cap = space.find_capability(regs.CAP_ID_MSIX)
    return None if cap is None else space.read(cap + MSIX_FLAGS, 2) + 1


def test_virtio_net_matches_a_real_capture_byte_for_byte() -> None:
    assert len(NET_QEMU_10_0) == regs.CONFIG_SPACE_SIZE
    assert _space("virtio-net-pci").config == NET_QEMU_10_0


def test_transitional_device_lists_msix_then_the_vendor_capabilities() -> None:
    space = _space("virtio-blk-pci,drive=drv")
    vndr = regs.CAP_ID_VNDR
    assert _chain(space) == [
        (0x98, regs.CAP_ID_MSIX),
        (0x84, vndr),  # PCI configuration access
        (0x70, vndr),  # notify
        (0x60, vndr),  # device config
        (0x50, vndr),  # ISR
        (0x40, vndr),  # common config
    ]
    # cfg_type of each vendor capability, Virtio 1.0 §4.1.4.
    assert [space.config[off + 3] for off, _ in _chain(space)[1:]] == [5, 2, 4, 3, 1]


def test_modern_pio_notify_adds_an_io_bar_and_a_second_notify_capability() -> None:
    space = _space("virtio-net-pci,modern-pio-notify=on")
    assert space.read(regs.bar_offset(2)) == regs.BASE_ADDRESS_SPACE_IO
    assert [off for off, _ in _chain(space)] == [0xAC, 0x98, 0x84, 0x70, 0x60, 0x50, 0x40]
    # notify-PIO: BAR 2, offset 0, length 4, multiplier 0.
    assert space.config[0x84 + 3] == 2 and space.config[0x84 + 4] == 2
    assert space.read(0x84 + 12) == 4 and space.read(0x84 + 16) == 0


def test_modern_only_device_takes_the_virtio_1_ids_and_drops_the_io_bar() -> None:
    space = _space("virtio-net-pci,disable-legacy=on,page-per-vq=on")
    assert space.read(regs.DEVICE_ID, 2) == 0x1041
    assert space.config[regs.REVISION_ID] == 1
    assert space.read(regs.SUBSYSTEM_ID, 2) == 0x1100
    assert space.read(regs.bar_offset(0)) == 0
    # page-per-vq: 4 KiB per queue, 1024 queues.
    assert space.read(0x70 + 12) == 0x400000 and space.read(0x70 + 16) == 0x1000


def test_pre_2_7_machine_types_are_legacy_only() -> None:
    space = _space("virtio-net-pci", version="7.2", defaults_at="2.6")
    assert _chain(space) == [(0x40, regs.CAP_ID_MSIX)]
    assert space.read(regs.bar_offset(4)) == 0
    assert space.read(regs.SUBSYSTEM_ID, 2) == 1


@pytest.mark.parametrize(
    ("device", "machine", "vectors"),
    [
        pytest.param("virtio-net-pci", "5.2", 3, id="net-5.2-compat-3"),
        pytest.param("virtio-net-pci", "6.0", 4, id="net-6.0-two-per-pair-plus-two"),
        pytest.param("virtio-blk-pci,drive=d,num-queues=4", "2.11", 2, id="blk-2.11-compat-2"),
        pytest.param("virtio-blk-pci,drive=d,num-queues=4", "7.2", 5, id="blk-queues-plus-one"),
        pytest.param("virtio-scsi-pci,num_queues=4", "7.2", 7, id="scsi-queues-plus-three"),
        pytest.param("virtio-rng-pci", "7.1", None, id="rng-7.1-no-msix"),
        pytest.param("virtio-rng-pci", "7.2", 2, id="rng-7.2"),
        pytest.param("virtio-balloon-pci", "9.2", None, id="balloon-9.2-no-msix"),
        pytest.param("virtio-balloon-pci", "10.0", 2, id="balloon-10.0"),
        pytest.param("virtio-serial-pci,max_ports=5,vectors=4294967295", "7.2", 6, id="serial"),
    ],
)
def test_default_vector_counts_follow_the_machine_type(
    device: str, machine: str, vectors: int | None
) -> None:
    assert _msix_vectors(_space(device, version="10.0", defaults_at=machine)) == vectors


def test_an_msix_vector_count_over_2048_silently_drops_msix() -> None:
    space = _space("virtio-net-pci,vectors=5000")
    assert _msix_vectors(space) is None
    assert space.config[regs.CAPABILITY_LIST] == 0x84


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        pytest.param("virtio-blk-pci,drive=d,class=0x12345", 0x2345, id="blk-low-16-bits"),
        pytest.param("virtio-serial-pci,class=0x0380", 0x0380, id="serial-display-other"),
        pytest.param("virtio-serial-pci,class=5", 0x0780, id="serial-unknown-forced"),
        pytest.param("virtio-balloon-pci", 0x00FF, id="balloon-others"),
    ],
)
def test_class_code(device: str, expected: int) -> None:
    assert _space(device).read(regs.CLASS_DEVICE, 2) == expected


@pytest.mark.parametrize(
    "device",
    [
        pytest.param("virtio-net-pci,disable-legacy=on,disable-modern=on", id="neither-mode"),
        pytest.param("virtio-net-pci,iommu_platform=on", id="iommu-with-legacy"),
        pytest.param("virtio-blk-pci", id="blk-without-drive"),
        pytest.param("virtio-blk-pci,drive=d,num-queues=0", id="blk-zero-queues"),
        pytest.param("virtio-scsi-pci,num_queues=1023", id="scsi-too-many-queues"),
        pytest.param("virtio-serial-pci,max_ports=512", id="serial-too-many-ports"),
        pytest.param("virtio-balloon-pci,vectors=2", id="balloon-vectors-before-10.0"),
        # Geometry given in part (QEMU 7.2 and 10.0 refuse these on pc-i440fx-7.2).
        pytest.param("virtio-blk-pci,drive=d,cyls=1", id="blk-cyls-without-heads"),
        pytest.param("virtio-blk-pci,drive=d,heads=2", id="blk-heads-without-cyls"),
        pytest.param("virtio-blk-pci,drive=d,cyls=65536,heads=1,secs=1", id="blk-cyls-too-many"),
    ],
)
def test_qemu_7_2_refuses(device: str) -> None:
    with pytest.raises(ConfigError):
        _space(device, version="7.2")


def test_a_whole_geometry_is_accepted() -> None:
    _space("virtio-blk-pci,drive=d,cyls=2,heads=255,secs=255", version="7.2")
