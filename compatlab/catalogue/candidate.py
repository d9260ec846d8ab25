"""Candidate emulator releases as data, and the catalogue as it stood at a version.

A *candidate* describes release N the way the built-in tables describe released
ones (docs/candidate-format.md): new properties, changed defaults, removed or
retyped properties, new device types, and the compat entries N adds for older
machine types. :func:`apply_candidate` puts it on top of a *base*: the built-in
catalogue :func:`as_of` a version B < N (by default the newest), which is the
catalogue exactly as it stood when B was the newest release.

The result keeps the base as its ``released`` part: released versions keep their
behaviour whatever the candidate says (a shipped binary cannot change), and only
the candidate's own lookups (version N, or machine type U ≤ B *on* N) see the new
data. That split is what lets the gate compare a guest of U, as U really ran it,
with the same guest on N.

Compat entries that name a driver or property that does not exist, that do not
parse as the property's type, or that are filed under N or later, are not errors
of the file: QEMU ignores an entry for an unknown type and an entry filed under N
applies to N itself, so they are kept as :class:`CandidateProblem` for the gate to
report; entries QEMU ignores are left out of the catalogue, the others kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compatlab.catalogue.loader import _prop, builtin_catalogue, parse_types
from compatlab.catalogue.model import (
    Catalogue,
    CompatEntry,
    DeviceType,
    MachineRemoval,
    _variant_at,
)
from compatlab.catalogue.properties import PropertyDef
from compatlab.errors import (
    CandidateError,
    CatalogueError,
    PropertyParseError,
    UnknownVersionError,
)
from compatlab.versions import Version

_TOP_KEYS = {"version", "base", "doc", "oldest_machine", "types", "compat"}
_PROP_KEYS = {
    "type",
    "choices",
    "min",
    "max",
    "default",
    "since",
    "until",
    "guest_visible",
    "doc",
    "sweep",
    "internal",
    "readonly",
}
_RETYPE_KEYS = {"type", "choices", "min", "max"}
_COMPAT_KEYS = {"machine_version", "array_name", "driver", "property", "value"}


# -- the catalogue as it stood at a version ----------------------------------------------


def as_of(catalogue: Catalogue, version: Version) -> Catalogue:
    """``catalogue`` as it stood when ``version`` was the newest release.

    Versions after ``version`` go, and with them the types and property variants
    they introduced. Compat entries filed under ``version`` or later (written by
    later releases for machine types up to them) are folded into the defaults: a
    property's default becomes its value at ``version``, per type (a subtype whose
    value differs gets its own copy of the definition). A property that did not
    exist yet stays as ``internal`` behaviour at its historical value, so builders
    behave as they did then and a candidate can introduce it properly.
    """
    if version not in catalogue.versions:
        raise CandidateError(f"the catalogue has no version {version}")
    if version == catalogue.versions[-1]:
        return catalogue
    types: dict[str, DeviceType] = {}
    for name, t in catalogue.types.items():
        if t.since > version:
            continue
        props: dict[str, tuple[PropertyDef, ...]] = {}
        for pname, variants in t.properties.items():
            props[pname] = _props_as_of(catalogue, name, variants, version)
        types[name] = dataclasses.replace(
            t,
            until=t.until if t.until is None or t.until <= version else None,
            properties=props,
        )
    # A subtype whose value at ``version`` differs from what it would inherit gets
    # its own copy of the definition (the folded entry named the subtype).
    for name in types:
        inherited = _inherited(types, name)
        for pname, variants in inherited.items():
            if pname in catalogue.types[name].properties:
                continue
            source = catalogue.types[variants[0].owner] if variants[0].owner else None
            if source is None:
                continue
            if all(p.internal for p in variants):
                own = _history_as_internal(catalogue, name, variants[0], version)
                if [(p.since, p.default) for p in own] == [(p.since, p.default) for p in variants]:
                    continue
            else:
                want = catalogue.default(name, pname, version)
                current = _variant_at(variants, version)
                if current.default == want:
                    continue
                own = tuple(
                    dataclasses.replace(p, default=want if p is current else p.default, owner=name)
                    for p in variants
                )
            types[name] = dataclasses.replace(
                types[name], properties={**types[name].properties, pname: own}
            )
    compat = tuple(e for e in catalogue.compat if e.version < version and e.driver in types)
    return Catalogue(
        types=types,
        compat=compat,
        versions=tuple(v for v in catalogue.versions if v <= version),
        removals=tuple(r for r in catalogue.removals if r.release <= version),
    )


def _inherited(types: Mapping[str, DeviceType], name: str) -> dict[str, tuple[PropertyDef, ...]]:
    chain: list[str] = []
    current: str | None = name
    while current is not None and current not in chain:
        chain.append(current)
        current = types[current].parent if current in types else None
    props: dict[str, tuple[PropertyDef, ...]] = {}
    for ancestor in reversed(chain):
        if ancestor in types:
            props.update(types[ancestor].properties)
    return props


def _props_as_of(
    catalogue: Catalogue, owner: str, variants: tuple[PropertyDef, ...], version: Version
) -> tuple[PropertyDef, ...]:
    kept = [p for p in variants if p.since <= version]
    if not kept:
        return _history_as_internal(catalogue, owner, variants[0], version)
    value = catalogue.default(owner, variants[0].name, version)
    current = _variant_at(tuple(kept), version)
    out = []
    for p in kept:
        until = p.until if p.until is not None and p.until <= version else None
        out.append(
            dataclasses.replace(p, until=until, default=value if p is current else p.default)
        )
    return tuple(out)


def _history_as_internal(
    catalogue: Catalogue, owner: str, prop: PropertyDef, version: Version
) -> tuple[PropertyDef, ...]:
    """A property that did not exist yet at ``version``: the behaviour each older
    release had (its historical value there), as internal variants."""
    runs: list[tuple[Version, Any]] = []
    for v in catalogue.versions:
        if v > version:
            break
        value = catalogue.default(owner, prop.name, v)
        if not runs or runs[-1][1] != value:
            runs.append((v, value))
    return tuple(
        dataclasses.replace(
            prop,
            default=value,
            internal=True,
            since=start,
            until=runs[i + 1][0] if i + 1 < len(runs) else None,
            owner=owner,
        )
        for i, (start, value) in enumerate(runs)
    )


# -- candidate files ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CandidateProblem:
    """A defect of the candidate's data that QEMU would not refuse (it would
    silently do the wrong thing): the gate reports each one as a failure."""

    kind: str
    message: str
    #: What the problem is about, as data for the verdict JSON (the entry, the
    #: machine types, the property, the device types), in order.
    details: tuple[tuple[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, **dict(self.details)}


@dataclass(frozen=True, slots=True)
class Candidate:
    """A parsed candidate file (see docs/candidate-format.md)."""

    version: Version
    base: Version | None
    doc: str
    types: Mapping[str, Mapping[str, Any]]
    compat: tuple[Mapping[str, str], ...]
    source: str = "<candidate>"
    #: The oldest machine type the candidate still offers (None: all of them).
    oldest_machine: Version | None = None


@dataclass(frozen=True)
class CandidateCatalogue:
    candidate: Candidate
    base: Catalogue
    catalogue: Catalogue
    problems: tuple[CandidateProblem, ...]

    @property
    def version(self) -> Version:
        return self.candidate.version

    def touched(self) -> tuple[str, ...]:
        """Concrete device types whose data the candidate changes (directly, through
        an ancestor, or through a compat entry): the only ones whose behaviour can
        differ from the base's newest version, since builders never test versions."""
        cat = self.catalogue
        named = set(self.candidate.types)
        for row in self.candidate.compat:
            if row.get("driver") in cat.types:
                named.add(str(row["driver"]))
        return tuple(d for d in cat.concrete if any(cat.is_a(d, n) for n in named))


