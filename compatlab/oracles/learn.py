"""The catalogue against a binary's own introspection, and a release learned from it.

QEMU's introspection (:mod:`compatlab.oracles.introspect`) is ground truth for
what a device type's properties are, their defaults, and what every machine type's
compat properties make of them. Three uses:

- :func:`property_disagreements`: the property set and defaults of every catalogue
  device type of version V against ``device-list-properties`` on V's binary;
- :func:`compat_disagreements`: for every machine type M of that binary, every
  property's value on M (``Catalogue.default(driver, prop, M, as_of=V)``) against
  QEMU's compat properties of ``pc-i440fx-M`` applied along the QOM ancestry (and
  the virtio backend's) onto the binary's defaults;
- :func:`learn`: what a binary's release changed against the catalogue as it
  stood at the newest version it knows before the release, as a candidate file
  (docs/candidate-format.md).

What QEMU has and the catalogue does not model on purpose is data, reviewed:
``catalogue/data/unmodelled.toml``, by the QEMU type that declares it (reaching
its subtypes, and a backend's properties on its proxy), each with its reason.
Nothing else is left out of a comparison.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from compatlab.catalogue.candidate import Candidate
from compatlab.catalogue.loader import data_path
from compatlab.catalogue.model import Catalogue
from compatlab.catalogue.properties import PropertyDef, Value
from compatlab.errors import CandidateError, CatalogueError, PropertyParseError
from compatlab.oracles.introspect import CompatProp, Introspection, Raw, machine_values
from compatlab.versions import Version


@dataclass(frozen=True, slots=True)
class Disagreement:
    """One thing the catalogue says that the binary's introspection does not.

    ``kind``: ``missing-type`` (the binary has no such type), ``not-in-qemu`` (a
    catalogue property the binary lacks), ``not-modelled`` (a binary's property
    the catalogue neither has nor lists as unmodelled), ``default`` (the binary's
    default differs) or ``value`` (the value on machine type ``machine`` differs).
    """

    release: str
    kind: str
    driver: str
    prop: str = ""
    machine: str = ""
    catalogue: Value | None = None
    qemu: Raw | None = None

    def __str__(self) -> str:
        where = f"{self.driver}.{self.prop}" if self.prop else self.driver
        on = f" on {self.machine}" if self.machine else ""
        if self.kind in ("default", "value"):
            return (
                f"QEMU {self.release}: {where}{on}: catalogue {self.catalogue!r}, "
                f"QEMU {self.qemu!r}"
            )
        return f"QEMU {self.release}: {where}: {self.kind}"


# -- what is not modelled -------------------------------------------------------------------


#: The sections of ``data/unmodelled.toml`` (see its header).
SECTIONS = ("properties", "defaults", "hidden")


@cache
def _table() -> tuple[dict[str, dict[str, dict[str, str]]], dict[str, dict[str, Raw]]]:
    with (data_path() / "unmodelled.toml").open("rb") as fh:
        data = tomllib.load(fh)
    why: dict[str, dict[str, dict[str, str]]] = {s: {} for s in SECTIONS}
    effective: dict[str, dict[str, Raw]] = {}
    for section, types in data.items():
        if section not in SECTIONS or not isinstance(types, dict):
            raise CatalogueError(f"unmodelled.toml: unknown section [{section}]")
        for type_name, props in types.items():
            where = f"unmodelled.toml: [{section}.{type_name}]"
            if not isinstance(props, dict):
                raise CatalogueError(f"{where} must map properties to reasons")
            for prop, entry in props.items():
                if section == "defaults" and isinstance(entry, dict):
                    if set(entry) - {"why", "default"} or not isinstance(entry.get("why"), str):
                        raise CatalogueError(f"{where}.{prop} must hold why and a default")
                    if "default" in entry:
                        effective.setdefault(type_name, {})[prop] = entry["default"]
                    entry = entry["why"]
                if not isinstance(entry, str):
                    raise CatalogueError(f"{where}.{prop} must say why")
                why[section].setdefault(type_name, {})[prop] = entry
    return why, effective


def unmodelled() -> Mapping[str, Mapping[str, Mapping[str, str]]]:
    """Section → QEMU type → property → why (``data/unmodelled.toml``)."""
    return _table()[0]


def effective_defaults(intro: Introspection, driver: str) -> dict[str, Raw]:
    """The defaults a device of type ``driver`` really gets where introspection reports
    another (``[defaults]`` entries that give one)."""
    found: dict[str, Raw] = {}
    backend = intro.backend(driver)
    chains = (intro.ancestry(driver) or (driver,), intro.ancestry(backend) if backend else ())
    for chain in chains:
        for name in chain:
            for prop, value in _table()[1].get(name, {}).items():
                found.setdefault(prop, value)
    return found


def blind_defaults(intro: Introspection, driver: str) -> set[str]:
    """Properties of ``driver`` whose default introspection cannot tell (listed under
    ``[defaults]`` without the value a device really gets)."""
    return set(unmodelled_of(intro, driver, "defaults")) - set(effective_defaults(intro, driver))


def unmodelled_of(intro: Introspection, driver: str, section: str = "properties") -> dict[str, str]:
    """The properties of QEMU type ``driver`` (its ancestors', its backend's) listed in
    ``section`` of ``data/unmodelled.toml``, with why."""
    found: dict[str, str] = {}
    backend = intro.backend(driver)
    chains = (intro.ancestry(driver) or (driver,), intro.ancestry(backend) if backend else ())
    table = unmodelled()[section]
    for chain in chains:
        for name in chain:
            for prop, why in table.get(name, {}).items():
                found.setdefault(prop, why)
    return found


def modelled_props(intro: Introspection, driver: str) -> dict[str, Any]:
    """The binary's properties of ``driver`` that the catalogue should have."""
    skip = unmodelled_of(intro, driver)
    return {n: p for n, p in intro.props(driver).items() if n not in skip}


