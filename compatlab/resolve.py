"""Resolution: which value every property of every device takes (DESIGN.md §1).

For each device of config C on version V and each property p that exists in V:

1. p set explicitly in C → that value (``config``);
2. else the hints hold p for that device → the hinted value (``hint``);
3. else the hints have the device but p did not exist in their version → p's
   historical value for that version (``history``);
4. else → p's default at V (``default``).

The machine's vCPU count, which device defaults follow (an ``auto`` queue count),
resolves by the same rules: C's ``vcpus`` if given (``config``), else the count the
hints were dumped with (``hint``), else one (``default``).

An entry applies to a device only with the device's identity (``id``, else address)
and driver: never to another device, whatever its driver. Hints for devices that
are not in C are ignored, and so is an entry whose driver differs from the
config's driver for that identity; both are reported, each with its own
:class:`IgnoredReason`. Hints
dumped by a version newer than V are refused (no downgrades). :func:`dump_hints`
goes the other way: it records what a version resolved, as that version's hints.

Addresses are assigned here too, in config order, as QEMU does with
``-nodefaults``: a device without ``addr`` takes function 0 of the first slot
from 02 whose function 0 is free.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from compatlab.catalogue import Catalogue, active_catalogue
from compatlab.catalogue.properties import Value
from compatlab.config import DEFAULT_VCPUS, FIRST_SLOT, LAST_SLOT, Config, PciAddress
from compatlab.errors import AddressError, ConfigError, HintsVersionError, PropertyParseError
from compatlab.hints.model import HintEntry, Hints
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


class IgnoredReason(StrEnum):
    """Why a hint, or part of one, was not used: what a VM manager tells apart (a
    device it removed, a device it replaced with another type, a value from an old
    version that the property can no longer hold)."""

    #: No device of the config has the entry's identity.
    NOT_IN_CONFIG = "not-in-config"
    #: The config's device with that identity has another driver.
    DRIVER_DIFFERS = "driver-differs"
    #: One hinted value does not fit the property any more; the rest of the entry
    #: was used, and the property took its history.
    VALUE_DOES_NOT_FIT = "value-does-not-fit"


@dataclass(frozen=True, slots=True)
class IgnoredHint:
    """A hint entry (or one value of it) the resolver did not use: ``kind`` says why,
    ``reason`` says it in words."""

    identity: str
    driver: str
    kind: IgnoredReason
    reason: str

    def to_json(self) -> dict[str, str]:
        return {
            "identity": self.identity,
            "driver": self.driver,
            "kind": str(self.kind),
            "reason": self.reason,
        }


#: The vCPU count of a resolution that neither the config nor hints give one.
ONE_VCPU = Resolved(DEFAULT_VCPUS, Source.DEFAULT)


@dataclass(frozen=True, slots=True)
class ResolvedConfig:
    version: Version
    devices: tuple[ResolvedDevice, ...]
    ignored_hints: tuple[IgnoredHint, ...] = ()
    hints_version: Version | None = None
    vcpus: Resolved = ONE_VCPU

    @property
    def vcpu_count(self) -> int:
        """The machine's vCPU count (``vcpus.value``, always an integer)."""
        value = self.vcpus.value
        assert isinstance(value, int)
        return value


def resolve_vcpus(config: Config, hints: Hints | None) -> Resolved:
    """The machine's vCPU count: the config's, else the hints', else one."""
    if config.vcpus is not None:
        return Resolved(config.vcpus, Source.CONFIG)
    if hints is not None:
        return Resolved(hints.vcpus, Source.HINT)
    return ONE_VCPU


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
    hints: Hints | None = None,
    defaults_at: Version | str | None = None,
    catalogue: Catalogue | None = None,
) -> ResolvedConfig:
    """Resolve ``config`` on ``version``, with compat ``hints`` if given.

    ``defaults_at`` (≤ ``version``, no hints) takes every unset property's value
    from an older version, as QEMU ``version`` does with machine type
    ``pc-i440fx-<defaults_at>``: the oracle's mapping for configs that an older
    version could not have dumped hints for.
    """
    cat = catalogue or active_catalogue()
    v = known_version(version)
    era = v if defaults_at is None else known_version(defaults_at)
    if era > v:
        raise ConfigError(f"defaults of {era} cannot be applied on older version {v}")
    if defaults_at is not None and (gone := cat.removal_of(era, v)) is not None:
        raise ConfigError(
            f"{v} has no machine type {era.machine_type}: {gone.release} deleted the machine "
            f"types older than {gone.oldest.machine_type} (QEMU refuses to start)"
        )
    if hints is not None:
        if defaults_at is not None:
            raise ConfigError("give either hints or defaults_at, not both")
        hints_version = known_version(hints.version)
        if hints_version > v:
            raise HintsVersionError(
                f"hints dumped by {hints_version} cannot be loaded on older version {v} "
                "(no downgrades)"
            )
    addresses = assign_addresses(config)
    entries = dict(hints.by_identity()) if hints is not None else {}
    ignored: list[IgnoredHint] = []
    seen_ids: set[str] = set()
    boot_indexes: set[int] = set()
    counts: dict[str, int] = {}
    devices = []
    for spec, addr in zip(config.devices, addresses, strict=True):
        cat.device(spec.driver, v)
        for family in cat.ancestry(spec.driver):
            limit = cat.types[family].max_instances
            if limit is None:
                continue
            counts[family] = counts.get(family, 0) + 1
            if counts[family] > limit:
                kind = spec.driver if family == spec.driver else f"{family} (any variant)"
                raise ConfigError(
                    f"{spec.driver}: at most {limit} {kind} per machine (QEMU refuses another one)"
                )
        if spec.id is not None:
            if spec.id in seen_ids:
                raise ConfigError(f"Duplicate device ID {spec.id!r}")
            seen_ids.add(spec.id)
        explicit = {
            name: cat.parse_value(spec.driver, name, raw, v) for name, raw in spec.properties
        }
        identity = spec.id if spec.id is not None else str(addr)
        entry = entries.pop(identity, None)
        if entry is not None and entry.driver != spec.driver:
            ignored.append(
                IgnoredHint(
                    identity,
                    entry.driver,
                    IgnoredReason.DRIVER_DIFFERS,
                    f"the config has {spec.driver} there, the hints {entry.driver}",
                )
            )
            entry = None
        if entry is not None and hints is not None:
            props = _with_hints(
                cat, spec.driver, identity, v, explicit, entry, hints.version, ignored
            )
        else:
            props = dict(_unset(cat, spec.driver, v, era))
            for name, value in explicit.items():
                props[name] = Resolved(value, Source.CONFIG)
        boot = props.get("bootindex")
        if boot is not None and isinstance(boot.value, int) and boot.value >= 0:
            # QEMU's boot order takes each index once (softmmu/bootdevice.c).
            if boot.value in boot_indexes:
                raise ConfigError(
                    f"-device {spec.driver}: The bootindex {boot.value} has already been used"
                )
            boot_indexes.add(boot.value)
        devices.append(ResolvedDevice(spec.driver, spec.id, addr, props))
    ignored.extend(
        IgnoredHint(
            e.identity,
            e.driver,
            IgnoredReason.NOT_IN_CONFIG,
            "no device with this identity in the config",
        )
        for e in entries.values()
    )
    return ResolvedConfig(
        v,
        tuple(devices),
        tuple(ignored),
        None if hints is None else hints.version,
        resolve_vcpus(config, hints),
    )