def _fail(source: str, message: str) -> CandidateError:
    return CandidateError(f"{source}: {message}")


# What each key of a candidate holds, checked before anything is applied: a value of
# the wrong kind is bad input naming the file and the key, never a traceback.
_TEXT = (str,)
_SCALAR = (bool, int, str)
_TYPE_KEYS: dict[str, tuple[type, ...]] = {
    "since": _TEXT,
    "until": _TEXT,
    "parent": _TEXT,
    "builder": _TEXT,
    "doc": _TEXT,
    "example": _TEXT,
    "abstract": (bool,),
    "max_instances": (int,),
}
_TYPE_LIST_KEYS: dict[str, tuple[type, ...]] = {"refuse": _TEXT, "quirks": _TEXT}
_PROP_VALUE_KEYS: dict[str, tuple[type, ...]] = {
    "type": _TEXT,
    "min": (int,),
    "max": (int,),
    "default": _SCALAR,
    "since": _TEXT,
    "until": _TEXT,
    "guest_visible": (bool,),
    "internal": (bool,),
    "readonly": (bool,),
    "doc": _TEXT,
}
_PROP_LIST_KEYS: dict[str, tuple[type, ...]] = {"choices": _TEXT, "sweep": (int, str)}
_COMPAT_VALUE_KEYS: dict[str, tuple[type, ...]] = {
    "machine_version": _TEXT,
    "array_name": _TEXT,
    "driver": _TEXT,
    "property": _TEXT,
    "value": _SCALAR,
}
_NAMES = {bool: "a boolean", int: "an integer", str: "a string"}