def modelled_values(intro: Introspection, driver: str, machine: str | None) -> dict[str, Raw]:
    """:func:`machine_values` of the properties whose values the catalogue should have,
    on the defaults a device really gets."""
    skip = {*unmodelled_of(intro, driver), *blind_defaults(intro, driver)}
    values = machine_values(intro, driver, machine, effective_defaults(intro, driver))
    return {n: v for n, v in values.items() if n not in skip}


def parse_raw(prop: PropertyDef, raw: Raw | None) -> Value | None:
    """A value QEMU reports, in the catalogue's canonical form (as given if it does
    not parse: it then differs from anything the catalogue holds)."""
    if raw is None:
        return None
    try:
        return prop.type.parse(raw)
    except PropertyParseError:
        return raw


# -- the comparisons ------------------------------------------------------------------------


def property_disagreements(
    catalogue: Catalogue, intro: Introspection, version: Version
) -> list[Disagreement]:
    """Property sets and defaults of every device type of ``version`` against the binary."""
    out: list[Disagreement] = []
    release = intro.release
    for driver in catalogue.devices(version):
        if not intro.has(driver):
            out.append(Disagreement(release, "missing-type", driver))
            continue
        qemu = modelled_props(intro, driver)
        ours = catalogue.properties(driver, version)
        for name in sorted(set(qemu) - set(ours)):
            out.append(Disagreement(release, "not-modelled", driver, name))
        hidden = unmodelled_of(intro, driver, "hidden")
        for name in sorted(set(ours) - set(qemu) - set(hidden)):
            out.append(Disagreement(release, "not-in-qemu", driver, name))
        values = modelled_values(intro, driver, None)
        for name in sorted(set(ours) & set(values)):
            want = parse_raw(ours[name], values[name])
            have = catalogue.default(driver, name, version)
            if have != want:
                out.append(Disagreement(release, "default", driver, name, "", have, want))
    return out


def compat_disagreements(
    catalogue: Catalogue,
    intro: Introspection,
    version: Version,
    machines: Sequence[Version] | None = None,
) -> list[Disagreement]:
    """Every property's value on every i440fx machine type the binary reports compat
    properties for (and the catalogue knows), against QEMU's."""
    out: list[Disagreement] = []
    release = intro.release
    for machine in machines if machines is not None else machine_versions(intro):
        if machine not in catalogue.versions or machine > version:
            continue
        name = machine.machine_type
        if intro.machines.get(name) is None:
            continue
        for driver in catalogue.devices(version):
            if not intro.has(driver):
                continue
            qemu = modelled_values(intro, driver, name)
            ours = catalogue.properties(driver, version)
            for prop in sorted(set(ours) & set(qemu)):
                want = parse_raw(ours[prop], qemu[prop])
                have = catalogue.default(driver, prop, machine, as_of=version)
                if have != want:
                    out.append(Disagreement(release, "value", driver, prop, name, have, want))
    return out


