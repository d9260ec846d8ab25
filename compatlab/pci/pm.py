"""The power management capability (ID 0x01).

PCI Bus Power Management Interface 1.2 §3.2: Power Management Capabilities
(PMC) and Control/Status (PMCSR). QEMU devices fill PMC and PMCSR themselves
and choose which PMCSR bits the guest may write (hw/pci/pci.c: pci_pm_init
opens the power-state field; e1000e and nvme add their own bits).
"""

from __future__ import annotations

from compatlab.pci import regs
from compatlab.pci.config_space import ConfigSpaceBuilder


def add_pm(
    cs: ConfigSpaceBuilder,
    offset: int,
    *,
    pmc: int,
    pmcsr: int = 0,
    ctrl_wmask: int = regs.PM_CTRL_STATE_MASK,
    ctrl_w1cmask: int = 0,
) -> int:
    """Link a power management capability at ``offset`` (0: first fit). Returns it."""
    cap = cs.add_capability(regs.CAP_ID_PM, regs.PM_SIZEOF, offset)
    cs.set_word(cap + regs.PM_PMC, pmc)
    cs.set_word(cap + regs.PM_CTRL, pmcsr)
    cs.set_mask("wmask", cap + regs.PM_CTRL, ctrl_wmask, 2)
    cs.set_mask("w1cmask", cap + regs.PM_CTRL, ctrl_w1cmask, 2)
    return cap
