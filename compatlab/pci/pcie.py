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


def add_pcie_cap(
    cs: ConfigSpaceBuilder,
    offset: int,
    *,
    version: int = 2,
    port_type: int = regs.EXP_TYPE_ENDPOINT,
    port: int = 0,
    ext_tag: bool = True,
    link_active: bool = False,
) -> int:
    """Link a PCI Express capability of ``version`` 1 or 2 (QEMU's pcie_cap_init and
    pcie_cap_v1_init). Returns its offset.

    ``ext_tag`` is QEMU's ``x-pcie-ext-tag`` (hw_compat_9_1 turns it off): the
    Extended Tag Field Supported bit of Device Capabilities. The link is x1 at
    2.5 GT/s with L0s supported. ``link_active`` sets Data Link Layer Link Active
    in Link Status, as QEMU's pcie_cap_v1_fill did before 6.0; later releases set
    it only when a PCI Express slot plugs the device.
    """
    if version not in (1, 2):
        raise ValueError(f"PCI Express capability version {version} is not 1 or 2")
    size = regs.EXP_VER1_SIZEOF if version == 1 else regs.EXP_VER2_SIZEOF
    cap = cs.add_capability(regs.CAP_ID_EXP, size, offset)
    cs.set_word(
        cap + regs.EXP_FLAGS,
        ((port_type << regs.EXP_FLAGS_TYPE_SHIFT) & regs.EXP_FLAGS_TYPE) | version,
    )
    # Role-based error reporting is mandatory since PCIe 1.1 (Base spec table 7-12).
    cs.set_long(
        cap + regs.EXP_DEVCAP, regs.EXP_DEVCAP_RBER | (regs.EXP_DEVCAP_EXT_TAG if ext_tag else 0)
    )
    cs.set_long(
        cap + regs.EXP_LNKCAP,
        (port << regs.EXP_LNKCAP_PN_SHIFT)
        | regs.EXP_LNKCAP_ASPMS_0S
        | (regs.EXP_LNK_X1 << regs.EXP_LNKCAP_MLW_SHIFT)
        | regs.EXP_LNK_2_5GT,
    )
    cs.set_word(
        cap + regs.EXP_LNKSTA,
        (regs.EXP_LNK_X1 << regs.EXP_LNKSTA_NLW_SHIFT)
        | regs.EXP_LNK_2_5GT
        | (regs.EXP_LNKSTA_DLLLA if link_active else 0),
    )
    # QEMU changed link status bits across releases and does not check them on load.
    cs.set_mask("cmask", cap + regs.EXP_LNKSTA, 0, 2)
    if version == 2:
        cs.set_long(cap + regs.EXP_DEVCAP2, regs.EXP_DEVCAP2_EFF | regs.EXP_DEVCAP2_EETLPP)
        cs.set_mask("wmask", cap + regs.EXP_DEVCTL2, regs.EXP_DEVCTL2_EETLPPB, 2)
    # With x-pcie-extcap-init QEMU also makes the dword at 0x100 read-only (a null
    # extended capability header); that lies beyond the conventional 256 bytes.
    return cap


def init_flr(cs: ConfigSpaceBuilder, cap: int) -> None:
    """Advertise Function Level Reset (QEMU's pcie_cap_flr_init).

    Initiate FLR is writable so that QEMU sees the write; it always reads 0.
    """
    cs.set_long(cap + regs.EXP_DEVCAP, cs.get(cap + regs.EXP_DEVCAP, 4) | regs.EXP_DEVCAP_FLR)
    cs.or_mask("wmask", cap + regs.EXP_DEVCTL, regs.EXP_DEVCTL_BCR_FLR, 2)


def init_deverr(cs: ConfigSpaceBuilder, cap: int) -> None:
    """Device error reporting controls and status (QEMU's pcie_cap_deverr_init)."""
    cs.set_long(cap + regs.EXP_DEVCAP, cs.get(cap + regs.EXP_DEVCAP, 4) | regs.EXP_DEVCAP_RBER)
    cs.or_mask(
        "wmask",
        cap + regs.EXP_DEVCTL,
        regs.EXP_DEVCTL_CERE | regs.EXP_DEVCTL_NFERE | regs.EXP_DEVCTL_FERE | regs.EXP_DEVCTL_URRE,
        2,
    )
    cs.or_mask(
        "w1cmask",
        cap + regs.EXP_DEVSTA,
        regs.EXP_DEVSTA_CED | regs.EXP_DEVSTA_NFED | regs.EXP_DEVSTA_FED | regs.EXP_DEVSTA_URD,
        2,
    )


def init_lnkctl(cs: ConfigSpaceBuilder, cap: int) -> None:
    """Common Clock Configuration and Extended Synch (QEMU's pcie_cap_lnkctl_init)."""
    cs.or_mask("wmask", cap + regs.EXP_LNKCTL, regs.EXP_LNKCTL_CCC | regs.EXP_LNKCTL_ES, 2)
