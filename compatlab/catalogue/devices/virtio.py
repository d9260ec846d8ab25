"""The virtio PCI proxy and its devices on a conventional bus.

QEMU hw/virtio/virtio-pci.c (virtio_pci_realize, virtio_pci_device_plugged) lays
out every virtio device the same way; the per-device files (hw/virtio/virtio-*-pci.c)
only choose the IDs, the class code and the default MSI-X vector count:

- legacy interface (disable-legacy off; ``auto`` is off on a conventional bus):
  device ID 0x1000 + n, revision 0, subsystem ID = virtio device ID, I/O BAR 0 with
  the legacy registers and the device config (size rounded up to a power of two);
- modern interface (disable-modern off): vendor-specific capabilities (Virtio 1.0
  §4.1.4) for the common, ISR, device and notify structures in the 64-bit
  prefetchable memory BAR 4, an optional notify-PIO capability with the 4-byte
  I/O BAR 2 (modern-pio-notify), then the PCI configuration access capability;
  a modern-only device has device ID 0x1040 + virtio ID and revision 1;
- MSI-X in its own memory BAR 1 (msix_init_exclusive_bar); a vector count QEMU's
  msix_init refuses (over 2048) makes virtio-pci fall back to no MSI-X silently.

Since QEMU 5.2 virtio-blk's and virtio-scsi's request queue counts may be ``auto``
(their largest value, and their default): one queue per vCPU
(:func:`optimal_num_queues`), and the default MSI-X vector count follows. Whether the
release knows ``auto`` at all is the internal property ``_num_queues_auto`` (before,
the same number was a count like any other, far past what a device may hold).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from compatlab.catalogue.builders import BuildContext, builder
from compatlab.catalogue.devices.block import check_blocksizes
from compatlab.pci import regs
from compatlab.pci.capabilities import (
    add_msix_exclusive_bar,
    pow2ceil,
)
from compatlab.pci.config_space import ConfigSpace, ConfigSpaceBuilder

VENDOR_REDHAT_QUMRANET = 0x1AF4
DEVICE_ID_LEGACY_BASE = 0x1000
DEVICE_ID_MODERN_BASE = 0x1040
NVECTORS_UNSPECIFIED = 0xFFFFFFFF

# QEMU's include/hw/virtio/virtio.h: VIRTIO_QUEUE_MAX.
VIRTIO_QUEUE_MAX = 1024
# PCI Local Bus 3.0 §6.8.2.3: the MSI-X Table Size field (N - 1) is 11 bits wide.
MSIX_FLAGS_QSIZE = 0x7FF
VIRTQUEUE_MAX_SIZE = 1024

# BAR numbers QEMU's virtio_pci_realize assigns.
LEGACY_IO_BAR = 0
MSIX_BAR = 1
MODERN_IO_BAR = 2
MODERN_MEM_BAR = 4

# Virtio 1.0 §4.1.4: cfg_type of the vendor-specific capabilities.
CAP_COMMON_CFG = 1
CAP_NOTIFY_CFG = 2
CAP_ISR_CFG = 3
CAP_DEVICE_CFG = 4
CAP_PCI_CFG = 5

# struct virtio_pci_cap and its extensions (Virtio 1.0 §4.1.4).
VIRTIO_CAP_LEN = 16
VIRTIO_NOTIFY_CAP_LEN = 20
VIRTIO_CFG_CAP_LEN = 20
CAP_CFG_TYPE = 3
CAP_BAR = 4
CAP_OFFSET = 8
CAP_LENGTH = 12
NOTIFY_OFF_MULTIPLIER = 16
CFG_DATA = 16

# Layout of the modern BAR (virtio_pci_realize): a 4 KiB page per structure.
REGION_PAGE = 0x1000
NOTIFY_OFFSET = 0x3000
PAGE_PER_VQ_MULT = 0x1000
PACKED_NOTIFY_MULT = 4
NOTIFY_PIO_SIZE = 4

# Legacy register block before the device config: 20 bytes, 24 with MSI-X
# (QEMU's VIRTIO_PCI_CONFIG_OFF).
LEGACY_HEADER = 20
LEGACY_HEADER_MSIX = 24

CLASS_STORAGE_SCSI = 0x0100
CLASS_NETWORK_ETHERNET = 0x0200
CLASS_DISPLAY_OTHER = 0x0380
CLASS_COMMUNICATION_OTHER = 0x0780
CLASS_OTHERS = 0x00FF

INTERRUPT_PIN_A = 1


@dataclass(frozen=True, slots=True)
class VirtioKind:
    """What one virtio device type contributes to the common PCI proxy layout."""

    virtio_id: int
    legacy_device_id: int
    class_id: int
    vectors: Callable[[BuildContext], int]
    config_len: Callable[[BuildContext], int]
    checks: Callable[[BuildContext], None] = lambda ctx: None
    class_code: Callable[[BuildContext], int | None] = lambda ctx: None


def _legacy_and_modern(ctx: BuildContext) -> tuple[bool, bool]:
    """virtio_pci_realize: ``auto`` keeps legacy on anywhere but a PCIe port."""
    legacy = ctx["disable-legacy"] != "on"
    modern = not ctx.flag("disable-modern")
    if not legacy and not modern:
        ctx.refuse(
            "device cannot work as neither modern nor legacy mode is enabled; "
            "set either disable-modern or disable-legacy to off"
        )
    if legacy and ctx.flag("iommu_platform"):
        ctx.refuse(
            "VIRTIO_F_IOMMU_PLATFORM was supported by neither legacy nor transitional device"
        )
    return legacy, modern


def _add_vendor_cap(
    cs: ConfigSpaceBuilder, length: int, cfg_type: int, bar: int, offset: int, size: int
) -> int:
    """Add one struct virtio_pci_cap (virtio_pci_add_mem_cap): first fit, prepended."""
    cap = cs.add_capability(regs.CAP_ID_VNDR, length)
    cs.set_byte(cap + 2, length)
    cs.set_byte(cap + CAP_CFG_TYPE, cfg_type)
    cs.set_byte(cap + CAP_BAR, bar)
    cs.set_long(cap + CAP_OFFSET, offset)
    cs.set_long(cap + CAP_LENGTH, size)
    return cap


def _add_modern(ctx: BuildContext, cs: ConfigSpaceBuilder) -> None:
    """Vendor capabilities and BARs of the virtio 1.0 interface (virtio_pci_device_plugged)."""
    mult = PAGE_PER_VQ_MULT if ctx.flag("page-per-vq") else PACKED_NOTIFY_MULT
    notify_size = mult * VIRTIO_QUEUE_MAX
    _add_vendor_cap(cs, VIRTIO_CAP_LEN, CAP_COMMON_CFG, MODERN_MEM_BAR, 0, REGION_PAGE)
    _add_vendor_cap(cs, VIRTIO_CAP_LEN, CAP_ISR_CFG, MODERN_MEM_BAR, REGION_PAGE, REGION_PAGE)
    _add_vendor_cap(
        cs, VIRTIO_CAP_LEN, CAP_DEVICE_CFG, MODERN_MEM_BAR, 2 * REGION_PAGE, REGION_PAGE
    )
    notify = _add_vendor_cap(
        cs, VIRTIO_NOTIFY_CAP_LEN, CAP_NOTIFY_CFG, MODERN_MEM_BAR, NOTIFY_OFFSET, notify_size
    )
    cs.set_long(notify + NOTIFY_OFF_MULTIPLIER, mult)
    if ctx.flag("modern-pio-notify"):
        cs.register_bar(MODERN_IO_BAR, NOTIFY_PIO_SIZE, regs.BASE_ADDRESS_SPACE_IO)
        # Every queue notifies at offset 0 of the I/O BAR: multiplier 0.
        _add_vendor_cap(
            cs, VIRTIO_NOTIFY_CAP_LEN, CAP_NOTIFY_CFG, MODERN_IO_BAR, 0, NOTIFY_PIO_SIZE
        )
    cs.register_bar(
        MODERN_MEM_BAR,
        pow2ceil(NOTIFY_OFFSET + notify_size),
        regs.BASE_ADDRESS_SPACE_MEMORY
        | regs.BASE_ADDRESS_MEM_PREFETCH
        | regs.BASE_ADDRESS_MEM_TYPE_64,
    )
    # The PCI configuration access capability: the guest picks a BAR window and
    # reads or writes through the data field.
    cfg = cs.add_capability(regs.CAP_ID_VNDR, VIRTIO_CFG_CAP_LEN)
    cs.set_byte(cfg + 2, VIRTIO_CFG_CAP_LEN)
    cs.set_byte(cfg + CAP_CFG_TYPE, CAP_PCI_CFG)
    cs.set_mask("wmask", cfg + CAP_BAR, 0xFF, 1)
    cs.set_mask("wmask", cfg + CAP_OFFSET, 0xFFFFFFFF, 4)
    cs.set_mask("wmask", cfg + CAP_LENGTH, 0xFFFFFFFF, 4)
    cs.set_mask("wmask", cfg + CFG_DATA, 0xFFFFFFFF, 4)


def build_virtio(ctx: BuildContext, kind: VirtioKind) -> ConfigSpace:
    """The common virtio-pci layout for one device kind."""
    legacy, modern = _legacy_and_modern(ctx)
    kind.checks(ctx)
    nvectors = kind.vectors(ctx)
    class_code = kind.class_code(ctx)
    cs = ctx.new_config_space(
        vendor_id=VENDOR_REDHAT_QUMRANET,
        device_id=kind.legacy_device_id if legacy else DEVICE_ID_MODERN_BASE + kind.virtio_id,
        class_id=kind.class_id if class_code is None else class_code,
        # Legacy and transitional devices carry the virtio ID as subsystem ID
        # (the subsystem vendor stays Red Hat/Qumranet).
        revision=0 if legacy else 1,
        subsystem_vendor_id=VENDOR_REDHAT_QUMRANET if legacy else 0,
        subsystem_id=kind.virtio_id if legacy else 0,
    )
    cs.set_byte(regs.INTERRUPT_PIN, INTERRUPT_PIN_A)
    if modern:
        _add_modern(ctx, cs)
    # msix_init refuses more than 2048 entries; virtio-pci then runs without MSI-X.
    msix = 0 < nvectors <= regs.MSIX_MAX_VECTORS
    if msix:
        add_msix_exclusive_bar(cs, nvectors, MSIX_BAR)
    if legacy:
        header = LEGACY_HEADER_MSIX if msix else LEGACY_HEADER
        cs.register_bar(
            LEGACY_IO_BAR, pow2ceil(header + kind.config_len(ctx)), regs.BASE_ADDRESS_SPACE_IO
        )
    ctx.add_option_rom(cs)
    return cs.freeze()


def optimal_num_queues(ctx: BuildContext, fixed_queues: int) -> int:
    """QEMU hw/virtio/virtio-pci.c, virtio_pci_optimal_num_queues (5.2 to 11.1): one
    request queue per vCPU, at most what MSI-X vectors (one each, besides the config
    interrupt and the ``fixed_queues``) and a device's virtqueues can serve."""
    return min(ctx.vcpus, MSIX_FLAGS_QSIZE - fixed_queues, VIRTIO_QUEUE_MAX - fixed_queues)


