"""e1000e: the Intel 82574L gigabit NIC (QEMU hw/net/e1000e.c: e1000e_pci_realize).

Four BARs (MMIO, flash, I/O, MSI-X), then the capabilities in QEMU's order:
MSI-X at 0xa0 (5 vectors in BAR 3), PCI Express version 1 at 0xe0, MSI at 0xd0
(one 64-bit vector), power management at 0xc8. The subsystem IDs come from the
``subsys_ven`` and ``subsys`` properties, zero included. AER and the device
serial number live past 0x100.
"""

from __future__ import annotations

from compatlab.catalogue.builders import BuildContext, builder
from compatlab.pci import pcie, regs
from compatlab.pci.capabilities import add_msi, add_msix
from compatlab.pci.config_space import ConfigSpace
from compatlab.pci.pm import add_pm

VENDOR_INTEL = 0x8086
DEVICE_82574L = 0x10D3
CLASS_NETWORK_ETHERNET = 0x0200

MMIO_BAR, FLASH_BAR, IO_BAR, MSIX_BAR = 0, 1, 2, 3
MMIO_SIZE = 128 * 1024
FLASH_SIZE = 128 * 1024
IO_SIZE = 32
MSIX_BAR_SIZE = 16 * 1024
MSIX_VECTORS = 5
MSIX_TABLE_OFFSET = 0x0000
MSIX_PBA_OFFSET = 0x2000

MSIX_OFFSET = 0xA0
PM_OFFSET = 0xC8
MSI_OFFSET = 0xD0
PCIE_OFFSET = 0xE0


@builder("e1000e")
def build_e1000e(ctx: BuildContext) -> ConfigSpace:
    cs = ctx.new_config_space(
        vendor_id=VENDOR_INTEL, device_id=DEVICE_82574L, class_id=CLASS_NETWORK_ETHERNET
    )
    # Realize sets the cache line size to 0x10, but device reset clears it again.
    cs.set_byte(regs.INTERRUPT_PIN, 1)
    # Written unconditionally by realize, so 0/0 stays 0/0 (no QEMU default IDs).
    cs.set_word(regs.SUBSYSTEM_VENDOR_ID, ctx.int("subsys_ven"))
    cs.set_word(regs.SUBSYSTEM_ID, ctx.int("subsys"))

    cs.register_bar(MMIO_BAR, MMIO_SIZE, regs.BASE_ADDRESS_SPACE_MEMORY)
    cs.register_bar(FLASH_BAR, FLASH_SIZE, regs.BASE_ADDRESS_SPACE_MEMORY)
    cs.register_bar(IO_BAR, IO_SIZE, regs.BASE_ADDRESS_SPACE_IO)
    cs.register_bar(MSIX_BAR, MSIX_BAR_SIZE, regs.BASE_ADDRESS_SPACE_MEMORY)

    add_msix(
        cs,
        MSIX_VECTORS,
        table_bar=MSIX_BAR,
        table_offset=MSIX_TABLE_OFFSET,
        pba_bar=MSIX_BAR,
        pba_offset=MSIX_PBA_OFFSET,
        offset=MSIX_OFFSET,
    )
    pcie.add_pcie_cap(
        cs,
        PCIE_OFFSET,
        version=1,
        ext_tag=ctx.flag("x-pcie-ext-tag"),
        link_active=ctx.link_active(),
    )
    add_msi(cs, MSI_OFFSET, 1, is_64bit=True, per_vector_mask=False)
    add_pm(
        cs,
        PM_OFFSET,
        pmc=regs.PM_CAP_VER_1_1 | regs.PM_CAP_DSI,
        ctrl_wmask=regs.PM_CTRL_STATE_MASK | regs.PM_CTRL_PME_ENABLE | regs.PM_CTRL_DATA_SEL_MASK,
        ctrl_w1cmask=regs.PM_CTRL_PME_STATUS,
    )
    ctx.add_option_rom(cs)
    return cs.freeze()
