"""pvpanic-pci (QEMU hw/misc/pvpanic-pci.c): one 2-byte MMIO register in BAR 0."""

from __future__ import annotations

from compatlab.catalogue.builders import BuildContext, builder
from compatlab.pci import regs
from compatlab.pci.config_space import ConfigSpace

VENDOR_REDHAT = 0x1B36
DEVICE_PVPANIC = 0x0011
CLASS_SYSTEM_OTHER = 0x0880
PVPANIC_REGION_SIZE = 2


@builder("pvpanic-pci")
def build_pvpanic(ctx: BuildContext) -> ConfigSpace:
    cs = ctx.new_config_space(
        vendor_id=VENDOR_REDHAT,
        device_id=DEVICE_PVPANIC,
        class_id=CLASS_SYSTEM_OTHER,
        revision=1,
    )
    cs.register_bar(0, PVPANIC_REGION_SIZE, regs.BASE_ADDRESS_SPACE_MEMORY)
    ctx.add_option_rom(cs)
    return cs.freeze()
