"""ich9-ahci: the ICH9 SATA AHCI controller (QEMU hw/ide/ich.c, hw/ide/ahci.c).

Intel ICH9 datasheet §14 (SATA controller registers): the function exposes the
AHCI index/data pair as I/O BAR 4 and the ABAR (HBA registers) as memory BAR 5.
QEMU links a SATA capability at 0xa8 and then MSI at 0x80, so the list runs
0x80 (MSI) -> 0xa8 (SATA), as the datasheet's lspci dump shows.
"""

from __future__ import annotations

from compatlab.catalogue.builders import BuildContext, builder
from compatlab.pci import regs
from compatlab.pci.capabilities import add_msi
from compatlab.pci.config_space import ConfigSpace

VENDOR_INTEL = 0x8086
DEVICE_82801IR = 0x2922
CLASS_STORAGE_SATA = 0x0106
REVISION = 0x02
PROG_IF_AHCI_1_0 = 0x01

IDP_BAR = 4
IDP_BAR_SIZE = 32  # QEMU hw/ide/ahci.c: the "ahci-idp" region
MEM_BAR = 5
MEM_BAR_SIZE = 0x1000  # AHCI_MEM_BAR_SIZE: 4 KiB (real hardware decodes 2 KiB)

SATA_CAP_OFFSET = 0xA8
SATA_CAP_SIZE = 8
SATA_CAP_REV = 2
SATA_CAP_BAR = 4
SATA_REVISION_1_0 = 0x0010
# SATA Capability Register 1 (ICH9 datasheet §14.1.37): BARLOC (bits 3:0) names the
# BAR holding the index/data pair as 4 + BAR number (0x8: BAR 4); BAROFST (bits 23:4)
# is the pair's offset in that BAR in dwords (0x10 bytes: 4).
IDP_OFFSET_DWORDS = 0x04

MSI_CAP_OFFSET = 0x80

# ICH9 datasheet §14.1.29 MAP: address map register, AHCI mode selected.
MAP_REGISTER = 0x90
MAP_AHCI_MODE = 1 << 6


@builder("ich9-ahci")
def build_ich9_ahci(ctx: BuildContext) -> ConfigSpace:
    cs = ctx.new_config_space(
        vendor_id=VENDOR_INTEL,
        device_id=DEVICE_82801IR,
        class_id=CLASS_STORAGE_SATA,
        revision=REVISION,
    )
    cs.set_byte(regs.CLASS_PROG, PROG_IF_AHCI_1_0)
    cs.set_byte(regs.INTERRUPT_PIN, 1)
    cs.set_byte(MAP_REGISTER, MAP_AHCI_MODE)
    cs.register_bar(IDP_BAR, IDP_BAR_SIZE, regs.BASE_ADDRESS_SPACE_IO)
    cs.register_bar(MEM_BAR, MEM_BAR_SIZE, regs.BASE_ADDRESS_SPACE_MEMORY)

    sata = cs.add_capability(regs.CAP_ID_SATA, SATA_CAP_SIZE, SATA_CAP_OFFSET)
    cs.set_word(sata + SATA_CAP_REV, SATA_REVISION_1_0)
    cs.set_long(sata + SATA_CAP_BAR, (IDP_BAR + 4) | (IDP_OFFSET_DWORDS << 4))

    # The i440fx board's MSI works (an APIC is present), so msi_init never
    # falls back to INTx here.
    add_msi(cs, MSI_CAP_OFFSET, 1, is_64bit=True, per_vector_mask=False)
    ctx.add_option_rom(cs)
    return cs.freeze()
