"""intel-hda: the Intel ICH6 HD Audio controller (QEMU hw/audio/intel-hda.c).

Intel High Definition Audio Specification 1.0a §3.3 (controller registers live in
memory BAR 0, 16 KiB); ICH6 datasheet §17.1.13 HDCTL at 0x40, whose bit 0
selects HD Audio rather than AC'97 signalling.
"""

from __future__ import annotations

from compatlab.catalogue.builders import BuildContext, builder
from compatlab.pci import regs
from compatlab.pci.capabilities import add_msi
from compatlab.pci.config_space import ConfigSpace

VENDOR_INTEL = 0x8086
DEVICE_ICH6_HDA = 0x2668
REVISION_ICH6 = 1
CLASS_MULTIMEDIA_HD_AUDIO = 0x0403

MMIO_BAR_SIZE = 0x4000
HDCTL = 0x40
HDCTL_HDA_MODE = 0x01

# QEMU moved the MSI capability from 0x50 to 0x60 in 2.2; old_msi_addr (set by
# hw_compat_2_1) keeps the old place for older machine types.
MSI_CAP_OFFSET = 0x60
OLD_MSI_CAP_OFFSET = 0x50


def msi_requested(value: object) -> bool:
    """Whether an ``msi`` setting asks for MSI.

    The on/off/auto property asks unless ``off`` (auto falls back silently only
    where MSI is broken, never on i440fx); the older integer asks unless 0.
    """
    if isinstance(value, str):
        return value != "off"
    return bool(value)


@builder("intel-hda")
def build_intel_hda(ctx: BuildContext) -> ConfigSpace:
    cs = ctx.new_config_space(
        vendor_id=VENDOR_INTEL,
        device_id=DEVICE_ICH6_HDA,
        class_id=CLASS_MULTIMEDIA_HD_AUDIO,
        revision=REVISION_ICH6,
    )
    cs.set_byte(regs.INTERRUPT_PIN, 1)
    cs.set_byte(HDCTL, HDCTL_HDA_MODE)
    cs.register_bar(0, MMIO_BAR_SIZE, regs.BASE_ADDRESS_SPACE_MEMORY)
    if msi_requested(ctx["msi"]):
        offset = OLD_MSI_CAP_OFFSET if ctx.flag("old_msi_addr") else MSI_CAP_OFFSET
        add_msi(cs, offset, 1, is_64bit=True, per_vector_mask=False)
    ctx.add_option_rom(cs)
    return cs.freeze()