def _auto_queues(ctx: BuildContext, name: str, auto: int, fixed_queues: int) -> int:
    """Property ``name``'s queue count, ``auto`` resolved where the release has it."""
    queues = ctx.int(name)
    if queues == auto and ctx.flag("_num_queues_auto"):
        return optimal_num_queues(ctx, fixed_queues)
    return queues


# ------------------------------------------------------------------ virtio-net


def _net_vectors(ctx: BuildContext) -> int:
    """virtio_net_pci_realize: two per queue pair, control and config (one pair here:
    the netdev the oracle gives a device has one queue). Before ``unspecified``
    existed (``_vectors_unspecified``), 4294967295 was a count QEMU could not
    allocate."""
    vectors = ctx.int("vectors")
    if vectors != NVECTORS_UNSPECIFIED:
        return vectors
    if not ctx.flag("_vectors_unspecified"):
        ctx.refuse(f"vectors={vectors}: QEMU aborts allocating that many MSI-X vectors")
    return 2 * 1 + 2


def _net_config_len(ctx: BuildContext) -> int:
    """struct virtio_net_config up to the last field a host feature needs
    (hw/net/virtio-net.c: cfg_size_params)."""
    size = 6  # mac
    if ctx.flag("status"):
        size = 8
    if ctx.flag("mq"):
        size = 10
    if ctx.int("host_mtu"):
        size = 12
    if ctx.int("speed") >= 0 or ctx.props.get("duplex"):
        size = 17
    if ctx.flag("rss") or ctx.flag("hash"):
        size = 24
    return size


