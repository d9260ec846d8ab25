"""vmxnet3: VMware's paravirtual NIC (QEMU hw/net/vmxnet3.c).

Memory BARs: 0 holds the "PT" doorbell registers, 1 the "VD" device registers
(4 KiB each), 2 only the MSI-X table and PBA (8 KiB). QEMU adds a one-vector
64-bit MSI capability, then a 25-vector MSI-X capability (VMXNET3_MAX_INTRS).

``x-old-msi-offsets`` (on up to machine type 2.5, hw_compat_2_5) keeps QEMU
2.5's layout: MSI at 0x50, MSI-X wherever it first fits (0x40) and the PBA at
0x800 of BAR 2. Since 2.6 they sit at 0x84 and 0x9c with the PBA at 0x1000,
leaving 0x40-0x83 free for the PCI Express capability at 0x48 that QEMU adds
only on a PCI Express bus; i440fx is conventional, so neither it nor a power
management capability appears here, and ``x-disable-pcie`` changes nothing in
the first 256 bytes (only the device serial number capability at 0x100).
"""

from __future__ import annotations

from compatlab.catalogue.builders import BuildContext, builder
from compatlab.pci import regs
from compatlab.pci.capabilities import add_msi, add_msix
from compatlab.pci.config_space import ConfigSpace

VENDOR_VMWARE = 0x15AD
DEVICE_VMXNET3 = 0x07B0
REVISION_VMXNET3 = 0x01
CLASS_NETWORK_ETHERNET = 0x0200

PT_BAR, VD_BAR, MSIX_BAR = 0, 1, 2
PT_REG_SIZE = 0x1000
VD_REG_SIZE = 0x1000
MSIX_BAR_SIZE = 0x2000

MAX_INTRS = 25  # MSI-X vectors
MAX_NMSIX_INTRS = 1  # MSI vectors

MSI_OFFSET = 0x84
MSIX_OFFSET = 0x9C
MSIX_PBA_OFFSET = 0x1000
OLD_MSI_OFFSET = 0x50
OLD_MSIX_OFFSET = 0  # first fit
OLD_MSIX_PBA_OFFSET = 0x800
MSIX_TABLE_OFFSET = 0


@builder("vmxnet3")
def build_vmxnet3(ctx: BuildContext) -> ConfigSpace:
    old = ctx.flag("x-old-msi-offsets")
    cs = ctx.new_config_space(
        vendor_id=VENDOR_VMWARE,
        device_id=DEVICE_VMXNET3,
        class_id=CLASS_NETWORK_ETHERNET,
        revision=REVISION_VMXNET3,
        subsystem_vendor_id=VENDOR_VMWARE,
        subsystem_id=DEVICE_VMXNET3,
    )
    cs.register_bar(PT_BAR, PT_REG_SIZE, regs.BASE_ADDRESS_SPACE_MEMORY)
    cs.register_bar(VD_BAR, VD_REG_SIZE, regs.BASE_ADDRESS_SPACE_MEMORY)
    cs.register_bar(MSIX_BAR, MSIX_BAR_SIZE, regs.BASE_ADDRESS_SPACE_MEMORY)
    cs.set_byte(regs.INTERRUPT_PIN, 1)
    add_msi(
        cs,
        OLD_MSI_OFFSET if old else MSI_OFFSET,
        MAX_NMSIX_INTRS,
        is_64bit=True,
        per_vector_mask=False,
    )
    add_msix(
        cs,
        MAX_INTRS,
        table_bar=MSIX_BAR,
        table_offset=MSIX_TABLE_OFFSET,
        pba_bar=MSIX_BAR,
        pba_offset=OLD_MSIX_PBA_OFFSET if old else MSIX_PBA_OFFSET,
        offset=OLD_MSIX_OFFSET if old else MSIX_OFFSET,
    )
    ctx.add_option_rom(cs)
    return cs.freeze()
