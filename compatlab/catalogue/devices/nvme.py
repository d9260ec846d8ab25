"""nvme: the NVM Express controller (QEMU hw/nvme/ctrl.c: nvme_check_params, nvme_init_pci).

Capabilities, in the order QEMU adds them: power management at 0x60, PCI Express
(version 2, endpoint) at 0x80 with Function Level Reset, then MSI-X first-fit
(0x40). Power management and Function Level Reset came with QEMU 7.1 (the
internal ``_pm_flr``); before, PCI Express was alone at 0x80. BAR 0 holds the registers and doorbells, and the MSI-X table and PBA
after them on 4 KiB boundaries, unless ``msix-exclusive-bar`` puts those alone in
BAR 4 (the layout before QEMU 6.0). BAR 2 is the controller memory buffer, BAR 4
the persistent memory region.
"""

from __future__ import annotations

from compatlab.catalogue.builders import BuildContext, builder
from compatlab.catalogue.devices.block import BLOCK_SIZE_MIN, check_blocksizes
from compatlab.pci import pcie, regs
from compatlab.pci.capabilities import add_msix, add_msix_exclusive_bar, pow2ceil
from compatlab.pci.config_space import ConfigSpace
from compatlab.pci.pm import add_pm

VENDOR_REDHAT = 0x1B36
DEVICE_REDHAT_NVME = 0x0010
VENDOR_INTEL = 0x8086
DEVICE_INTEL_NVME = 0x5845
CLASS_STORAGE_EXPRESS = 0x0108
PROG_IF_NVME = 0x02
REVISION = 2

PM_OFFSET = 0x60
PCIE_OFFSET = 0x80
MSIX_EXCLUSIVE_BAR = 4
CMB_BAR = 2
PMR_BAR = 4

REGS_SIZE = 0x1000  # sizeof(NvmeBar)
DOORBELL_SIZE = 4
MAX_IOQPAIRS = 0xFFFF
MSIX_QSIZE_MAX = 2048
SMART_WARNINGS = 0x1F  # spare, temperature, reliability, read-only, volatile backup
MIB = 1 << 20
BLOCK_SIZE_MAX = 2 * MIB
# The oracle backs every memory-backend link with a 1 MiB memory-backend-ram; the
# model has no backend sizes, so a PMR BAR is that size.
PMR_BACKEND_SIZE = MIB

BAR_MEM64 = regs.BASE_ADDRESS_SPACE_MEMORY | regs.BASE_ADDRESS_MEM_TYPE_64
BAR_MEM64_PREFETCH = BAR_MEM64 | regs.BASE_ADDRESS_MEM_PREFETCH


def _align_4k(value: int) -> int:
    return (value + 0xFFF) & ~0xFFF


