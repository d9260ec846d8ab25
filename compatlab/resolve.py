"""Resolution: which value every property of every device takes (DESIGN.md §1).

For each device of config C on version V and each property p that exists in V:

1. p set explicitly in C → that value (``config``);
2. else the hints hold p for that device → the hinted value (``hint``);
3. else the hints have the device but p did not exist in their version → p's
   historical value for that version (``history``);
4. else → p's default at V (``default``).

Addresses are assigned here too, in config order, as QEMU does with
``-nodefaults``: a device without ``addr`` takes function 0 of the first slot
from 02 whose function 0 is free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from compatlab.catalogue import Catalogue, builtin_catalogue
from compatlab.catalogue.properties import Value
from compatlab.config import FIRST_SLOT, LAST_SLOT, Config, PciAddress
from compatlab.errors import AddressError, ConfigError
from compatlab.versions import Version, known_version


class Source(StrEnum):
    CONFIG = "config"
    HINT = "hint"
    HISTORY = "history"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Resolved:
    value: Value | None
    source: Source


@dataclass(frozen=True, slots=True)
class ResolvedDevice:
    """A device with an address and a value, and its origin, for every property."""

    driver: str
    id: str | None
    addr: PciAddress
    properties: Mapping[str, Resolved]

    @property
    def identity(self) -> str:
        """What hints are matched on: the ``id``, else the address."""
        return self.id if self.id is not None else str(self.addr)

    def values(self) -> dict[str, Value | None]:
        return {name: r.value for name, r in self.properties.items()}


@dataclass(frozen=True, slots=True)
class ResolvedConfig:
    version: Version
    devices: tuple[ResolvedDevice, ...]


def assign_addresses(config: Config) -> list[PciAddress]:
    """Addresses for every device in config order, or the error QEMU would give."""
    taken: dict[PciAddress, str] = {}
    out: list[PciAddress] = []
    for spec in config.devices:
        addr = spec.addr
        if addr is None:
            for slot in range(FIRST_SLOT, LAST_SLOT + 1):
                if PciAddress(slot, 0) not in taken:
                    addr = PciAddress(slot, 0)
                    break
            else:
                raise AddressError(f"no free PCI slot left for {spec.driver}")
        if addr in taken:
            raise AddressError(
                f"PCI: slot {addr.slot:#04x} function {addr.function} not available "
                f"for {spec.driver}, in use by {taken[addr]}"
            )
        taken[addr] = spec.driver
        out.append(addr)
    return out


def resolve(
    config: Config,
    version: Version | str,
    *,
    defaults_at: Version | str | None = None,
    catalogue: Catalogue | None = None,
) -> ResolvedConfig:
    """Resolve ``config`` on ``version`` without hints.

    ``defaults_at`` (≤ ``version``) takes unset properties' values from an older
    version, as QEMU ``version`` does with machine type ``pc-i440fx-<defaults_at>``.
    """
    cat = catalogue or builtin_catalogue()
    v = known_version(version)
    era = v if defaults_at is None else known_version(defaults_at)
    if era > v:
        raise ConfigError(f"defaults of {era} cannot be applied on older version {v}")
    addresses = assign_addresses(config)
    seen_ids: set[str] = set()
    counts: dict[str, int] = {}
    devices = []
    for spec, addr in zip(config.devices, addresses, strict=True):
        dtype = cat.device(spec.driver, v)
        counts[spec.driver] = counts.get(spec.driver, 0) + 1
        if dtype.max_instances is not None and counts[spec.driver] > dtype.max_instances:
            raise ConfigError(
                f"{spec.driver}: at most {dtype.max_instances} per machine "
                f"(QEMU refuses another one)"
            )
        if spec.id is not None:
            if spec.id in seen_ids:
                raise ConfigError(f"Duplicate device ID {spec.id!r}")
            seen_ids.add(spec.id)
        explicit = {
            name: cat.parse_value(spec.driver, name, raw, v) for name, raw in spec.properties
        }
        unset_values = cat.all_values_at(spec.driver, era)
        unset_source = Source.HISTORY if era != v else Source.DEFAULT
        props: dict[str, Resolved] = {}
        for name in cat.properties(spec.driver, v):
            if name in explicit:
                props[name] = Resolved(explicit[name], Source.CONFIG)
            else:
                props[name] = Resolved(unset_values[name], unset_source)
        devices.append(ResolvedDevice(spec.driver, spec.id, addr, props))
    return ResolvedConfig(v, tuple(devices))