def machine_versions(intro: Introspection) -> tuple[Version, ...]:
    """The versions of the binary's i440fx machine types."""
    found = []
    for name in intro.machine_names("pc-i440fx-"):
        try:
            found.append(Version.parse(name.removeprefix("pc-i440fx-")))
        except Exception:  # an alias such as pc-i440fx-x.y-something
            continue
    return tuple(sorted(set(found)))


def summarise(found: Iterable[Disagreement]) -> str:
    return "\n".join(str(d) for d in found)


# -- learning a release ---------------------------------------------------------------------

# QAPI type names device-list-properties reports, as the catalogue's kinds.
_KINDS = {
    "bool": "bool",
    "OnOffAuto": "onoffauto",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
    "size": "size",
    "str": "string",
    "string": "string",
    # pci-device's busnr (QEMU 10.0): a bus number with a getter of its own.
    "busnr": "uint8",
}
# Kinds whose spelling in QEMU's introspection says nothing more (a MAC address and a
# backend id are "str"; an enum reports its QAPI enum's name).
_LOOSE = frozenset({"string", "macaddr", "link", "enum"})


def qemu_kind(qapi_type: str) -> str:
    """The catalogue kind of a property QEMU reports as ``qapi_type``."""
    if qapi_type.startswith("link<"):
        return "link"
    return _KINDS.get(qapi_type, "string")


def _retyped(prop: PropertyDef, qapi_type: str) -> bool:
    """Whether QEMU's type is a different kind than the catalogue's (only kinds that
    introspection tells apart count)."""
    ours, theirs = prop.type.kind, qemu_kind(qapi_type)
    if ours in _LOOSE or theirs in _LOOSE:
        return False
    return ours != theirs