def bar0_layout(total_queues: int, vectors: int) -> tuple[int, int, int]:
    """(BAR 0 size, MSI-X table offset, PBA offset) for ``total_queues`` queue pairs
    (admin included) and ``vectors`` MSI-X vectors in BAR 0 (QEMU's nvme_mbar_size).

    With no vectors the BAR only holds the registers and doorbells.
    """
    size = REGS_SIZE + 2 * total_queues * DOORBELL_SIZE
    if vectors == 0:
        return pow2ceil(size), 0, 0
    table = _align_4k(size)
    pba = _align_4k(table + regs.MSIX_ENTRY_SIZE * vectors)
    size = pba + ((vectors + 63) // 64) * 8
    return pow2ceil(size), table, pba


def _check_block_size(ctx: BuildContext, name: str) -> None:
    """QEMU's block-size property setter refuses a size before realize runs."""
    value = ctx.int(name)
    if value and (value & (value - 1) or not BLOCK_SIZE_MIN <= value <= BLOCK_SIZE_MAX):
        ctx.refuse(f"Property {name} must be a power of two between 512 B and 2 MiB, not {value}")


def _check_params(ctx: BuildContext) -> int:
    """nvme_check_params (and the property setters QEMU runs first). Returns max_ioqpairs."""
    _check_block_size(ctx, "logical_block_size")
    _check_block_size(ctx, "physical_block_size")
    warning = ctx["smart_critical_warning"]
    if isinstance(warning, int) and warning & ~SMART_WARNINGS:
        ctx.refuse(f"unsupported smart critical warning bits: {warning & ~SMART_WARNINGS:#x}")

    max_ioqpairs = ctx.int("max_ioqpairs")
    if ctx.int("num_queues"):
        max_ioqpairs = ctx.int("num_queues") - 1
    if ctx["drive"] and ctx["subsys"]:
        ctx.refuse("subsystem support is unavailable with legacy namespace ('drive' property)")
    if not 1 <= max_ioqpairs <= MAX_IOQPAIRS:
        ctx.refuse(f"max_ioqpairs must be between 1 and {MAX_IOQPAIRS}")
    if not 1 <= ctx.int("msix_qsize") <= MSIX_QSIZE_MAX:
        ctx.refuse(f"msix_qsize must be between 1 and {MSIX_QSIZE_MAX}")
    if ctx["serial"] is None:
        ctx.refuse("serial property not set")
    if ctx.props.get("mqes", 1) == 0:
        ctx.refuse("mqes property cannot be less than 1")
    if ctx["pmrdev"] and ctx.flag("msix-exclusive-bar"):
        ctx.refuse("not enough BARs available to enable PMR")
    if ctx.int("zoned.zasl") > ctx.int("mdts"):
        ctx.refuse(
            "zoned.zasl (Zone Append Size Limit) must be less than or equal to "
            "mdts (Maximum Data Transfer Size)"
        )
    if ctx.int("vsl") == 0:
        ctx.refuse("vsl must be non-zero")
    _check_sriov(ctx, max_ioqpairs)
    if ctx.props.get("spdm_port"):
        # Realize connects to an SPDM responder on localhost; none runs with the oracle.
        ctx.refuse(f"cannot connect to an SPDM responder on port {ctx['spdm_port']}")
    cmb = ctx.int("cmb_size_mb")
    if cmb & (cmb - 1):
        # QEMU asserts in pci_register_bar (the process aborts).
        ctx.refuse(f"cmb_size_mb={cmb} is not a power of two (pci_register_bar assertion)")
    if ctx["drive"]:
        check_blocksizes(ctx)  # the namespace on the drive
    return max_ioqpairs


def _check_sriov(ctx: BuildContext, max_ioqpairs: int) -> None:
    max_vfs = ctx.int("sriov_max_vfs")
    if not max_vfs:
        return
    if not ctx["subsys"]:
        ctx.refuse("subsystem is required for the use of SR-IOV")
    if ctx.int("cmb_size_mb"):
        ctx.refuse("CMB is not supported with SR-IOV")
    if ctx["pmrdev"]:
        ctx.refuse("PMR is not supported with SR-IOV")
    vq_flexible, vi_flexible = ctx.int("sriov_vq_flexible"), ctx.int("sriov_vi_flexible")
    if not vq_flexible or not vi_flexible:
        ctx.refuse("both sriov_vq_flexible and sriov_vi_flexible must be set for the use of SR-IOV")
    if vq_flexible < max_vfs * 2:
        ctx.refuse(f"sriov_vq_flexible must be greater than or equal to {max_vfs * 2}")
    if max_ioqpairs < vq_flexible + 2:
        ctx.refuse("(max_ioqpairs - sriov_vq_flexible) must be greater than or equal to 2")
    if vi_flexible < max_vfs:
        ctx.refuse(f"sriov_vi_flexible must be greater than or equal to {max_vfs}")
    if ctx.int("msix_qsize") < vi_flexible + 1:
        ctx.refuse("(msix_qsize - sriov_vi_flexible) must be greater than or equal to 1")


@builder("nvme")
def build_nvme(ctx: BuildContext) -> ConfigSpace:
    max_ioqpairs = _check_params(ctx)
    intel = ctx.flag("use-intel-id")
    cs = ctx.new_config_space(
        vendor_id=VENDOR_INTEL if intel else VENDOR_REDHAT,
        device_id=DEVICE_INTEL_NVME if intel else DEVICE_REDHAT_NVME,
        class_id=CLASS_STORAGE_EXPRESS,
        revision=REVISION,
    )
    cs.set_byte(regs.CLASS_PROG, PROG_IF_NVME)
    cs.set_byte(regs.INTERRUPT_PIN, 1)

    if ctx.flag("_pm_flr"):
        add_pm(cs, PM_OFFSET, pmc=regs.PM_CAP_VER_1_2, pmcsr=regs.PM_CTRL_NO_SOFT_RESET)
    exp = pcie.add_pcie_cap(
        cs,
        PCIE_OFFSET,
        version=2,
        ext_tag=ctx.flag("x-pcie-ext-tag"),
        link_active=ctx.link_active(),
    )
    if ctx.flag("_pm_flr"):
        pcie.init_flr(cs, exp)

    vectors = ctx.int("msix_qsize")
    if ctx.flag("msix-exclusive-bar"):
        size, _, _ = bar0_layout(max_ioqpairs + 1, 0)
        cs.register_bar(0, size, BAR_MEM64)
        add_msix_exclusive_bar(cs, vectors, MSIX_EXCLUSIVE_BAR)
    else:
        size, table, pba = bar0_layout(max_ioqpairs + 1, vectors)
        cs.register_bar(0, size, BAR_MEM64)
        add_msix(cs, vectors, table_bar=0, table_offset=table, pba_bar=0, pba_offset=pba)
    if ctx.flag("_deverr_init"):
        pcie.init_deverr(cs, exp)

    if ctx.int("cmb_size_mb"):
        cs.register_bar(CMB_BAR, ctx.int("cmb_size_mb") * MIB, BAR_MEM64_PREFETCH)
    if ctx["pmrdev"]:
        cs.register_bar(PMR_BAR, PMR_BACKEND_SIZE, BAR_MEM64_PREFETCH)
    ctx.add_option_rom(cs)
    return cs.freeze()
