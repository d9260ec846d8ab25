"""Register offsets and bit values of conventional PCI configuration space.

PCI Local Bus Specification 3.0 §6.1 (type 0 header) and §6.7 (capabilities);
names follow Linux's ``pci_regs.h``, which QEMU uses too.
"""

from __future__ import annotations

CONFIG_SPACE_SIZE = 0x100
HEADER_SIZE = 0x40

VENDOR_ID = 0x00
DEVICE_ID = 0x02
COMMAND = 0x04
STATUS = 0x06
REVISION_ID = 0x08
CLASS_PROG = 0x09
CLASS_DEVICE = 0x0A
CACHE_LINE_SIZE = 0x0C
LATENCY_TIMER = 0x0D
HEADER_TYPE = 0x0E
BIST = 0x0F
BASE_ADDRESS_0 = 0x10
CARDBUS_CIS = 0x28
SUBSYSTEM_VENDOR_ID = 0x2C
SUBSYSTEM_ID = 0x2E
ROM_ADDRESS = 0x30
CAPABILITY_LIST = 0x34
INTERRUPT_LINE = 0x3C
INTERRUPT_PIN = 0x3D
MIN_GNT = 0x3E
MAX_LAT = 0x3F

NUM_BARS = 6
ROM_SLOT = 6

COMMAND_IO = 0x1
COMMAND_MEMORY = 0x2
COMMAND_MASTER = 0x4
COMMAND_SPECIAL = 0x8
COMMAND_INVALIDATE = 0x10
COMMAND_VGA_PALETTE = 0x20
COMMAND_PARITY = 0x40
COMMAND_WAIT = 0x80
COMMAND_SERR = 0x100
COMMAND_FAST_BACK = 0x200
COMMAND_INTX_DISABLE = 0x400

STATUS_INTERRUPT = 0x08
STATUS_CAP_LIST = 0x10
STATUS_66MHZ = 0x20
STATUS_FAST_BACK = 0x80
STATUS_PARITY = 0x100
STATUS_DEVSEL_MEDIUM = 0x200
STATUS_SIG_TARGET_ABORT = 0x800
STATUS_REC_TARGET_ABORT = 0x1000
STATUS_REC_MASTER_ABORT = 0x2000
STATUS_SIG_SYSTEM_ERROR = 0x4000
STATUS_DETECTED_PARITY = 0x8000

HEADER_TYPE_MULTI_FUNCTION = 0x80

BASE_ADDRESS_SPACE_IO = 0x01
BASE_ADDRESS_SPACE_MEMORY = 0x00
BASE_ADDRESS_MEM_TYPE_32 = 0x00
BASE_ADDRESS_MEM_TYPE_64 = 0x04
BASE_ADDRESS_MEM_PREFETCH = 0x08
ROM_ADDRESS_ENABLE = 0x01

CAP_LIST_ID = 0
CAP_LIST_NEXT = 1

CAP_ID_PM = 0x01
CAP_ID_MSI = 0x05
CAP_ID_VNDR = 0x09
CAP_ID_EXP = 0x10
CAP_ID_MSIX = 0x11
CAP_ID_SATA = 0x12
CAP_ID_AF = 0x13

CAP_NAMES = {
    CAP_ID_PM: "power management",
    CAP_ID_MSI: "MSI",
    CAP_ID_VNDR: "vendor-specific",
    CAP_ID_EXP: "PCI Express",
    CAP_ID_MSIX: "MSI-X",
    CAP_ID_SATA: "SATA",
    CAP_ID_AF: "advanced features",
}

# Named header registers: (offset, width) -> name, for register-level diffs.
HEADER_FIELDS: dict[int, tuple[int, str]] = {
    VENDOR_ID: (2, "vendor_id"),
    DEVICE_ID: (2, "device_id"),
    COMMAND: (2, "command"),
    STATUS: (2, "status"),
    REVISION_ID: (1, "revision_id"),
    CLASS_PROG: (1, "prog_if"),
    CLASS_DEVICE: (2, "class"),
    CACHE_LINE_SIZE: (1, "cache_line_size"),
    LATENCY_TIMER: (1, "latency_timer"),
    HEADER_TYPE: (1, "header_type"),
    BIST: (1, "bist"),
    **{BASE_ADDRESS_0 + 4 * n: (4, f"bar{n}") for n in range(NUM_BARS)},
    CARDBUS_CIS: (4, "cardbus_cis"),
    SUBSYSTEM_VENDOR_ID: (2, "subsystem_vendor_id"),
    SUBSYSTEM_ID: (2, "subsystem_id"),
    ROM_ADDRESS: (4, "rom_address"),
    CAPABILITY_LIST: (1, "capabilities_pointer"),
    INTERRUPT_LINE: (1, "interrupt_line"),
    INTERRUPT_PIN: (1, "interrupt_pin"),
    MIN_GNT: (1, "min_gnt"),
    MAX_LAT: (1, "max_lat"),
}


def bar_offset(region: int) -> int:
    """Config-space offset of BAR ``region`` (0–5) or of the expansion ROM (6)."""
    return ROM_ADDRESS if region == ROM_SLOT else BASE_ADDRESS_0 + 4 * region
