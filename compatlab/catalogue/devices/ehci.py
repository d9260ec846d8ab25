"""usb-ehci: the Intel 82801DB (ICH4) USB 2.0 EHCI controller (QEMU hw/usb/hcd-ehci-pci.c).

EHCI 1.0 §2.1 (PCI configuration registers): programming interface 0x20, the
capability and operational registers in memory BAR 0, SBRN at 0x60 (release 2.0),
FLADJ at 0x61 (0x20: a 60000-clock frame), PORTWAKECAP at 0x62. The EECP field
of HCCPARAMS points at 0x68, where QEMU puts a USB legacy support extended
capability (§2.1.7, USBLEGSUP: capability ID 1) and USBLEGCTLSTS at 0x6c, whose
top byte reads 0xc0. EHCI extended capabilities are not on the PCI capability
list, so the capabilities pointer stays 0.
"""

from __future__ import annotations

from compatlab.catalogue.builders import BuildContext, builder
from compatlab.pci import regs
from compatlab.pci.config_space import ConfigSpace

VENDOR_INTEL = 0x8086
DEVICE_82801DB_EHCI = 0x24CD
REVISION_ICH4_EHCI = 0x10
CLASS_SERIAL_USB = 0x0C03
PROG_IF_EHCI = 0x20

MMIO_BAR_SIZE = 0x1000  # QEMU MMIO_SIZE
INTERRUPT_PIN_D = 4

SBRN = 0x60
USB_RELEASE_2_0 = 0x20
FLADJ = 0x61
FLADJ_DEFAULT = 0x20
USBLEGSUP = 0x68
USBLEGSUP_CAP_ID = 0x01
USBLEGCTLSTS_TOP = 0x6F
USBLEGCTLSTS_TOP_VALUE = 0xC0

# QEMU hw/usb/hcd-ehci.c: usb_ehci_realize's accepted frame list sizes.
MAXFRAMES_MIN = 8
MAXFRAMES_MAX = 512


@builder("usb-ehci")
def build_usb_ehci(ctx: BuildContext) -> ConfigSpace:
    maxframes = ctx.int("maxframes")
    if not MAXFRAMES_MIN <= maxframes <= MAXFRAMES_MAX:
        ctx.refuse(f"maxframes {maxframes} out if range ({MAXFRAMES_MIN} .. {MAXFRAMES_MAX})")
    cs = ctx.new_config_space(
        vendor_id=VENDOR_INTEL,
        device_id=DEVICE_82801DB_EHCI,
        class_id=CLASS_SERIAL_USB,
        revision=REVISION_ICH4_EHCI,
    )
    cs.set_byte(regs.CLASS_PROG, PROG_IF_EHCI)
    cs.set_byte(regs.INTERRUPT_PIN, INTERRUPT_PIN_D)
    cs.set_byte(SBRN, USB_RELEASE_2_0)
    cs.set_byte(FLADJ, FLADJ_DEFAULT)
    cs.set_byte(USBLEGSUP, USBLEGSUP_CAP_ID)
    cs.set_byte(USBLEGCTLSTS_TOP, USBLEGCTLSTS_TOP_VALUE)
    cs.register_bar(0, MMIO_BAR_SIZE, regs.BASE_ADDRESS_SPACE_MEMORY)
    ctx.add_option_rom(cs)
    return cs.freeze()