def _expect(value: Any, kinds: tuple[type, ...], source: str, key: str) -> None:
    # bool is an int in Python, not in TOML: an integer key refuses true.
    ok = isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))
    if not ok:
        from compatlab.inputs import kind_of

        names = [_NAMES[k] for k in kinds]
        wanted = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        raise _fail(source, f"{key} must be {wanted}, not {kind_of(value)}")


def _expect_table(value: Any, source: str, key: str, what: str = "a table") -> None:
    if not isinstance(value, dict):
        from compatlab.inputs import kind_of

        raise _fail(source, f"{key} must be {what}, not {kind_of(value)}")


def _check_keys(
    table: Mapping[str, Any],
    scalars: Mapping[str, tuple[type, ...]],
    lists: Mapping[str, tuple[type, ...]],
    source: str,
    where: str,
) -> None:
    for key, value in table.items():
        if key in scalars:
            _expect(value, scalars[key], source, f"{where}.{key}")
        elif key in lists:
            if not isinstance(value, list):
                from compatlab.inputs import kind_of

                raise _fail(source, f"{where}.{key} must be a list, not {kind_of(value)}")
            for n, item in enumerate(value):
                _expect(item, lists[key], source, f"{where}.{key}[{n}]")


def _check_types(types: Any, source: str) -> None:
    """Every key of ``types`` holds what it should (unknown keys are refused later,
    where it is known whether the type exists)."""
    _expect_table(types, source, "types", "a table of device type tables")
    for name, spec in types.items():
        where = f"types.{name}"
        _expect_table(spec, source, where)
        _check_keys(spec, _TYPE_KEYS, _TYPE_LIST_KEYS, source, where)
        props = spec.get("properties", {})
        _expect_table(props, source, f"{where}.properties", "a table of property tables")
        for pname, pspec in props.items():
            at = f"{where}.properties.{pname}"
            _expect_table(pspec, source, at)
            _check_keys(pspec, _PROP_VALUE_KEYS, _PROP_LIST_KEYS, source, at)
            variants = pspec.get("variants", [])
            if not isinstance(variants, list):
                from compatlab.inputs import kind_of

                raise _fail(source, f"{at}.variants must be a list, not {kind_of(variants)}")
            for n, variant in enumerate(variants):
                _expect_table(variant, source, f"{at}.variants[{n}]")
                _check_keys(
                    variant, _PROP_VALUE_KEYS, _PROP_LIST_KEYS, source, f"{at}.variants[{n}]"
                )


def _compat_value(value: bool | int | str) -> str:
    """A compat entry's value in its command-line spelling (a TOML boolean as on/off)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def parse_candidate(data: Mapping[str, Any], source: str = "<candidate>") -> Candidate:
    """Check a candidate document's shape; semantic checks happen when it is applied."""
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise _fail(source, f"unknown key {sorted(unknown)[0]!r} (expected {sorted(_TOP_KEYS)})")
    if "version" not in data:
        raise _fail(source, "missing 'version' (the candidate release, e.g. version = \"10.1\")")
    for key in ("version", "base", "doc", "oldest_machine"):
        if key in data:
            _expect(data[key], _TEXT, source, key)
    try:
        version = Version.parse(data["version"])
        base = Version.parse(data["base"]) if "base" in data else None
        oldest = Version.parse(data["oldest_machine"]) if "oldest_machine" in data else None
    except CandidateError:
        raise
    except Exception as exc:
        raise _fail(source, str(exc)) from None
    types = data.get("types", {})
    _check_types(types, source)
    compat = data.get("compat", [])
    if not isinstance(compat, list) or not all(isinstance(r, dict) for r in compat):
        raise _fail(source, "'compat' must be an array of tables ([[compat]])")
    for i, row in enumerate(compat, start=1):
        extra = set(row) - _COMPAT_KEYS
        missing = {"machine_version", "driver", "property", "value"} - set(row)
        if extra or missing:
            what = f"unknown key {sorted(extra)[0]!r}" if extra else f"missing {sorted(missing)}"
            raise _fail(source, f"compat entry {i}: {what}")
        _check_keys(row, _COMPAT_VALUE_KEYS, {}, source, f"compat[{i - 1}]")
    return Candidate(
        version=version,
        base=base,
        doc=data.get("doc", ""),
        types=types,
        compat=tuple({k: _compat_value(v) for k, v in row.items()} for row in compat),
        source=source,
        oldest_machine=oldest,
    )


