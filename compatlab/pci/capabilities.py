"""Standard capabilities that many devices share: MSI and MSI-X.

Each function takes a :class:`ConfigSpaceBuilder`, links the capability with
QEMU's placement rule and opens the bits a guest may write, as QEMU's
hw/pci/msi.c and hw/pci/msix.c do. Device-specific capabilities (power
management, PCI Express, vendor-specific) live in their own modules.
"""

from __future__ import annotations

from compatlab.errors import MsiError
from compatlab.pci import regs
from compatlab.pci.config_space import ConfigSpaceBuilder


def add_msi(
    cs: ConfigSpaceBuilder,
    offset: int,
    nr_vectors: int,
    *,
    is_64bit: bool,
    per_vector_mask: bool,
) -> int:
    """Add an MSI capability (QEMU hw/pci/msi.c: msi_init). Returns its offset."""
    if nr_vectors < 1 or nr_vectors > regs.MSI_VECTORS_MAX or nr_vectors & (nr_vectors - 1):
        raise MsiError(f"MSI needs a power-of-two vector count up to 32, not {nr_vectors}")
    order = nr_vectors.bit_length() - 1
    flags = order << 1
    if is_64bit:
        flags |= regs.MSI_FLAGS_64BIT
    if per_vector_mask:
        flags |= regs.MSI_FLAGS_MASKBIT
    cap = cs.add_capability(regs.CAP_ID_MSI, regs.msi_cap_size(is_64bit, per_vector_mask), offset)
    cs.set_word(cap + regs.MSI_FLAGS, flags)
    cs.set_mask("wmask", cap + regs.MSI_FLAGS, regs.MSI_FLAGS_QSIZE | regs.MSI_FLAGS_ENABLE, 2)
    cs.set_mask("wmask", cap + regs.MSI_ADDRESS_LO, regs.MSI_ADDRESS_LO_MASK, 4)
    data = cap + (regs.MSI_DATA_64 if is_64bit else regs.MSI_DATA_32)
    if is_64bit:
        cs.set_mask("wmask", cap + regs.MSI_ADDRESS_HI, 0xFFFFFFFF, 4)
    cs.set_mask("wmask", data, 0xFFFF, 2)
    if per_vector_mask:
        mask_off = cap + (regs.MSI_MASK_64 if is_64bit else regs.MSI_MASK_32)
        cs.set_mask("wmask", mask_off, 0xFFFFFFFF >> (regs.MSI_VECTORS_MAX - nr_vectors), 4)
    return cap


def add_msix(
    cs: ConfigSpaceBuilder,
    nentries: int,
    *,
    table_bar: int,
    table_offset: int,
    pba_bar: int,
    pba_offset: int,
    offset: int = 0,
) -> int:
    """Add an MSI-X capability (QEMU hw/pci/msix.c: msix_init). Returns its offset.

    The Message Control register stores the table size minus one.
    """
    if nentries < 1 or nentries > regs.MSIX_MAX_VECTORS:
        raise MsiError("The number of MSI-X vectors is invalid")
    cap = cs.add_capability(regs.CAP_ID_MSIX, regs.MSIX_CAP_LENGTH, offset)
    cs.set_word(cap + regs.MSIX_FLAGS, nentries - 1)
    cs.set_long(cap + regs.MSIX_TABLE, table_offset | table_bar)
    cs.set_long(cap + regs.MSIX_PBA, pba_offset | pba_bar)
    cs.or_mask("wmask", cap + regs.MSIX_CONTROL_BYTE, regs.MSIX_ENABLE | regs.MSIX_MASKALL, 1)
    return cap


def pow2ceil(value: int) -> int:
    """Smallest power of two >= value (QEMU's pow2ceil; 0 and 1 give 1)."""
    return 1 if value <= 1 else 1 << (value - 1).bit_length()


def msix_exclusive_bar_layout(nentries: int) -> tuple[int, int]:
    """(BAR size, PBA offset) of a BAR holding only the MSI-X table and PBA.

    QEMU's msix_init_exclusive_bar keeps a 4 KiB BAR with the table in the lower
    half and the PBA in the upper half while that fits (migration compatibility).
    """
    bar_size = 4096
    pba_offset = bar_size // 2
    pba_size = ((nentries + 63) // 64) * 8
    if nentries * regs.MSIX_ENTRY_SIZE > pba_offset:
        pba_offset = nentries * regs.MSIX_ENTRY_SIZE
    if pba_offset + pba_size > 4096:
        bar_size = pba_offset + pba_size
    return pow2ceil(bar_size), pba_offset


def add_msix_exclusive_bar(cs: ConfigSpaceBuilder, nentries: int, bar: int) -> int:
    """MSI-X with its table and PBA alone in BAR ``bar`` (msix_init_exclusive_bar)."""
    if nentries < 1 or nentries > regs.MSIX_MAX_VECTORS:
        raise MsiError("The number of MSI-X vectors is invalid")
    size, pba_offset = msix_exclusive_bar_layout(nentries)
    cap = add_msix(cs, nentries, table_bar=bar, table_offset=0, pba_bar=bar, pba_offset=pba_offset)
    cs.register_bar(bar, size, regs.BASE_ADDRESS_SPACE_MEMORY)
    return cap
