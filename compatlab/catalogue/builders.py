"""The builder registry: functions that turn resolved properties into config space.

A builder registers itself for a concrete type with ``@builder("e1000")``; a
duplicate name is an error at import time. Builders read property values from
their :class:`BuildContext`, never a version number: whatever differs between
versions reaches them as a property value, through the catalogue's compat data.
"""

from __future__ import annotations

import builtins
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn

from compatlab.catalogue.properties import Value
from compatlab.errors import CatalogueError, DeviceRealizeError
from compatlab.pci import regs
from compatlab.pci.capabilities import pow2ceil
from compatlab.pci.config_space import ConfigSpace, ConfigSpaceBuilder


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a builder may know: the driver, its resolved properties, its address and
    the machine it is plugged into.

    ``roms`` maps firmware file names the emulator ships to their sizes in bytes;
    ``vcpus`` is the machine's vCPU count, which ``auto`` queue counts follow.
    """

    driver: str
    device_id: str | None
    props: Mapping[str, Value | None]
    slot: builtins.int
    function: builtins.int
    roms: Mapping[str, builtins.int]
    vcpus: builtins.int = 1

    def __getitem__(self, name: str) -> Value | None:
        return self.props[name]

    def int(self, name: str) -> builtins.int:
        value = self.props[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise CatalogueError(f"{self.driver}.{name} is not an integer property")
        return value

    def flag(self, name: str) -> bool:
        value = self.props[name]
        if isinstance(value, str):
            return value == "on"
        return bool(value)

    def link_active(self) -> bool:
        """Whether realize sets Data Link Layer Link Active in a PCI Express
        capability: the release does so at all (QEMU before 6.0, hw/pci/pcie.c
        pcie_cap_v1_fill) and ``x-pcie-lnksta-dllla`` is on."""
        return self.flag("_pcie_realize_dllla") and self.flag("x-pcie-lnksta-dllla")

    def refuse(self, reason: str) -> NoReturn:
        """Refuse to realize, as the emulator's realize function would."""
        raise DeviceRealizeError(self.driver, self.device_id, reason)

    def new_config_space(
        self,
        *,
        vendor_id: builtins.int,
        device_id: builtins.int,
        class_id: builtins.int,
        revision: builtins.int = 0,
        subsystem_vendor_id: builtins.int = 0,
        subsystem_id: builtins.int = 0,
    ) -> ConfigSpaceBuilder:
        """A config space with the generic pci-device properties applied.

        Also makes the checks QEMU's pci_qdev_realize makes for every device.
        """
        romsize = self.props.get("romsize")
        if (
            isinstance(romsize, int) and romsize != 0xFFFFFFFF and romsize & (romsize - 1)
        ) or romsize == 0:
            self.refuse(f"ROM size {romsize} is not a power of two")
        cs = ConfigSpaceBuilder(
            vendor_id=vendor_id,
            device_id=device_id,
            class_id=class_id,
            revision=revision,
            subsystem_vendor_id=subsystem_vendor_id,
            subsystem_id=subsystem_id,
            multifunction=bool(self.props.get("multifunction")),
        )
        if self.props.get("command_serr_enable") is False:
            cs.wmask[regs.COMMAND + 1] &= ~(regs.COMMAND_SERR >> 8) & 0xFF
        return cs

    def add_option_rom(self, cs: ConfigSpaceBuilder) -> None:
        """Map the option ROM as BAR 6 (QEMU's pci_add_option_rom).

        No ``romfile`` means no ROM; ``rombar=0`` loads it through fw_cfg instead
        of a BAR. The BAR is the ROM's size rounded up to a power of two, or
        ``romsize`` when set.
        """
        romfile = self.props.get("romfile")
        if not romfile:
            return
        assert isinstance(romfile, str)
        if not self.props.get("rombar"):
            return
        size = self.roms.get(romfile)
        if size is None:
            self.refuse(f'failed to find romfile "{romfile}"')
        romsize = self.props.get("romsize")
        if isinstance(romsize, int) and romsize != 0xFFFFFFFF:
            if size > romsize:
                self.refuse(
                    f'romfile "{romfile}" ({size} bytes) is too large for ROM size {romsize}'
                )
            bar_size = romsize
        else:
            bar_size = pow2ceil(size)
        cs.register_bar(regs.ROM_SLOT, bar_size, 0)


Builder = Callable[[BuildContext], ConfigSpace]

_BUILDERS: dict[str, Builder] = {}
# Which module registers each builder, as the catalogue snapshot recorded it: a
# start imports only the device modules it realizes.
_HOMES: dict[str, str] = {}


def builder(name: str) -> Callable[[Builder], Builder]:
    """Register the config-space builder of device type ``name``."""

    def register(fn: Builder) -> Builder:
        if name in _BUILDERS:
            raise CatalogueError(f"builder {name!r} is registered twice")
        _BUILDERS[name] = fn
        return fn

    return register


def import_all_builders() -> None:
    """Import every module of :mod:`compatlab.catalogue.devices` (each registers its builders)."""
    import pkgutil

    import compatlab.catalogue.devices as devices

    for module in pkgutil.iter_modules(devices.__path__):
        importlib.import_module(f"{devices.__name__}.{module.name}")


def remember_homes(homes: Mapping[str, str]) -> None:
    """Record the module that registers each builder, for :func:`get_builder` to import."""
    _HOMES.update(homes)


def get_builder(name: str) -> Builder:
    """The builder registered for ``name``, importing the module that registers it."""
    fn = _BUILDERS.get(name)
    if fn is None:
        home = _HOMES.get(name)
        if home is not None:
            importlib.import_module(home)
        if name not in _BUILDERS:
            import_all_builders()
        fn = _BUILDERS.get(name)
        if fn is None:
            raise CatalogueError(f"no builder is registered for {name!r}")
    return fn


def registered_builders() -> Mapping[str, Builder]:
    """Every builder, once all device modules have registered theirs."""
    import_all_builders()
    return dict(_BUILDERS)