def learn(catalogue: Catalogue, intro: Introspection, version: Version) -> Candidate:
    """What release ``version`` (the binary ``intro`` describes) changed against
    ``catalogue`` as of the newest version it knows before ``version``, as a
    candidate: removed device types, properties and machine types (the oldest i440fx
    machine type it keeps, when it dropped older ones), new properties with their
    defaults, changed defaults and types, new device types that have a builder, and
    the compat entries the binary's machine types carry that the catalogue lacks."""
    from compatlab.catalogue.builders import registered_builders
    from compatlab.catalogue.candidate import as_of

    older = [v for v in catalogue.versions if v < version]
    if not older:
        raise CandidateError(f"the catalogue knows no version before {version}")
    base_version = older[-1]
    base = as_of(catalogue, base_version)
    devices = [d for d in base.devices(base_version)]
    present = [d for d in devices if intro.has(d)]
    types: dict[str, dict[str, Any]] = {}

    def spec(name: str) -> dict[str, Any]:
        return types.setdefault(name, {})

    def prop_spec(name: str, prop: str) -> dict[str, Any]:
        props: dict[str, dict[str, Any]] = spec(name).setdefault("properties", {})
        return props.setdefault(prop, {})

    for driver in devices:
        if driver not in present:
            spec(driver)["until"] = str(version)

    # Per property change, the concrete types it applies to; then declared on the
    # highest catalogue type all of whose present concrete subtypes share it.
    changes: dict[tuple[str, str, Any], set[str]] = {}
    for driver in present:
        qemu = modelled_props(intro, driver)
        hidden = unmodelled_of(intro, driver, "hidden")
        odd_defaults = blind_defaults(intro, driver)
        defaults = modelled_values(intro, driver, None)
        ours = base.properties(driver, base_version)
        for name in sorted(set(qemu) - set(ours)):
            reported = qemu[name]
            kind = qemu_kind(reported.type)
            new: dict[str, Any] = {"type": kind}
            if name in defaults:
                new["default"] = _toml_value(kind, defaults[name])
            changes.setdefault(("new", name, _frozen(new)), set()).add(driver)
        for name in sorted(set(ours) - set(qemu) - set(hidden)):
            changes.setdefault(("until", name, str(version)), set()).add(driver)
        for name in sorted(set(ours) & set(qemu)):
            reported = qemu[name]
            if _retyped(ours[name], reported.type):
                kind = qemu_kind(reported.type)
                retype: dict[str, Any] = {"type": kind}
                if reported.has_default and reported.default is not None:
                    retype["default"] = _toml_value(kind, reported.default)
                changes.setdefault(("retype", name, _frozen(retype)), set()).add(driver)
                continue
            if name not in defaults or name in odd_defaults:
                continue
            want = parse_raw(ours[name], defaults[name])
            if want != base.default(driver, name, base_version):
                changes.setdefault(("default", name, want), set()).add(driver)

    for (what, name, value), drivers in changes.items():
        for owner in _owners(base, drivers, present):
            entry = prop_spec(owner, name)
            if what == "until":
                entry["until"] = value
            elif what == "default":
                entry["default"] = value
            else:
                entry.update(dict(value))

    # New device types: only those a builder can realize (builders are code).
    builders = registered_builders()
    for name, t in intro.types.items():
        if t.abstract or name in base.types or name not in builders:
            continue
        parent = next((a for a in intro.ancestry(name)[1:] if a in base.types), None)
        if parent is None:
            continue
        inherited = set(base._all_props(parent))
        own: dict[str, Any] = {}
        for pname, reported in modelled_props(intro, name).items():
            if pname in inherited:
                continue
            kind = qemu_kind(reported.type)
            own[pname] = {"type": kind}
            if reported.has_default and reported.default is not None:
                own[pname]["default"] = _toml_value(kind, reported.default)
        types[name] = {"parent": parent, "builder": name, "properties": own}

    compat = _learned_compat(base, intro, present, types, base_version, version)
    machines = machine_versions(intro)
    # A deletion only when the binary keeps fewer machine types than the base's
    # newest release did (older ones were deleted before it).
    floor = base.oldest_machine(base.versions[-1])
    oldest = machines[0] if machines and machines[0] > floor else None
    return Candidate(
        version=version,
        base=base_version,
        doc=f"QEMU {intro.release} as its binary ({intro.path}) describes itself",
        types=types,
        compat=tuple(compat),
        source=f"<learned from QEMU {intro.release}>",
        oldest_machine=oldest,
    )


def _frozen(spec: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(spec.items()))


def _toml_value(kind: str, raw: Raw) -> Value:
    """A reported default as a candidate file holds it (the catalogue's canonical value)."""
    from compatlab.catalogue.properties import PropType

    try:
        return PropType(kind).parse(raw)
    except PropertyParseError:
        return str(raw)


def _owners(base: Catalogue, drivers: set[str], present: Sequence[str]) -> list[str]:
    """The highest catalogue types all of whose present concrete subtypes are in
    ``drivers``, covering ``drivers``."""
    alive = set(present)
    owners: set[str] = set()
    for driver in drivers:
        owner = driver
        while True:
            parent = base.types[owner].parent
            if parent is None:
                break
            below = {d for d in base.subtypes(parent) if d in alive}
            if not below <= drivers:
                break
            owner = parent
        owners.add(owner)
    return sorted(owners)


def _filed(intro: Introspection) -> dict[Version, list[CompatProp]]:
    """Per i440fx machine type of the binary, the compat properties filed for it: what
    its list holds beyond the list of the next newer machine type (QEMU builds a
    machine type's list as the next one's followed by its own arrays)."""
    versions = machine_versions(intro)
    filed: dict[Version, list[CompatProp]] = {}
    for older, newer in itertools.pairwise(versions):
        mine = list(intro.machines.get(older.machine_type) or ())
        theirs = list(intro.machines.get(newer.machine_type) or ())
        # What the older machine type has beyond the newer one's (as a multiset: an
        # entry may be filed twice, as QEMU's arrays sometimes do).
        rest = list(theirs)
        own = []
        for entry in mine:
            if entry in rest:
                rest.remove(entry)
            else:
                own.append(entry)
        filed[older] = own
    return filed