def candidate_document(candidate: Candidate) -> dict[str, Any]:
    """The candidate file's content as plain data (inverse of :func:`parse_candidate`)."""
    doc: dict[str, Any] = {"version": str(candidate.version)}
    if candidate.base is not None:
        doc["base"] = str(candidate.base)
    if candidate.doc:
        doc["doc"] = candidate.doc
    if candidate.oldest_machine is not None:
        doc["oldest_machine"] = str(candidate.oldest_machine)
    doc["types"] = {name: dict(spec) for name, spec in candidate.types.items()}
    doc["compat"] = [dict(row) for row in candidate.compat]
    return doc


def load_candidate(path: Path | str) -> Candidate:
    """Read a candidate file: a regular TOML file of at most 16 MiB, nested at most
    32 levels (:mod:`compatlab.inputs`); anything else is a CandidateError."""
    from compatlab.inputs import read_text

    path = Path(path)
    return candidate_from_text(
        read_text(path, what="candidate file", error=CandidateError), str(path)
    )


def candidate_from_text(text: str, source: str = "<candidate>") -> Candidate:
    """Parse a candidate file's text (``source`` names it in errors)."""
    from compatlab.inputs import loads_toml

    return parse_candidate(
        loads_toml(text, source, what="candidate file", error=CandidateError), source
    )


def apply_candidate(candidate: Candidate, catalogue: Catalogue | None = None) -> CandidateCatalogue:
    """The catalogue with ``candidate`` added as its newest version, and what is wrong
    with the candidate's data."""
    full = catalogue or builtin_catalogue()
    src = candidate.source
    base_version = candidate.base or full.versions[-1]
    if base_version not in full.versions:
        raise _fail(src, f"base {base_version} is not a version of the catalogue")
    n = candidate.version
    if n <= base_version:
        raise _fail(src, f"version {n} must be newer than its base {base_version}")
    base = as_of(full, base_version)
    types = dict(base.types)
    new_types: dict[str, Any] = {}
    for name, spec in candidate.types.items():
        if name in types:
            introduced = _introduced(types, name, spec)
            types[name] = _merge_type(types, name, spec, n, src)
            _drop_shadowing_history(types, name, introduced)
        else:
            new_types[name] = {"since": str(n), **spec}
    if new_types:
        try:
            parse_types(new_types, types, src)
        except (PropertyParseError, UnknownVersionError, ValueError, TypeError) as exc:
            raise _fail(src, f"bad new device type ({exc})") from None
        for name in new_types:
            if types[name].since != n:
                raise _fail(src, f"new type {name!r}: since must be {n}, the candidate")
            if types[name].parent is not None and types[name].parent not in types:
                raise _fail(src, f"new type {name!r}: unknown parent {types[name].parent!r}")
    probe = Catalogue(types=types, compat=(), versions=(*base.versions, n))
    entries, problems = _compat_entries(probe, candidate, src)
    oldest = candidate.oldest_machine
    removals = base.removals
    if oldest is not None:
        if oldest > n:
            raise _fail(src, f"oldest_machine {oldest} is newer than the candidate {n}")
        floor = base.oldest_machine(base.versions[-1])
        if oldest < floor:
            raise _fail(
                src,
                f"oldest_machine {oldest} is older than {floor}, the oldest machine type "
                f"{base.versions[-1]} offers: a release cannot bring deleted machine types back",
            )
        dropped = [v for v in base.versions if floor <= v < oldest]
        if dropped:
            removals = (*removals, MachineRemoval(n, oldest, f"candidate {n}: oldest_machine"))
            problems.append(
                CandidateProblem(
                    "machine-type-removed",
                    f"{n} offers no machine type older than {oldest}: guests started on "
                    f"{dropped[0]} … {dropped[-1]} ({len(dropped)} versions) cannot be "
                    "restarted on it with their machine type",
                )
            )
    try:
        cat = Catalogue(
            types=types,
            compat=tuple(sorted(base.compat + tuple(entries), key=lambda e: e.version)),
            versions=(*base.versions, n),
            released=base,
            removals=removals,
        )
        for name in cat.concrete:
            from compatlab.catalogue.builders import get_builder

            get_builder(types[name].builder or name)
    except (CatalogueError, CandidateError) as exc:
        raise _fail(src, str(exc)) from None
    return CandidateCatalogue(candidate, base, cat, tuple(problems))


