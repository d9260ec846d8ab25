"""Register offsets and bit values of conventional PCI configuration space: the one
home of every register constant the model uses.

PCI Local Bus Specification 3.0 §6.1 (type 0 header), §6.7 (capabilities) and §6.8
(MSI, MSI-X); PCI Bus Power Management Interface 1.2 §3.2; PCI Express Base 4.0
§7.5.3 (the PCI Express capability). Names follow Linux's ``pci_regs.h``, which
QEMU uses too, without its ``PCI_`` prefix; capability registers are offsets from
the capability's start.
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

# MSI (PCI Local Bus 3.0 §6.8.1)
MSI_FLAGS = 0x02
MSI_FLAGS_ENABLE = 0x0001
MSI_FLAGS_QMASK = 0x000E
MSI_FLAGS_QSIZE = 0x0070
MSI_FLAGS_64BIT = 0x0080
MSI_FLAGS_MASKBIT = 0x0100
MSI_ADDRESS_LO = 0x04
MSI_ADDRESS_LO_MASK = 0xFFFFFFFC
MSI_ADDRESS_HI = 0x08
MSI_DATA_32 = 0x08
MSI_MASK_32 = 0x0C
MSI_DATA_64 = 0x0C
MSI_MASK_64 = 0x10
MSI_VECTORS_MAX = 32
# Capability lengths: 32- or 64-bit address, without or with per-vector masking
# (QEMU hw/pci/msi.c: PCI_MSI_32_SIZEOF …).
MSI_32_SIZEOF = 0x0A
MSI_64_SIZEOF = 0x0E
MSI_32M_SIZEOF = 0x14
MSI_64M_SIZEOF = 0x18

# MSI-X (PCI Local Bus 3.0 §6.8.2)
MSIX_CAP_LENGTH = 12
MSIX_FLAGS = 0x02
MSIX_TABLE = 0x04
MSIX_PBA = 0x08
MSIX_ENTRY_SIZE = 16
MSIX_MAX_VECTORS = 2048
MSIX_CONTROL_BYTE = MSIX_FLAGS + 1
MSIX_ENABLE = 0x80
MSIX_MASKALL = 0x40

# Power management (PCI Bus Power Management Interface 1.2 §3.2)
PM_SIZEOF = 8
PM_PMC = 0x02
PM_CTRL = 0x04

PM_CAP_VER_1_1 = 0x0002
PM_CAP_VER_1_2 = 0x0003
PM_CAP_DSI = 0x0020

PM_CTRL_STATE_MASK = 0x0003
PM_CTRL_NO_SOFT_RESET = 0x0008
PM_CTRL_PME_ENABLE = 0x0100
PM_CTRL_DATA_SEL_MASK = 0x1E00
PM_CTRL_PME_STATUS = 0x8000

# PCI Express capability (PCI Express Base 4.0 §7.5.3)
EXP_VER1_SIZEOF = 0x14
EXP_VER2_SIZEOF = 0x3C

EXP_FLAGS = 0x02
EXP_DEVCAP = 0x04
EXP_DEVCTL = 0x08
EXP_DEVSTA = 0x0A
EXP_LNKCAP = 0x0C
EXP_LNKCTL = 0x10
EXP_LNKSTA = 0x12
EXP_DEVCAP2 = 0x24
EXP_DEVCTL2 = 0x28

EXP_FLAGS_VER1 = 0x1
EXP_FLAGS_VER2 = 0x2
EXP_FLAGS_TYPE_SHIFT = 4
EXP_FLAGS_TYPE = 0x00F0
EXP_TYPE_ENDPOINT = 0x0
EXP_TYPE_RC_END = 0x9

EXP_DEVCAP_EXT_TAG = 0x00000020
EXP_DEVCAP_RBER = 0x00008000
EXP_DEVCAP_FLR = 0x10000000

EXP_DEVCTL_CERE = 0x0001
EXP_DEVCTL_NFERE = 0x0002
EXP_DEVCTL_FERE = 0x0004
EXP_DEVCTL_URRE = 0x0008
EXP_DEVCTL_BCR_FLR = 0x8000

EXP_DEVSTA_CED = 0x0001
EXP_DEVSTA_NFED = 0x0002
EXP_DEVSTA_FED = 0x0004
EXP_DEVSTA_URD = 0x0008

EXP_LNKCAP_PN_SHIFT = 24
EXP_LNKCAP_ASPMS_0S = 0x00000400
EXP_LNKCAP_MLW_SHIFT = 4
EXP_LNKSTA_NLW_SHIFT = 4
EXP_LNKSTA_DLLLA = 0x2000  # Data Link Layer Link Active
# Link width x1 and speed 2.5 GT/s, as QEMU's pcie_regs.h encodes them.
EXP_LNK_X1 = 1
EXP_LNK_2_5GT = 1

EXP_LNKCTL_CCC = 0x0040
EXP_LNKCTL_ES = 0x0080

EXP_DEVCAP2_EFF = 0x00100000
EXP_DEVCAP2_EETLPP = 0x00200000
EXP_DEVCTL2_EETLPPB = 0x8000

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


def msi_cap_size(is_64bit: bool, per_vector_mask: bool) -> int:
    """Length of the MSI capability for its flavour (QEMU's msi_cap_sizeof)."""
    if per_vector_mask:
        return MSI_64M_SIZEOF if is_64bit else MSI_32M_SIZEOF
    return MSI_64_SIZEOF if is_64bit else MSI_32_SIZEOF