def _net_checks(ctx: BuildContext) -> None:
    """The realize-time checks of hw/net/virtio-net.c."""
    for name, low in (("rx_queue_size", 256), ("tx_queue_size", 256)):
        size = ctx.int(name)
        if size < low or size > VIRTQUEUE_MAX_SIZE or size & (size - 1):
            ctx.refuse(
                f"Invalid {name} (= {size}), must be a power of 2 between {low} and "
                f"{VIRTQUEUE_MAX_SIZE}"
            )
    if ctx.int("speed") < -1:
        ctx.refuse("'speed' must be between 0 and INT_MAX")
    duplex = ctx.props.get("duplex")
    if duplex and duplex not in ("half", "full"):
        ctx.refuse("'duplex' must be 'half' or 'full'")


NET = VirtioKind(
    virtio_id=1,
    legacy_device_id=0x1000,
    class_id=CLASS_NETWORK_ETHERNET,
    vectors=_net_vectors,
    config_len=_net_config_len,
    checks=_net_checks,
)


@builder("virtio-net-pci")
def build_virtio_net(ctx: BuildContext) -> ConfigSpace:
    return build_virtio(ctx, NET)


# ------------------------------------------------------------------ virtio-blk


# hw/block/virtio-blk.c: VIRTIO_BLK_AUTO_NUM_QUEUES (UINT16_MAX).
BLK_AUTO_NUM_QUEUES = 0xFFFF


