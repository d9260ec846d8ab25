"""megasas: the LSI MegaRAID SAS 1078 host bus adapter (QEMU hw/scsi/megasas.c).

QEMU gives the first-generation HBA an I/O BAR (2, 256 bytes) and two 64-bit
memory BARs: the MFI registers (0, 16 KiB, which also holds the MSI-X table at
0x2000 and the PBA at 0x3800) and a queue window (3, 256 KiB). MSI sits at 0x50
and MSI-X at 0x68, both at fixed offsets. A PCI Express capability (0xa0) is only
added on an express bus, which the i440fx board does not have.
"""

from __future__ import annotations

from compatlab.catalogue.builders import BuildContext, builder
from compatlab.pci import regs
from compatlab.pci.capabilities import add_msi, add_msix
from compatlab.pci.config_space import ConfigSpace

VENDOR_LSI_LOGIC = 0x1000
DEVICE_SAS1078 = 0x0060
SUBSYSTEM_SAS1078 = 0x1013
CLASS_STORAGE_RAID = 0x0104

IOPORT_BAR = 2
IOPORT_BAR_SIZE = 256
MMIO_BAR = 0
MMIO_BAR_SIZE = 0x4000
QUEUE_BAR = 3
QUEUE_BAR_SIZE = 0x40000
MEM_64 = regs.BASE_ADDRESS_SPACE_MEMORY | regs.BASE_ADDRESS_MEM_TYPE_64

MSI_CAP_OFFSET = 0x50
MSIX_CAP_OFFSET = 0x68
MSIX_VECTORS = 15
MSIX_TABLE_OFFSET = 0x2000
MSIX_PBA_OFFSET = 0x3800


@builder("megasas")
def build_megasas(ctx: BuildContext) -> ConfigSpace:
    cs = ctx.new_config_space(
        vendor_id=VENDOR_LSI_LOGIC,
        device_id=DEVICE_SAS1078,
        class_id=CLASS_STORAGE_RAID,
        subsystem_vendor_id=VENDOR_LSI_LOGIC,
        subsystem_id=SUBSYSTEM_SAS1078,
    )
    cs.set_byte(regs.INTERRUPT_PIN, 1)
    # msi=on cannot fail on i440fx (MSI works there), so on and auto agree.
    if ctx["msi"] != "off":
        add_msi(cs, MSI_CAP_OFFSET, 1, is_64bit=True, per_vector_mask=False)
    if ctx["msix"] != "off":
        add_msix(
            cs,
            MSIX_VECTORS,
            table_bar=MMIO_BAR,
            table_offset=MSIX_TABLE_OFFSET,
            pba_bar=MMIO_BAR,
            pba_offset=MSIX_PBA_OFFSET,
            offset=MSIX_CAP_OFFSET,
        )
    cs.register_bar(IOPORT_BAR, IOPORT_BAR_SIZE, regs.BASE_ADDRESS_SPACE_IO)
    cs.register_bar(MMIO_BAR, MMIO_BAR_SIZE, MEM_64)
    cs.register_bar(QUEUE_BAR, QUEUE_BAR_SIZE, MEM_64)
    ctx.add_option_rom(cs)
    return cs.freeze()
