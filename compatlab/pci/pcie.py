"""The PCI Express capability (ID 0x10), as QEMU's hw/pci/pcie.c builds it.

PCI Express Base 4.0 §7.5.3. On the conventional i440fx bus only the first 256
bytes of config space are reachable, so only this capability (never the
extended capabilities from 0x100: AER, serial number, ARI, SR-IOV) is
guest-visible. A function on a conventional bus is a plain endpoint (QEMU makes
it a Root Complex Integrated Endpoint only on an express root bus).

QEMU fills the capability in ``pcie_cap_v1_fill`` (shared by version 1 and 2),
then ``pcie_cap_init`` adds the version 2 registers; devices opt into further
features afterwards (``pcie_cap_flr_init``, ``pcie_cap_deverr_init``,
``pcie_cap_lnkctl_init``), each of which only sets a capability bit and opens
mask bits.
"""

from __future__ import annotations

from compatlab.pci import regs
from compatlab.pci.config_space import ConfigSpaceBuilder

VER1_SIZEOF = 0x14
VER2_SIZEOF = 0x3C

# Register offsets inside the capability (Linux pci_regs.h names).
EXP_FLAGS = 0x02
EXP_DEVCAP = 0x04
EXP_DEVCTL = 0x08
EXP_DEVSTA = 0x0A
EXP_LNKCAP = 0x0C
EXP_LNKCTL = 0x10
EXP_LNKSTA = 0x12
EXP_DEVCAP2 = 0x24
EXP_DEVCTL2 = 0x28

FLAGS_VER1 = 0x1
FLAGS_VER2 = 0x2
FLAGS_TYPE_SHIFT = 4
FLAGS_TYPE = 0x00F0
TYPE_ENDPOINT = 0x0
TYPE_RC_END = 0x9

DEVCAP_EXT_TAG = 0x00000020
DEVCAP_RBER = 0x00008000
DEVCAP_FLR = 0x10000000

DEVCTL_CERE = 0x0001
DEVCTL_NFERE = 0x0002
DEVCTL_FERE = 0x0004
DEVCTL_URRE = 0x0008
DEVCTL_BCR_FLR = 0x8000

DEVSTA_CED = 0x0001
DEVSTA_NFED = 0x0002
DEVSTA_FED = 0x0004
DEVSTA_URD = 0x0008

LNKCAP_PN_SHIFT = 24
LNKCAP_ASPMS_0S = 0x00000400
LNK_X1 = 1
LNK_2_5GT = 1
LNKCAP_MLW_SHIFT = 4
LNKSTA_NLW_SHIFT = 4

LNKCTL_CCC = 0x0040
LNKCTL_ES = 0x0080

DEVCAP2_EFF = 0x00100000
DEVCAP2_EETLPP = 0x00200000
DEVCTL2_EETLPPB = 0x8000


def add_pcie_cap(
    cs: ConfigSpaceBuilder,
    offset: int,
    *,
    version: int = 2,
    port_type: int = TYPE_ENDPOINT,
    port: int = 0,
    ext_tag: bool = True,
) -> int:
    """Link a PCI Express capability of ``version`` 1 or 2 (QEMU's pcie_cap_init and
    pcie_cap_v1_init). Returns its offset.

    ``ext_tag`` is QEMU's ``x-pcie-ext-tag`` (hw_compat_9_1 turns it off): the
    Extended Tag Field Supported bit of Device Capabilities. The link is x1 at
    2.5 GT/s with L0s supported; Data Link Layer Link Active is left clear, as
    QEMU sets it only when a PCI Express slot plugs the device.
    """
    if version not in (1, 2):
        raise ValueError(f"PCI Express capability version {version} is not 1 or 2")
    size = VER1_SIZEOF if version == 1 else VER2_SIZEOF
    cap = cs.add_capability(regs.CAP_ID_EXP, size, offset)
    cs.set_word(cap + EXP_FLAGS, ((port_type << FLAGS_TYPE_SHIFT) & FLAGS_TYPE) | version)
    # Role-based error reporting is mandatory since PCIe 1.1 (Base spec table 7-12).
    cs.set_long(cap + EXP_DEVCAP, DEVCAP_RBER | (DEVCAP_EXT_TAG if ext_tag else 0))
    cs.set_long(
        cap + EXP_LNKCAP,
        (port << LNKCAP_PN_SHIFT) | LNKCAP_ASPMS_0S | (LNK_X1 << LNKCAP_MLW_SHIFT) | LNK_2_5GT,
    )
    cs.set_word(cap + EXP_LNKSTA, (LNK_X1 << LNKSTA_NLW_SHIFT) | LNK_2_5GT)
    # QEMU changed link status bits across releases and does not check them on load.
    cs.set_mask("cmask", cap + EXP_LNKSTA, 0, 2)
    if version == 2:
        cs.set_long(cap + EXP_DEVCAP2, DEVCAP2_EFF | DEVCAP2_EETLPP)
        cs.set_mask("wmask", cap + EXP_DEVCTL2, DEVCTL2_EETLPPB, 2)
    # With x-pcie-extcap-init QEMU also makes the dword at 0x100 read-only (a null
    # extended capability header); that lies beyond the conventional 256 bytes.
    return cap


def init_flr(cs: ConfigSpaceBuilder, cap: int) -> None:
    """Advertise Function Level Reset (QEMU's pcie_cap_flr_init).

    Initiate FLR is writable so that QEMU sees the write; it always reads 0.
    """
    cs.set_long(cap + EXP_DEVCAP, cs.get(cap + EXP_DEVCAP, 4) | DEVCAP_FLR)
    cs.or_mask("wmask", cap + EXP_DEVCTL, DEVCTL_BCR_FLR, 2)


def init_deverr(cs: ConfigSpaceBuilder, cap: int) -> None:
    """Device error reporting controls and status (QEMU's pcie_cap_deverr_init)."""
    cs.set_long(cap + EXP_DEVCAP, cs.get(cap + EXP_DEVCAP, 4) | DEVCAP_RBER)
    cs.or_mask("wmask", cap + EXP_DEVCTL, DEVCTL_CERE | DEVCTL_NFERE | DEVCTL_FERE | DEVCTL_URRE, 2)
    cs.or_mask("w1cmask", cap + EXP_DEVSTA, DEVSTA_CED | DEVSTA_NFED | DEVSTA_FED | DEVSTA_URD, 2)


def init_lnkctl(cs: ConfigSpaceBuilder, cap: int) -> None:
    """Common Clock Configuration and Extended Synch (QEMU's pcie_cap_lnkctl_init)."""
    cs.or_mask("wmask", cap + EXP_LNKCTL, LNKCTL_CCC | LNKCTL_ES, 2)