def _blk_queues(ctx: BuildContext) -> int:
    """num-queues; auto (65535) gives one queue per vCPU (virtio_blk_pci_realize)."""
    return _auto_queues(ctx, "num-queues", BLK_AUTO_NUM_QUEUES, 0)


def _blk_vectors(ctx: BuildContext) -> int:
    """virtio_blk_pci_realize: one per request queue and one for config changes."""
    vectors = ctx.int("vectors")
    return _blk_queues(ctx) + 1 if vectors == NVECTORS_UNSPECIFIED else vectors


def _blk_config_len(ctx: BuildContext) -> int:
    """struct virtio_blk_config up to the last field the features need."""
    if ctx.flag("write-zeroes"):
        return 57
    if ctx.flag("discard"):
        return 48
    return 36


_BLK_GEOMETRY = (("cyls", 65535), ("heads", 255), ("secs", 255))


def _blk_checks(ctx: BuildContext) -> None:
    """hw/block/virtio-blk.c: virtio_blk_device_realize."""
    if not ctx.props.get("drive"):
        ctx.refuse("drive property not set")
    # virtio_blk_get_features: SCSI passthrough is a legacy-only feature.
    if ctx.flag("scsi") and not ctx.flag("disable-modern"):
        ctx.refuse("Please set scsi=off for virtio-blk devices in order to use virtio 1.0")
    queues = _blk_queues(ctx)
    if queues == 0:
        ctx.refuse("num-queues property must be larger than 0")
    if queues > VIRTIO_QUEUE_MAX:
        # QEMU has no check and aborts adding the 1025th queue.
        ctx.refuse(f"num-queues={queues} exceeds the {VIRTIO_QUEUE_MAX} virtqueues of a device")
    for name in ("logical_block_size", "physical_block_size"):
        block = ctx.int(name)
        if block and (block & (block - 1) or not 512 <= block <= 2 * 1024 * 1024):
            ctx.refuse(f"parameter {name} must be a power of 2 between 512 and 2097152")
    if ctx.flag("_blocksize_checks"):
        check_blocksizes(ctx)
    # hw/block/block.c: blkconf_geometry(conf, NULL, 65535, 255, 255): a geometry
    # given in part is checked whole (all zero: QEMU guesses it from the drive).
    geometry = [(name, ctx.int(name), most) for name, most in _BLK_GEOMETRY]
    if any(value for _, value, _ in geometry):
        for name, value, most in geometry:
            if not 1 <= value <= most:
                ctx.refuse(f"{name} must be between 1 and {most}")
    size = ctx.int("queue-size")
    if size <= 2:
        ctx.refuse("queue-size property must be > 2")
    if size & (size - 1):
        ctx.refuse("queue-size property must be a power of 2")
    if size > VIRTQUEUE_MAX_SIZE:
        ctx.refuse(f"queue-size property must be <= {VIRTQUEUE_MAX_SIZE}")