def _introduced(types: Mapping[str, DeviceType], name: str, spec: Mapping[str, Any]) -> set[str]:
    """The properties ``spec`` declares on ``name`` that ``name`` does not have yet as
    properties (new ones, or behaviour that becomes a property): before the merge."""
    inherited = _inherited(types, name)
    return {
        p
        for p in dict(spec.get("properties", {}))
        if p not in inherited or all(v.internal for v in inherited[p])
    }


def _drop_shadowing_history(types: dict[str, DeviceType], name: str, introduced: set[str]) -> None:
    """A property the candidate introduces on ``name`` replaces the fixed behaviour
    :func:`as_of` left on its subtypes (their history as internal variants): from the
    candidate on, the subtypes inherit the property like any other.

    Only an introduced property does: a subtype that fixes the behaviour of a
    property its ancestor already has (virtio-net-pci-transitional's own
    disable-legacy, set by its instance_init, while virtio-pci has the property)
    keeps doing so when the candidate changes that property, as QEMU's type does."""
    for sub, t in list(types.items()):
        if sub == name or not _descends(types, sub, name):
            continue
        shadowing = {
            p for p in introduced & set(t.properties) if all(v.internal for v in t.properties[p])
        }
        if shadowing:
            types[sub] = dataclasses.replace(
                t, properties={k: v for k, v in t.properties.items() if k not in shadowing}
            )


def _descends(types: Mapping[str, DeviceType], name: str, ancestor: str) -> bool:
    current: str | None = name
    seen: set[str] = set()
    while current is not None and current not in seen:
        if current == ancestor:
            return True
        seen.add(current)
        current = types[current].parent if current in types else None
    return False


def _merge_type(
    types: Mapping[str, DeviceType], name: str, spec: Mapping[str, Any], n: Version, src: str
) -> DeviceType:
    t = types[name]
    unknown = set(spec) - {"properties", "until", "doc"}
    if unknown:
        raise _fail(
            src,
            f"type {name!r} exists; a candidate may only change its properties, "
            f"until or doc (not {sorted(unknown)[0]!r})",
        )
    until = t.until
    if "until" in spec:
        try:
            removed_in = Version.parse(spec["until"])
        except UnknownVersionError as exc:
            raise _fail(src, f"types.{name}.until: {exc}") from None
        if removed_in != n:
            raise _fail(src, f'type {name!r}: a removal takes effect in {n} (until = "{n}")')
        until = n
    props = dict(t.properties)
    inherited = _inherited(types, name)
    for pname, pspec in dict(spec.get("properties", {})).items():
        if not isinstance(pspec, dict):
            raise _fail(src, f"{name}.{pname}: must be a table")
        bad = set(pspec) - _PROP_KEYS
        if bad:
            raise _fail(src, f"{name}.{pname}: unknown key {sorted(bad)[0]!r}")
        where = f"{name}.{pname}"
        try:
            props[pname] = _merge_property(inherited.get(pname), name, pname, pspec, n, where)
        except (PropertyParseError, UnknownVersionError) as exc:
            raise _fail(src, f"{where}: {exc}") from None
        except (CatalogueError, CandidateError) as exc:
            raise _fail(src, str(exc)) from None
    return dataclasses.replace(t, until=until, properties=props, doc=str(spec.get("doc", t.doc)))


