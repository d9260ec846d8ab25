"""qemu-xhci: the xHCI USB controller with QEMU's IDs (QEMU hw/usb/hcd-xhci-pci.c:
usb_xhci_pci_realize, qemu_xhci_instance_init).

qemu-xhci is both a conventional PCI and a PCI Express device; on the
conventional i440fx bus QEMU drops the express flag and adds no PCI Express
capability. BAR 0 (64-bit, 16 KiB) holds the registers and the MSI-X table
(0x3000) and PBA (0x3800). The controller has 16 interrupters: MSI at 0x70
(``msi``, off unless asked for on qemu-xhci) and MSI-X at 0x90 (``msix``).
"""

from __future__ import annotations

from compatlab.catalogue.builders import BuildContext, builder
from compatlab.pci import regs
from compatlab.pci.capabilities import add_msi, add_msix
from compatlab.pci.config_space import ConfigSpace

VENDOR_REDHAT = 0x1B36
DEVICE_REDHAT_XHCI = 0x000D
CLASS_SERIAL_USB = 0x0C03
PROG_IF_XHCI = 0x30
REVISION = 1

SBRN = 0x60  # Serial Bus Release Number register (xHCI 1.1 §5.2.3)
SBRN_USB_3_0 = 0x30

REGS_SIZE = 0x4000
MSIX_TABLE_OFFSET = 0x3000
MSIX_PBA_OFFSET = 0x3800
MSI_OFFSET = 0x70
MSIX_OFFSET = 0x90
INTERRUPTERS = 16  # XHCI_MAXINTRS: qemu-xhci always has the maximum


@builder("qemu-xhci")
def build_qemu_xhci(ctx: BuildContext) -> ConfigSpace:
    cs = ctx.new_config_space(
        vendor_id=VENDOR_REDHAT,
        device_id=DEVICE_REDHAT_XHCI,
        class_id=CLASS_SERIAL_USB,
        revision=REVISION,
    )
    cs.set_byte(regs.CLASS_PROG, PROG_IF_XHCI)
    cs.set_byte(regs.INTERRUPT_PIN, 1)
    cs.set_byte(SBRN, SBRN_USB_3_0)

    # Properties that did not exist yet (QEMU before 10.0) resolve to the
    # behaviour of that time: no MSI, MSI-X when the board supports it.
    if ctx.props.get("msi", "off") != "off":
        add_msi(cs, MSI_OFFSET, INTERRUPTERS, is_64bit=True, per_vector_mask=False)
    cs.register_bar(0, REGS_SIZE, regs.BASE_ADDRESS_SPACE_MEMORY | regs.BASE_ADDRESS_MEM_TYPE_64)
    if ctx.props.get("msix", "auto") != "off":
        add_msix(
            cs,
            INTERRUPTERS,
            table_bar=0,
            table_offset=MSIX_TABLE_OFFSET,
            pba_bar=0,
            pba_offset=MSIX_PBA_OFFSET,
            offset=MSIX_OFFSET,
        )
    ctx.add_option_rom(cs)
    return cs.freeze()