def _blk_class(ctx: BuildContext) -> int | None:
    """virtio_pci_device_plugged: a non-zero ``class`` sets the 16-bit class code."""
    value = ctx.int("class")
    return None if value == 0 else value & 0xFFFF


BLK = VirtioKind(
    virtio_id=2,
    legacy_device_id=0x1001,
    class_id=CLASS_STORAGE_SCSI,
    vectors=_blk_vectors,
    config_len=_blk_config_len,
    checks=_blk_checks,
    class_code=_blk_class,
)


@builder("virtio-blk-pci")
def build_virtio_blk(ctx: BuildContext) -> ConfigSpace:
    return build_virtio(ctx, BLK)


# ------------------------------------------------------------------ virtio-scsi

# hw/scsi/virtio-scsi.c: the control and event queues besides the request queues.
SCSI_FIXED_QUEUES = 2


# include/hw/virtio/virtio-scsi.h: VIRTIO_SCSI_AUTO_NUM_QUEUES (UINT32_MAX).
SCSI_AUTO_NUM_QUEUES = 0xFFFFFFFF


def _scsi_queues(ctx: BuildContext) -> int:
    """num_queues; auto (4294967295) gives one request queue per vCPU
    (virtio_scsi_pci_realize)."""
    return _auto_queues(ctx, "num_queues", SCSI_AUTO_NUM_QUEUES, SCSI_FIXED_QUEUES)


def _scsi_vectors(ctx: BuildContext) -> int:
    """virtio_scsi_pci_realize: every queue and the config interrupt."""
    vectors = ctx.int("vectors")
    if vectors == NVECTORS_UNSPECIFIED:
        return _scsi_queues(ctx) + SCSI_FIXED_QUEUES + 1
    return vectors


def _scsi_checks(ctx: BuildContext) -> None:
    """hw/scsi/virtio-scsi.c: virtio_scsi_common_realize."""
    queues = _scsi_queues(ctx)
    limit = VIRTIO_QUEUE_MAX - SCSI_FIXED_QUEUES
    if queues == 0 or queues > limit:
        ctx.refuse(
            f"Invalid number of queues (= {queues}), must be a positive integer less than {limit}."
        )
    size = ctx.int("virtqueue_size")
    if size <= 2:
        ctx.refuse(f"Invalid virtqueue_size (= {size}), must be > 2")
    if size > VIRTQUEUE_MAX_SIZE:
        ctx.refuse(f"Invalid virtqueue_size (= {size}), must be <= {VIRTQUEUE_MAX_SIZE}")


SCSI = VirtioKind(
    virtio_id=8,
    legacy_device_id=0x1004,
    class_id=CLASS_STORAGE_SCSI,
    vectors=_scsi_vectors,
    config_len=lambda ctx: 36,
    checks=_scsi_checks,
)


@builder("virtio-scsi-pci")
def build_virtio_scsi(ctx: BuildContext) -> ConfigSpace:
    return build_virtio(ctx, SCSI)


# ------------------------------------------------------------------ virtio-balloon


def _balloon_vectors(ctx: BuildContext) -> int:
    """Before ``vectors`` existed (its historical value is 0) the balloon had no
    MSI-X; unspecified means one vector for the queues and one for config changes."""
    vectors = ctx.int("vectors")
    return 2 if vectors == NVECTORS_UNSPECIFIED else vectors