def _learned_compat(
    base: Catalogue,
    intro: Introspection,
    present: Sequence[str],
    types: Mapping[str, Any],
    base_version: Version,
    version: Version,
) -> list[dict[str, str]]:
    """The binary's compat entries for catalogue types, in the catalogue's names, that
    the base lacks: every entry filed for the base's version or later, and entries
    of older arrays the base does not have."""
    if not intro.compat_props:
        return []
    known = {
        (e.version, e.driver, e.prop, e.value.lower())
        for e in base.compat
        if e.version < base_version
    }
    concrete = [*present, *(n for n, t in types.items() if "parent" in t)]
    rows: list[dict[str, str]] = []
    for machine, entries in sorted(_filed(intro).items()):
        if machine >= version:
            continue
        for entry in entries:
            driver = _catalogue_driver(base, intro, concrete, types, entry.driver)
            if driver is None:
                continue
            reached = [d for d in concrete if driver in _chain(base, types, d)]
            if not any(entry.prop in modelled_props(intro, d) for d in reached):
                continue
            if (machine, driver, entry.prop, entry.value.lower()) in known:
                continue
            rows.append(
                {
                    "machine_version": str(machine),
                    "driver": driver,
                    "property": entry.prop,
                    "value": entry.value,
                }
            )
    return rows


def _parent_of(base: Catalogue, types: Mapping[str, Any], name: str) -> str | None:
    if name in base.types:
        return base.types[name].parent
    parent = types.get(name, {}).get("parent")
    return str(parent) if parent is not None else None


def _catalogue_driver(
    base: Catalogue,
    intro: Introspection,
    concrete: Sequence[str],
    types: Mapping[str, Any],
    qom_type: str,
) -> str | None:
    """The catalogue type a compat entry for QEMU type ``qom_type`` names: the same
    type, or, for a virtio backend type, the lowest catalogue type above every proxy
    whose backend is one (the catalogue keeps backend properties on the proxies)."""
    if qom_type in base.types or (qom_type in types and "parent" in types[qom_type]):
        return qom_type
    proxies = [d for d in concrete if (b := intro.backend(d)) and intro.is_a(b, qom_type)]
    if not proxies:
        return None
    chains = [_chain(base, types, d) for d in proxies]
    common = [t for t in chains[0] if all(t in c for c in chains[1:])]
    return common[0] if common else None


def _chain(base: Catalogue, types: Mapping[str, Any], name: str) -> list[str]:
    out: list[str] = []
    current: str | None = name
    while current is not None and current not in out:
        out.append(current)
        current = _parent_of(base, types, current)
    return out


def candidate_toml(candidate: Candidate) -> str:
    """A candidate as the text of a candidate file (docs/candidate-format.md); read back
    by :func:`compatlab.catalogue.candidate.candidate_from_text`."""
    lines = [f"version = {_toml(str(candidate.version))}"]
    if candidate.base is not None:
        lines.append(f"base = {_toml(str(candidate.base))}")
    if candidate.doc:
        lines.append(f"doc = {_toml(candidate.doc)}")
    if candidate.oldest_machine is not None:
        lines.append(f"oldest_machine = {_toml(str(candidate.oldest_machine))}")
    for name in sorted(candidate.types):
        spec = candidate.types[name]
        scalars = {k: v for k, v in spec.items() if k != "properties"}
        if scalars or not spec.get("properties"):
            lines += ["", f"[types.{_key(name)}]"]
            lines += [f"{_key(k)} = {_toml(v)}" for k, v in sorted(scalars.items())]
        for pname, pspec in sorted(dict(spec.get("properties", {})).items()):
            lines += ["", f"[types.{_key(name)}.properties.{_key(pname)}]"]
            lines += [f"{_key(k)} = {_toml(v)}" for k, v in sorted(pspec.items())]
    for row in candidate.compat:
        lines += ["", "[[compat]]"]
        lines += [f"{_key(k)} = {_toml(v)}" for k, v in row.items()]
    return "\n".join(lines) + "\n"


def _key(name: str) -> str:
    import re

    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml(name)


def _toml(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)