def _merge_property(
    variants: tuple[PropertyDef, ...] | None,
    owner: str,
    pname: str,
    spec: Mapping[str, Any],
    n: Version,
    where: str,
) -> tuple[PropertyDef, ...]:
    since = str(spec.get("since", n))
    if Version.parse(since) != n:
        raise CandidateError(f"{where}: a candidate can only add what appears in {n} (since)")
    if variants is None or (all(p.internal for p in variants) and not spec.get("internal")):
        # A new property (or behaviour that now becomes a property).
        if "type" not in spec:
            raise CandidateError(f"{where}: a new property needs a type")
        return (_prop(owner, pname, {**spec, "since": str(n)}, str(n)),)
    current = variants[-1]
    if "until" in spec and Version.parse(str(spec["until"])) != n:
        raise CandidateError(f'{where}: a removal takes effect in {n} (until = "{n}")')
    if _RETYPE_KEYS & set(spec) and any(
        spec.get(k, _old_type_key(current, k)) != _old_type_key(current, k) for k in _RETYPE_KEYS
    ):
        kept = {
            k: v
            for k, v in _variant_spec(current).items()
            if k not in ("default", "since", "until", "sweep", "min", "max", "choices")
        }
        retyped = _prop(owner, pname, {**kept, **spec, "since": str(n)}, str(n))
        closed = dataclasses.replace(current, until=n, owner=owner)
        return (*(dataclasses.replace(p, owner=owner) for p in variants[:-1]), closed, retyped)
    default = current.default
    if "default" in spec:
        default = current.type.parse(spec["default"])
    changed = dataclasses.replace(
        current,
        default=default,
        until=n if "until" in spec else current.until,
        guest_visible=bool(spec.get("guest_visible", current.guest_visible)),
        doc=str(spec.get("doc", current.doc)),
        sweep=tuple(str(v) for v in spec.get("sweep", current.sweep)),
        internal=bool(spec.get("internal", current.internal)),
        owner=owner,
        readonly=bool(spec.get("readonly", current.readonly)),
    )
    return (*(dataclasses.replace(p, owner=owner) for p in variants[:-1]), changed)


def _old_type_key(prop: PropertyDef, key: str) -> Any:
    return {
        "type": prop.type.kind,
        "choices": list(prop.type.choices),
        "min": prop.type.minimum,
        "max": prop.type.maximum,
    }[key]


def _compat_entries(
    cat: Catalogue, candidate: Candidate, src: str
) -> tuple[list[CompatEntry], list[CandidateProblem]]:
    entries: list[CompatEntry] = []
    problems: list[CandidateProblem] = []
    n = candidate.version
    for i, row in enumerate(candidate.compat, start=1):
        try:
            version = Version.parse(row["machine_version"])
        except (CatalogueError, CandidateError):
            raise
        except Exception as exc:
            raise _fail(src, f"compat entry {i}: {exc}") from None
        entry = CompatEntry(
            version, row["driver"], row["property"], row["value"], row.get("array_name", "")
        )
        label = f"compat entry {entry.array or version} {entry.driver}.{entry.prop}={entry.value}"
        if entry.driver not in cat.types:
            problems.append(
                CandidateProblem(
                    "unknown-driver",
                    f"{label}: driver {entry.driver!r} does not exist, so the entry pins "
                    "nothing (QEMU ignores it)",
                )
            )
            continue
        owners = [t for t in cat.subtypes(entry.driver) if entry.prop in cat._all_props(t)]
        if not owners:
            problems.append(
                CandidateProblem(
                    "unknown-property",
                    f"{label}: {entry.driver} and its subtypes have no property "
                    f"{entry.prop!r}, so the entry pins nothing",
                )
            )
            continue
        if version >= n:
            problems.append(
                CandidateProblem(
                    "entry-too-new",
                    f"{label}: filed under {version}, so it applies to the candidate {n} "
                    f"itself; entries for machine types up to the previous release belong "
                    f"under {cat.versions[-2]}",
                )
            )
            # Kept: QEMU applies it, to the candidate too.
        try:
            for owner in owners:
                variants = cat._all_props(owner)[entry.prop]
                _variant_at(variants, n).type.parse(entry.value)
        except PropertyParseError as exc:
            problems.append(
                CandidateProblem(
                    "bad-value",
                    f"{label}: {exc}; QEMU refuses to start such a device on machine types "
                    f"up to {version}",
                )
            )
            continue
        entries.append(entry)
    return entries, problems


