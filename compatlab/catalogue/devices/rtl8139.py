"""rtl8139: the Realtek RTL8139C+ fast Ethernet NIC (QEMU hw/net/rtl8139.c).

RTL8139C datasheet §5 (PCI configuration space): I/O BAR 0 and memory BAR 1, each
256 bytes, map the same register file.
"""

from __future__ import annotations

from compatlab.catalogue.builders import BuildContext, builder
from compatlab.pci import regs
from compatlab.pci.config_space import ConfigSpace

VENDOR_REALTEK = 0x10EC
DEVICE_RTL8139 = 0x8139
REVISION_RTL8139 = 0x20  # QEMU RTL8139_PCI_REVID: the C+ revision
CLASS_NETWORK_ETHERNET = 0x0200

REGISTER_BAR_SIZE = 0x100

# QEMU writes a capabilities pointer of 0xdc but never sets the status register's
# capability-list bit nor puts anything at 0xdc: guests that honour the status bit
# (as PCI Local Bus 3.0 §6.7 asks) ignore it, yet the byte is there to read.
DANGLING_CAP_POINTER = 0xDC


@builder("rtl8139")
def build_rtl8139(ctx: BuildContext) -> ConfigSpace:
    cs = ctx.new_config_space(
        vendor_id=VENDOR_REALTEK,
        device_id=DEVICE_RTL8139,
        class_id=CLASS_NETWORK_ETHERNET,
        revision=REVISION_RTL8139,
    )
    cs.set_byte(regs.INTERRUPT_PIN, 1)
    cs.set_byte(regs.CAPABILITY_LIST, DANGLING_CAP_POINTER)
    cs.register_bar(0, REGISTER_BAR_SIZE, regs.BASE_ADDRESS_SPACE_IO)
    cs.register_bar(1, REGISTER_BAR_SIZE, regs.BASE_ADDRESS_SPACE_MEMORY)
    ctx.add_option_rom(cs)
    return cs.freeze()
