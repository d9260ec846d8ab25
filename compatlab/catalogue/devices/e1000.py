"""e1000: the Intel 82540EM gigabit NIC (QEMU hw/net/e1000.c).

Intel PCI/PCI-X Family of Gigabit Ethernet Controllers Software Developer's
Manual (8254x SDM) §4.1: the register file is memory BAR 0 (128 KiB) and the
I/O-mapped IOADDR/IODATA window is BAR 1 (64 bytes in QEMU). No capabilities.

QEMU's pci_e1000_realize also writes a cache line size of 0x10, but the reset
that follows (pci_do_device_reset) clears it before a guest can look, so it is
absent here. e1000's compat properties (autonegotiation, mitigation,
extra_mac_registers, migrate_tso_props, init-vet) only change MMIO registers and
the migration stream; the option ROM is the one compat-driven part of config
space (pc_compat_1_4 swaps efi-e1000.rom for pxe-e1000.rom).
"""

from __future__ import annotations

from compatlab.catalogue.builders import BuildContext, builder
from compatlab.pci import regs
from compatlab.pci.config_space import ConfigSpace

VENDOR_INTEL = 0x8086
DEVICE_82540EM = 0x100E
REVISION_82540EM = 0x03
CLASS_NETWORK_ETHERNET = 0x0200

MMIO_BAR_SIZE = 0x20000  # QEMU PNPMMIO_SIZE
IO_BAR_SIZE = 0x40  # QEMU IOPORT_SIZE


@builder("e1000")
def build_e1000(ctx: BuildContext) -> ConfigSpace:
    cs = ctx.new_config_space(
        vendor_id=VENDOR_INTEL,
        device_id=DEVICE_82540EM,
        class_id=CLASS_NETWORK_ETHERNET,
        revision=REVISION_82540EM,
    )
    cs.set_byte(regs.INTERRUPT_PIN, 1)
    cs.register_bar(0, MMIO_BAR_SIZE, regs.BASE_ADDRESS_SPACE_MEMORY)
    cs.register_bar(1, IO_BAR_SIZE, regs.BASE_ADDRESS_SPACE_IO)
    ctx.add_option_rom(cs)
    return cs.freeze()
