"""Realization: resolved devices become guest-visible config space and masks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from compatlab.catalogue import Catalogue, active_catalogue
from compatlab.catalogue.builders import BuildContext, get_builder
from compatlab.catalogue.loader import builtin_roms
from compatlab.config import DEFAULT_VCPUS, Config
from compatlab.errors import AddressError, DeviceRealizeError
from compatlab.hints.model import Hints
from compatlab.pci.config_space import ConfigSpace
from compatlab.resolve import (
    ONE_VCPU,
    IgnoredHint,
    Resolved,
    ResolvedConfig,
    ResolvedDevice,
    resolve,
)
from compatlab.versions import Version


@dataclass(frozen=True, slots=True)
class RealizedDevice:
    device: ResolvedDevice
    space: ConfigSpace


@dataclass(frozen=True, slots=True)
class Realized:
    version: Version
    devices: tuple[RealizedDevice, ...]
    ignored_hints: tuple[IgnoredHint, ...] = ()
    #: The machine's vCPU count and where it came from (see :func:`resolve`).
    vcpus: Resolved = ONE_VCPU


@cache
def _roms() -> Mapping[str, int]:
    return builtin_roms()


def check_functions(resolved: ResolvedConfig) -> None:
    """QEMU's pci_init_multifunction rules, applied in config order.

    A device in function > 0 needs function 0 of its slot, if present, to be
    multifunction; a single-function device in function 0 forbids other functions.
    """
    placed: dict[tuple[int, int], ResolvedDevice] = {}
    for dev in resolved.devices:
        slot, fn = dev.addr.slot, dev.addr.function
        multifunction = bool(dev.properties["multifunction"].value)
        if fn:
            f0 = placed.get((slot, 0))
            if f0 is not None and not f0.properties["multifunction"].value:
                raise AddressError(
                    f"PCI: single function device can't be populated in function {slot:x}.{fn:x}"
                )
        elif not multifunction:
            for other in range(1, 8):
                if (slot, other) in placed:
                    raise AddressError(
                        f"PCI: {slot:x}.0 indicates single function, "
                        f"but {slot:x}.{other:x} is already populated."
                    )
        placed[(slot, fn)] = dev


def check_fw_cfg_roms(resolved: ResolvedConfig) -> None:
    """Option ROMs loaded through fw_cfg (``rombar=0``) need distinct file names.

    QEMU's pci_add_option_rom adds them as ``genroms/<romfile>``; a second device
    with the same ROM is refused ("duplicate fw_cfg file name"). A ROM file the
    emulator does not ship is never added (rom_add_file warns and goes on), so two
    devices naming the same missing file both start (QEMU 5.2, 7.2 and 10.0 alike).
    """
    loaded: set[str] = set()
    roms = _roms()
    for dev in resolved.devices:
        romfile = dev.properties["romfile"].value
        if not romfile or dev.properties["rombar"].value != 0 or romfile not in roms:
            continue
        name = f"genroms/{romfile}"
        if name in loaded:
            raise DeviceRealizeError(dev.driver, dev.id, f"duplicate fw_cfg file name: {name}")
        loaded.add(name)


def builder_values(
    dev: ResolvedDevice, version: Version, catalogue: Catalogue | None = None
) -> dict[str, Any]:
    """Every value the device's builder sees on ``version``: its resolved properties,
    and those that do not exist in ``version`` at their historical value there, so
    that builders need no version checks."""
    cat = catalogue or active_catalogue()
    return {**cat.all_values_at(dev.driver, version), **dev.values()}


def build_device(
    dev: ResolvedDevice,
    values: Mapping[str, Any],
    catalogue: Catalogue | None = None,
    vcpus: int = DEFAULT_VCPUS,
) -> ConfigSpace:
    """Build one device's config space from the values its builder sees, on a
    machine with ``vcpus`` CPUs."""
    cat = catalogue or active_catalogue()
    ctx = BuildContext(
        driver=dev.driver,
        device_id=dev.id,
        props=dict(values),
        slot=dev.addr.slot,
        function=dev.addr.function,
        roms=_roms(),
        vcpus=vcpus,
    )
    return get_builder(cat.types[dev.driver].builder or dev.driver)(ctx)


def realize_device(
    dev: ResolvedDevice,
    version: Version,
    catalogue: Catalogue | None = None,
    vcpus: int = DEFAULT_VCPUS,
) -> ConfigSpace:
    """Build one device's config space from its resolved properties on ``version``,
    on a machine with ``vcpus`` CPUs."""
    return build_device(dev, builder_values(dev, version, catalogue), catalogue, vcpus)


def realize_resolved(resolved: ResolvedConfig, catalogue: Catalogue | None = None) -> Realized:
    check_functions(resolved)
    check_fw_cfg_roms(resolved)
    return Realized(
        resolved.version,
        tuple(
            RealizedDevice(d, realize_device(d, resolved.version, catalogue, resolved.vcpu_count))
            for d in resolved.devices
        ),
        resolved.ignored_hints,
        resolved.vcpus,
    )


def realize(
    config: Config,
    version: Version | str,
    *,
    hints: Hints | None = None,
    defaults_at: Version | str | None = None,
    catalogue: Catalogue | None = None,
) -> Realized:
    """Resolve and realize ``config`` on ``version`` (see :func:`resolve`)."""
    return realize_resolved(
        resolve(config, version, hints=hints, defaults_at=defaults_at, catalogue=catalogue),
        catalogue,
    )