def _balloon_config_len(ctx: BuildContext) -> int:
    """struct virtio_balloon_config (hw/virtio/virtio-balloon.c: virtio_balloon_config_size)."""
    if ctx.flag("qemu-4-0-config-size"):
        return 16
    if ctx.flag("page-poison"):
        return 16
    if ctx.flag("free-page-hint"):
        return 12
    return 8


def _balloon_checks(ctx: BuildContext) -> None:
    """hw/virtio/virtio-balloon.c: virtio_balloon_device_realize."""
    if ctx.flag("free-page-hint") and not ctx.props.get("iothread"):
        ctx.refuse("'free-page-hint' requires 'iothread' to be set")


BALLOON = VirtioKind(
    virtio_id=5,
    legacy_device_id=0x1002,
    class_id=CLASS_OTHERS,
    vectors=_balloon_vectors,
    config_len=_balloon_config_len,
    checks=_balloon_checks,
)


@builder("virtio-balloon-pci")
def build_virtio_balloon(ctx: BuildContext) -> ConfigSpace:
    return build_virtio(ctx, BALLOON)


# ------------------------------------------------------------------ virtio-rng


def _rng_vectors(ctx: BuildContext) -> int:
    vectors = ctx.int("vectors")
    return 2 if vectors == NVECTORS_UNSPECIFIED else vectors


def _rng_checks(ctx: BuildContext) -> None:
    """hw/virtio/virtio-rng.c: virtio_rng_device_realize."""
    if ctx.int("period") == 0:
        ctx.refuse("'period' parameter expects a positive integer")
    if ctx.flag("_max_bytes_positive"):
        if not 0 < ctx.int("max-bytes") <= 0x7FFFFFFFFFFFFFFF:
            ctx.refuse("'max-bytes' parameter must be positive, and less than 2^63")
    elif ctx.int("max-bytes") > 0x7FFFFFFFFFFFFFFF:
        ctx.refuse("'max-bytes' parameter must be non-negative, and less than 2^63")


RNG = VirtioKind(
    virtio_id=4,
    legacy_device_id=0x1005,
    class_id=CLASS_OTHERS,
    vectors=_rng_vectors,
    config_len=lambda ctx: 0,
    checks=_rng_checks,
)


@builder("virtio-rng-pci")
def build_virtio_rng(ctx: BuildContext) -> ConfigSpace:
    return build_virtio(ctx, RNG)


# ------------------------------------------------------------------ virtio-serial

# hw/char/virtio-serial-bus.c: two queues per port plus the control pair.
SERIAL_MAX_PORTS = (VIRTIO_QUEUE_MAX - 2) // 2


def _serial_vectors(ctx: BuildContext) -> int:
    """virtio_serial_pci_realize: unspecified means one per port plus config."""
    vectors = ctx.int("vectors")
    return ctx.int("max_ports") + 1 if vectors == NVECTORS_UNSPECIFIED else vectors


def _serial_checks(ctx: BuildContext) -> None:
    ports = ctx.int("max_ports")
    if ports == 0:
        ctx.refuse("Maximum number of serial ports not specified")
    if ports > SERIAL_MAX_PORTS:
        ctx.refuse(f"maximum ports supported: {SERIAL_MAX_PORTS}")


def _serial_class(ctx: BuildContext) -> int | None:
    """virtio_serial_pci_realize keeps three historical class codes, else 0x0780."""
    value = ctx.int("class")
    if value in (CLASS_COMMUNICATION_OTHER, CLASS_DISPLAY_OTHER, CLASS_OTHERS):
        return value
    return CLASS_COMMUNICATION_OTHER


SERIAL = VirtioKind(
    virtio_id=3,
    legacy_device_id=0x1003,
    class_id=CLASS_COMMUNICATION_OTHER,
    vectors=_serial_vectors,
    config_len=lambda ctx: 12 if ctx.flag("emergency-write") else 8,
    checks=_serial_checks,
    class_code=_serial_class,
)


@builder("virtio-serial-pci")
def build_virtio_serial(ctx: BuildContext) -> ConfigSpace:
    return build_virtio(ctx, SERIAL)