_UNSET: weakref.WeakKeyDictionary[
    Catalogue, dict[tuple[str, Version, Version], Mapping[str, Resolved]]
] = weakref.WeakKeyDictionary()


def _unset(cat: Catalogue, driver: str, version: Version, era: Version) -> Mapping[str, Resolved]:
    """Rule 4 for every property ``driver`` has in ``version``, in the catalogue's order:
    its value at ``era`` (``version`` itself, or ``defaults_at``).

    Resolved values are immutable, so one mapping per catalogue, driver and versions
    serves every resolution; a resolution copies it and sets its explicit values.
    """
    per_catalogue = _UNSET.get(cat)
    if per_catalogue is None:
        per_catalogue = _UNSET.setdefault(cat, {})
    key = (driver, version, era)
    found = per_catalogue.get(key)
    if found is None:
        values = cat.all_values_at(driver, era, as_of=version)
        source = Source.HISTORY if era != version else Source.DEFAULT
        found = {name: Resolved(values[name], source) for name in cat.properties(driver, version)}
        per_catalogue[key] = found
    return found


def _with_hints(
    cat: Catalogue,
    driver: str,
    identity: str,
    version: Version,
    explicit: dict[str, Value],
    entry: HintEntry,
    hints_version: Version,
    ignored: list[IgnoredHint],
) -> dict[str, Resolved]:
    """Rules 1–3 for a device the hints describe.

    A hinted value that the property can no longer hold (its type changed since
    the hints' version, as intel-hda's ``msi`` went from a number to on/off/auto)
    counts as a property that did not exist then: it takes its history, and the
    hint is reported.
    """
    hinted = entry.props
    history = cat.all_values_at(driver, hints_version, as_of=version)
    props: dict[str, Resolved] = {}
    for name, prop in cat.properties(driver, version).items():
        if name in explicit:
            props[name] = Resolved(explicit[name], Source.CONFIG)
            continue
        if name in hinted:
            value = hinted[name]
            try:
                props[name] = Resolved(
                    None if value is None else prop.type.parse(value), Source.HINT
                )
                continue
            except PropertyParseError as exc:
                ignored.append(
                    IgnoredHint(
                        identity,
                        driver,
                        IgnoredReason.VALUE_DOES_NOT_FIT,
                        f"{name}={value!r} from {hints_version} does not fit "
                        f"{prop.type.describe()} in {version} ({exc}); used its history",
                    )
                )
        props[name] = Resolved(history[name], Source.HISTORY)
    return props


def dump_hints(
    config: Config, version: Version | str, *, catalogue: Catalogue | None = None
) -> Hints:
    """The hints ``version`` dumps for ``config``: every device's identity, driver and
    the value of every property that exists in ``version``, as resolved there, and
    the vCPU count it resolved them with."""
    resolved = resolve(config, version, catalogue=catalogue)
    return hints_of(resolved)


def hints_of(resolved: ResolvedConfig) -> Hints:
    """Hints recording a resolution (what dumping on its version writes)."""
    return Hints(
        resolved.version,
        tuple(
            HintEntry(d.identity, d.driver, tuple((n, r.value) for n, r in d.properties.items()))
            for d in resolved.devices
        ),
        resolved.vcpu_count,
    )
