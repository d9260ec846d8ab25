"""What QEMU's block layer checks for every device on a drive (hw/block/block.c),
shared by the builders of the storage devices that have one (nvme, virtio-blk)."""

from __future__ import annotations

from compatlab.catalogue.builders import BuildContext

#: The block size a drive reports when none is set: the oracle's null-co backend
#: reports none, so QEMU takes BDRV_SECTOR_SIZE.
BLOCK_SIZE_MIN = 512
#: min_io_size reaches the guest as a 16-bit count of logical blocks.
MIN_IO_BLOCKS_MAX = 0xFFFF
#: discard_granularity's "unset" (QEMU leaves it to the device).
GRANULARITY_UNSET = 0xFFFFFFFF


def check_blocksizes(ctx: BuildContext) -> None:
    """blkconf_blocksizes: the block sizes of the drive must fit together (unset ones
    are the backend's, 512 bytes here)."""
    logical = ctx.int("logical_block_size") or BLOCK_SIZE_MIN
    physical = ctx.int("physical_block_size") or BLOCK_SIZE_MIN
    if logical > physical:
        ctx.refuse("logical_block_size > physical_block_size not supported")
    if ctx.int("min_io_size") % logical:
        ctx.refuse("min_io_size must be a multiple of logical_block_size")
    if ctx.int("min_io_size") // logical > MIN_IO_BLOCKS_MAX:
        ctx.refuse(f"min_io_size must not exceed {MIN_IO_BLOCKS_MAX} logical blocks")
    if ctx.int("opt_io_size") % logical:
        ctx.refuse("opt_io_size must be a multiple of logical_block_size")
    granularity = ctx.int("discard_granularity")
    if granularity != GRANULARITY_UNSET and granularity % logical:
        ctx.refuse("discard_granularity must be a multiple of logical_block_size")
