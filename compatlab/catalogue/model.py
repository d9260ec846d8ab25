"""The device catalogue: a QOM-like type hierarchy, properties and compat entries.

All version knowledge is data (``data/types/*.toml`` and ``data/compat/*.csv``),
loaded once. Compat entries follow QEMU's ``hw_compat_X_Y[]`` / ``pc_compat_X_Y[]``
arrays: an entry ``(X.Y, driver, property, value)`` applies to every version up
to and including X.Y, to ``driver`` and every subtype of it. QEMU applies the
arrays of a machine type from the newest to the oldest, so for version V the
entry from the oldest array at or above V wins, and within one array the last
entry wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from compatlab.catalogue.properties import PropertyDef, Value, abbreviate
from compatlab.errors import (
    CatalogueError,
    PropertyParseError,
    PropertyValueError,
    UnknownDeviceError,
    UnknownPropertyError,
)
from compatlab.versions import ALL_VERSIONS, Version


@dataclass(frozen=True, slots=True)
class CompatEntry:
    """One row of a compat array: up to ``version``, ``driver.prop`` defaults to ``value``."""

    version: Version
    driver: str
    prop: str
    value: str
    array: str = ""


#: A capability pointer with the status register's capability-list bit clear.
POINTER_WITHOUT_STATUS = "capability-pointer-without-status"
#: Rules of a well-formed config space (``config-space-well-formed``) that a
#: device type's data may declare QEMU's device breaks on purpose.
QUIRKS = frozenset({POINTER_WITHOUT_STATUS})


@dataclass(frozen=True, slots=True)
class DeviceType:
    """A type in the hierarchy. Concrete types have a builder; abstract ones only carry
    properties for their subtypes. ``example`` is a minimal working ``-device`` string
    (with the backends QEMU insists on); ``refuse`` lists property combinations
    (``a=x,b=y``) that the device refuses, for capture sweeps. ``max_instances``
    caps how many of the type and its subtypes together a machine may hold (QEMU
    allows one balloon, of any variant)."""

    name: str
    parent: str | None
    abstract: bool
    since: Version
    until: Version | None
    properties: Mapping[str, tuple[PropertyDef, ...]]
    builder: str | None = None
    doc: str = ""
    example: str | None = None
    refuse: tuple[str, ...] = ()
    max_instances: int | None = None
    #: Rules of a well-formed config space that QEMU's device breaks on purpose
    #: (see ``compatlab.invariants.checks``), named as the checks name them.
    quirks: tuple[str, ...] = ()

    def exists_in(self, version: Version) -> bool:
        return self.since <= version and (self.until is None or version < self.until)


def _exists(prop: PropertyDef, version: Version) -> bool:
    return prop.since <= version and (prop.until is None or version < prop.until)


def _variant_at(variants: tuple[PropertyDef, ...], version: Version) -> PropertyDef:
    """The variant of a property in ``version``; before the first one, the first one
    (its historical value is expressed in its earliest type); after the last, the last."""
    for prop in variants:
        if _exists(prop, version):
            return prop
    if version < variants[0].since:
        return variants[0]
    return variants[-1]


@dataclass(frozen=True, slots=True)
class MachineRemoval:
    """QEMU ``release`` no longer offers the machine types older than ``oldest``
    (QEMU deprecates old pc-i440fx machine types, then deletes them)."""

    release: Version
    oldest: Version
    evidence: str = ""


@dataclass(frozen=True, eq=False)
class Catalogue:
    """Device types and compat entries, with the lookups the resolver needs.

    A candidate catalogue (:mod:`compatlab.catalogue.candidate`) keeps the catalogue
    of the versions already ``released``: every lookup made with the data of a
    released version (``version``, or ``as_of`` when given) is answered by it, since
    a shipped release cannot change; only lookups with the candidate's own data see
    the candidate's types and compat entries.
    """

    types: Mapping[str, DeviceType]
    compat: tuple[CompatEntry, ...]
    versions: tuple[Version, ...] = ALL_VERSIONS
    released: Catalogue | None = None
    #: Machine-type deletions, ascending: from ``release`` on, the oldest
    #: pc-i440fx machine type QEMU offers is ``oldest`` (``data/machines.toml``).
    removals: tuple[MachineRemoval, ...] = ()
    _cache: dict[tuple[str, Version], Mapping[str, PropertyDef]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _values_cache: dict[tuple[str, Version, Version], Mapping[str, Value | None]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for t in self.types.values():
            if t.parent is not None and t.parent not in self.types:
                raise CatalogueError(f"type {t.name!r} has unknown parent {t.parent!r}")
        for entry in self.compat:
            if entry.driver not in self.types:
                raise CatalogueError(
                    f"compat entry {entry.array or entry.version}: "
                    f"driver {entry.driver!r} does not exist"
                )
            if not any(entry.prop in self._all_props(t) for t in self.subtypes(entry.driver)):
                raise CatalogueError(
                    f"compat entry {entry.array or entry.version}: "
                    f"{entry.driver!r} and its subtypes have no property {entry.prop!r}"
                )

    # -- hierarchy ----------------------------------------------------------

    def ancestry(self, name: str) -> tuple[str, ...]:
        """``name`` and its ancestors, most derived first."""
        chain: list[str] = []
        current: str | None = name
        while current is not None:
            if current in chain:
                raise CatalogueError(f"type hierarchy loops at {current!r}")
            chain.append(current)
            current = self.types[current].parent
        return tuple(chain)

    def is_a(self, name: str, ancestor: str) -> bool:
        return ancestor in self.ancestry(name)

    def subtypes(self, name: str) -> tuple[str, ...]:
        return tuple(t for t in self.types if self.is_a(t, name))

    @cached_property
    def concrete(self) -> tuple[str, ...]:
        return tuple(sorted(n for n, t in self.types.items() if not t.abstract))

    def _era(self, version: Version) -> Catalogue | None:
        """The released catalogue that answers for ``version``, if it is not ours."""
        released = self.released
        if released is not None and version <= released.versions[-1]:
            return released
        return None

    def devices(self, version: Version) -> tuple[str, ...]:
        """Concrete device types that exist in ``version``."""
        if (era := self._era(version)) is not None:
            return era.devices(version)
        return tuple(n for n in self.concrete if self.types[n].exists_in(version))

    # -- machine types --------------------------------------------------------

    def oldest_machine(self, release: Version) -> Version:
        """The oldest pc-i440fx machine type ``release`` offers."""
        oldest = self.versions[0]
        for removal in self.removals:
            if removal.release <= release:
                oldest = max(oldest, removal.oldest)
        return oldest

    def machine_types(self, release: Version) -> tuple[Version, ...]:
        """The versions whose pc-i440fx machine type ``release`` offers, oldest first."""
        oldest = self.oldest_machine(release)
        return tuple(v for v in self.versions if oldest <= v <= release)

    def removal_of(self, machine: Version, release: Version) -> MachineRemoval | None:
        """The deletion that took ``machine``'s machine type away by ``release``, if any."""
        return next((r for r in self.removals if r.release <= release and machine < r.oldest), None)

    # -- lookups ------------------------------------------------------------

    def device(self, driver: str, version: Version) -> DeviceType:
        if (era := self._era(version)) is not None and driver in era.types:
            return era.device(driver, version)
        t = self.types.get(driver)
        if t is None or t.abstract:
            raise UnknownDeviceError(driver, self.concrete)
        if not t.exists_in(version):
            span = f"from {t.since}" + (f" until before {t.until}" if t.until else "")
            raise UnknownDeviceError(driver, detail=f" in version {version} (it exists {span})")
        return t

    def _all_props(self, name: str) -> dict[str, tuple[PropertyDef, ...]]:
        props: dict[str, tuple[PropertyDef, ...]] = {}
        for ancestor in reversed(self.ancestry(name)):
            props.update(self.types[ancestor].properties)
        return props

    def properties(self, driver: str, version: Version) -> Mapping[str, PropertyDef]:
        """Every property ``driver`` has in ``version``, inherited ones included."""
        if (era := self._era(version)) is not None and driver in era.types:
            return era.properties(driver, version)
        key = (driver, version)
        cached = self._cache.get(key)
        if cached is None:
            cached = {
                name: p
                for name, variants in self._all_props(driver).items()
                for p in variants
                if _exists(p, version) and not p.internal
            }
            self._cache[key] = cached
        return cached

    def property(self, driver: str, name: str, version: Version) -> PropertyDef:
        props = self.properties(driver, version)
        if name in props:
            return props[name]
        variants = self._all_props(driver).get(name)
        if variants is not None:
            span = " and ".join(
                f"from {p.since}" + (f" until before {p.until}" if p.until else "")
                for p in variants
            )
            raise UnknownPropertyError(
                driver, name, detail=f" in version {version} (it exists {span})"
            )
        raise UnknownPropertyError(driver, name, props)

    def parse_value(self, driver: str, name: str, raw: Value, version: Version) -> Value:
        prop = self.property(driver, name, version)
        if prop.readonly:
            raise PropertyValueError(
                driver, name, abbreviate(str(raw)), f"Property '{driver}.{name}' is not writable"
            )
        try:
            return prop.type.parse(raw)
        except PropertyParseError as exc:
            raise PropertyValueError(driver, name, abbreviate(str(raw)), str(exc)) from None

    def default(
        self, driver: str, name: str, version: Version, *, as_of: Version | None = None
    ) -> Value | None:
        """The value ``driver.name`` takes at ``version`` when nothing sets it.

        This is also the property's historical value for ``version`` when the
        property did not exist yet: compat entries describe both. ``as_of`` names
        the version whose definition of the property is meant (default:
        ``version``'s own): QEMU ``as_of`` with machine type ``version`` parses the
        compat entries with its own property types and falls back to its own
        default.
        """
        if (era := self._era(as_of or version)) is not None and driver in era.types:
            return era.default(driver, name, version, as_of=as_of)
        prop = _variant_at(self._all_props(driver)[name], as_of or version)
        if prop.internal:
            return prop.default
        chosen: CompatEntry | None = None
        ancestry = self.ancestry(driver)
        for entry in self.compat:
            if entry.prop != name or entry.driver not in ancestry or entry.version < version:
                continue
            if chosen is None or entry.version <= chosen.version:
                chosen = entry
        if chosen is None:
            return prop.default
        try:
            return prop.type.parse(chosen.value)
        except PropertyParseError as exc:
            raise CatalogueError(
                f"compat entry {chosen.version} {chosen.driver}.{name}={chosen.value!r}: {exc}"
            ) from None

    def all_values_at(
        self, driver: str, version: Version, *, as_of: Version | None = None
    ) -> Mapping[str, Value | None]:
        """Every property ``driver`` has in any version, at its value for ``version``
        (in the property definitions of ``as_of``, see :meth:`default`).

        Builders see these values under the resolved ones, so a property that did
        not exist yet still takes its historical value (the behaviour of its time).
        """
        if (era := self._era(as_of or version)) is not None and driver in era.types:
            return era.all_values_at(driver, version, as_of=as_of)
        key = (driver, version, as_of or version)
        cached = self._values_cache.get(key)
        if cached is None:
            cached = {
                name: self.default(driver, name, version, as_of=as_of)
                for name in self._all_props(driver)
            }
            self._values_cache[key] = cached
        return cached

    def compat_entries_for(self, driver: str) -> Iterable[CompatEntry]:
        ancestry = self.ancestry(driver)
        return (e for e in self.compat if e.driver in ancestry)
