"""The PCI model: config space, masks, BARs and capabilities (no device knowledge)."""

from compatlab.pci.config_space import Capability, ConfigSpace, ConfigSpaceBuilder

__all__ = ["Capability", "ConfigSpace", "ConfigSpaceBuilder"]
