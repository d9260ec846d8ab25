"""The power management capability (ID 0x01).

PCI Bus Power Management Interface 1.2 §3.2: Power Management Capabilities
(PMC) and Control/Status (PMCSR). QEMU devices fill PMC and PMCSR themselves
and choose which PMCSR bits the guest may write (hw/pci/pci.c: pci_pm_init
opens the power-state field; e1000e and nvme add their own bits).
"""

from __future__ import annotations

from compatlab.pci import regs
from compatlab.pci.config_space import ConfigSpaceBuilder

PM_SIZEOF = 8
PM_PMC = 2
PM_CTRL = 4

PM_CAP_VER_1_1 = 0x0002
PM_CAP_VER_1_2 = 0x0003
PM_CAP_DSI = 0x0020

PM_CTRL_STATE_MASK = 0x0003
PM_CTRL_NO_SOFT_RESET = 0x0008
PM_CTRL_PME_ENABLE = 0x0100
PM_CTRL_DATA_SEL_MASK = 0x1E00
PM_CTRL_PME_STATUS = 0x8000


def add_pm(
    cs: ConfigSpaceBuilder,
    offset: int,
    *,
    pmc: int,
    pmcsr: int = 0,
    ctrl_wmask: int = PM_CTRL_STATE_MASK,
    ctrl_w1cmask: int = 0,
) -> int:
    """Link a power management capability at ``offset`` (0: first fit). Returns it."""
    cap = cs.add_capability(regs.CAP_ID_PM, PM_SIZEOF, offset)
    cs.set_word(cap + PM_PMC, pmc)
    cs.set_word(cap + PM_CTRL, pmcsr)
    cs.set_mask("wmask", cap + PM_CTRL, ctrl_wmask, 2)
    cs.set_mask("w1cmask", cap + PM_CTRL, ctrl_w1cmask, 2)
    return cap