# -- released versions as candidates ---------------------------------------------------------


def _variant_spec(prop: PropertyDef, *, since: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": prop.type.kind}
    if prop.type.choices:
        spec["choices"] = list(prop.type.choices)
    if prop.type.minimum is not None:
        spec["min"] = prop.type.minimum
    if prop.type.maximum is not None:
        spec["max"] = prop.type.maximum
    if prop.default is not None:
        spec["default"] = prop.default
    if since:
        spec["since"] = str(prop.since)
    if prop.until is not None:
        spec["until"] = str(prop.until)
    for key in ("guest_visible", "internal", "readonly"):
        if getattr(prop, key):
            spec[key] = True
    if prop.doc:
        spec["doc"] = prop.doc
    if prop.sweep:
        spec["sweep"] = list(prop.sweep)
    return spec


def _type_spec(t: DeviceType) -> dict[str, Any]:
    spec: dict[str, Any] = {"since": str(t.since)}
    if t.parent is not None:
        spec["parent"] = t.parent
    if t.abstract:
        spec["abstract"] = True
    elif t.builder is not None:
        spec["builder"] = t.builder
    for key in ("doc", "example", "max_instances"):
        if getattr(t, key):
            spec[key] = getattr(t, key)
    if t.refuse:
        spec["refuse"] = list(t.refuse)
    props: dict[str, Any] = {}
    for name, variants in t.properties.items():
        if len(variants) == 1:
            props[name] = _variant_spec(variants[0])
        else:
            props[name] = {"variants": [_variant_spec(p) for p in variants]}
    spec["properties"] = props
    return spec


def release_candidate(catalogue: Catalogue, version: Version) -> Candidate:
    """Release ``version`` of ``catalogue`` written as a candidate on the release
    before it: what a candidate file for that release would have said. Applying it
    to the catalogue gives back, for the release and for every older machine type
    on it, exactly the values the catalogue has (tests/test_gate_candidates.py)."""
    index = catalogue.versions.index(version)
    if index == 0:
        raise CandidateError(f"{version} is the oldest version; it has no release before it")
    before = catalogue.versions[index - 1]
    base, target = as_of(catalogue, before), as_of(catalogue, version)
    types: dict[str, dict[str, Any]] = {}
    for name, t in target.types.items():
        if name not in base.types:
            types[name] = _type_spec(t)
            continue
        old = base.types[name]
        spec: dict[str, Any] = {}
        if t.until == version:
            spec["until"] = str(version)
        props: dict[str, Any] = {}
        # Own properties on either side: a subtype's own copy (history folded by
        # as_of) that the release drops is a change of that subtype too.
        had, has = _inherited(base.types, name), _inherited(target.types, name)
        for pname in sorted(set(old.properties) | set(t.properties)):
            change = _property_change(had.get(pname), has[pname], version)
            if change:
                props[pname] = change
        if props:
            spec["properties"] = props
        if spec:
            types[name] = spec
    compat = tuple(
        {
            "machine_version": str(e.version),
            "array_name": e.array,
            "driver": e.driver,
            "property": e.prop,
            "value": e.value,
        }
        for e in target.compat
        if e.version == before
    )
    return Candidate(
        version=version,
        base=before,
        doc=f"QEMU {version} as the catalogue records it",
        types=types,
        compat=compat,
        source=f"<release {version}>",
        oldest_machine=(
            target.oldest_machine(version)
            if target.oldest_machine(version) > base.oldest_machine(before)
            else None
        ),
    )


def _property_change(
    old: tuple[PropertyDef, ...] | None, new: tuple[PropertyDef, ...], version: Version
) -> dict[str, Any]:
    current = _variant_at(new, version)
    if current.internal:
        was = None if old is None else _variant_at(old, version).default
        if old is not None and was == current.default:
            return {}
        return {"internal": True, "type": current.type.kind, "default": current.default}
    if old is None or all(p.internal for p in old):
        return {k: v for k, v in _variant_spec(current).items() if k != "since"}
    previous = _variant_at(old, version)
    change: dict[str, Any] = {}
    if current.since == version and current.type != previous.type:
        change = {k: v for k, v in _variant_spec(current).items() if k not in ("since", "until")}
    elif current.default != previous.default:
        change["default"] = current.default
    if current.until is not None and current.until == version:
        change["until"] = str(version)
    return change
