"""Load the built-in catalogue from the package's data files, once.

A start reads the parsed tables from a snapshot (:mod:`compatlab.catalogue.snapshot`)
when one matches the files; only without one are the tables parsed (and the
snapshot written for the next start).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from compatlab.catalogue import snapshot
from compatlab.catalogue.builders import (
    get_builder,
    import_all_builders,
    registered_builders,
    remember_homes,
)
from compatlab.catalogue.model import QUIRKS, Catalogue, CompatEntry, DeviceType, MachineRemoval
from compatlab.catalogue.properties import KINDS, PropertyDef, PropType
from compatlab.errors import CatalogueError, CompatlabError, PropertyParseError
from compatlab.versions import Version, known_version

_DATA = Path(__file__).parent / "data"


def _prop(owner: str, name: str, spec: dict[str, Any], type_since: str) -> PropertyDef:
    kind = spec.get("type")
    if kind not in KINDS:
        raise CatalogueError(f"{owner}.{name}: unknown property type {kind!r}")
    ptype = PropType(
        kind=kind,
        choices=tuple(spec.get("choices", ())),
        minimum=spec.get("min"),
        maximum=spec.get("max"),
    )
    default = spec.get("default")
    if default is not None:
        default = ptype.parse(default)
    return PropertyDef(
        name=name,
        type=ptype,
        default=default,
        since=Version.parse(str(spec.get("since", type_since))),
        until=Version.parse(str(spec["until"])) if spec.get("until") is not None else None,
        guest_visible=bool(spec.get("guest_visible", False)),
        doc=str(spec.get("doc", "")),
        sweep=tuple(str(v) for v in spec.get("sweep", ())),
        internal=bool(spec.get("internal", False)),
        owner=owner,
        readonly=bool(spec.get("readonly", False)),
    )


def parse_types(tables: dict[str, Any], types: dict[str, DeviceType], source: str) -> None:
    """Add the types of one TOML document to ``types``; a duplicate is an error."""
    for name, spec in tables.items():
        if name in types:
            raise CatalogueError(f"{source}: type {name!r} is defined twice")
        since = str(spec.get("since", "1.4"))
        props = {}
        for pname, pspec in spec.get("properties", {}).items():
            variants = pspec.get("variants", [pspec])
            defs = tuple(
                sorted(
                    (_prop(name, pname, {**pspec, **v}, "1.4") for v in variants),
                    key=lambda p: p.since,
                )
            )
            props[pname] = defs
        abstract = bool(spec.get("abstract", False))
        unknown = set(spec.get("quirks", ())) - QUIRKS
        if unknown:
            raise CatalogueError(f"{source}: {name}: unknown quirk {sorted(unknown)[0]!r}")
        types[name] = DeviceType(
            name=name,
            parent=spec.get("parent"),
            abstract=abstract,
            since=Version.parse(since),
            until=Version.parse(spec["until"]) if "until" in spec else None,
            properties=props,
            builder=None if abstract else spec.get("builder", name),
            doc=str(spec.get("doc", "")),
            example=spec.get("example"),
            refuse=tuple(spec.get("refuse", ())),
            max_instances=spec.get("max_instances"),
            quirks=tuple(spec.get("quirks", ())),
        )


def parse_compat(rows: list[dict[str, str]], source: str) -> list[CompatEntry]:
    entries = []
    for line, row in enumerate(rows, start=2):
        try:
            entries.append(
                CompatEntry(
                    version=Version.parse(row["machine_version"]),
                    driver=row["driver"],
                    prop=row["property"],
                    value=row["value"],
                    array=row.get("array_name", ""),
                )
            )
        except (KeyError, ValueError, PropertyParseError) as exc:
            raise CatalogueError(f"{source}:{line}: bad compat row ({exc})") from None
    return entries


def parse_removals(data: Mapping[str, Any], source: str) -> tuple[MachineRemoval, ...]:
    """Parse ``data/machines.toml``: the releases that deleted machine types."""
    out: list[MachineRemoval] = []
    for n, row in enumerate(data.get("removal", [])):
        try:
            removal = MachineRemoval(
                known_version(row["release"]), known_version(row["oldest"]), str(row["evidence"])
            )
        except (KeyError, TypeError, CompatlabError) as exc:
            raise CatalogueError(f"{source}: removal[{n}]: {exc}") from None
        if removal.oldest > removal.release:
            raise CatalogueError(
                f"{source}: removal[{n}]: oldest {removal.oldest} is newer than "
                f"its release {removal.release}"
            )
        if out and (removal.release <= out[-1].release or removal.oldest <= out[-1].oldest):
            raise CatalogueError(
                f"{source}: removal[{n}]: releases and oldest machine types must both ascend"
            )
        out.append(removal)
    return tuple(out)


def load_roms() -> dict[str, int]:
    """Parse ``data/roms.toml``: the ROM files the emulator ships and their sizes."""
    import tomllib

    with (_DATA / "roms.toml").open("rb") as fh:
        return {str(k): int(v) for k, v in tomllib.load(fh)["roms"].items()}


def parse_catalogue() -> Catalogue:
    """Parse the built-in tables and check that every concrete type has a builder."""
    import csv
    import io
    import tomllib

    import_all_builders()
    types: dict[str, DeviceType] = {}
    for entry in sorted((_DATA / "types").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            with entry.open("rb") as fh:
                parse_types(tomllib.load(fh), types, f"types/{entry.name}")
    compat: list[CompatEntry] = []
    for entry in sorted((_DATA / "compat").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".csv"):
            rows = list(csv.DictReader(io.StringIO(entry.read_text(encoding="utf-8"))))
            compat.extend(parse_compat(rows, f"compat/{entry.name}"))
    compat.sort(key=lambda e: e.version)  # stable: file order kept within a version
    with (_DATA / "machines.toml").open("rb") as fh:
        removals = parse_removals(tomllib.load(fh), "machines.toml")
    catalogue = Catalogue(types=types, compat=tuple(compat), removals=removals)
    for name in catalogue.concrete:
        get_builder(types[name].builder or name)
    return catalogue


@cache
def _builtin() -> snapshot.Snapshot:
    key = snapshot.source_key()
    found = snapshot.read(key)
    if found is None:
        catalogue = parse_catalogue()
        found = snapshot.Snapshot(
            key=key,
            catalogue=catalogue,
            roms=load_roms(),
            builder_homes={name: fn.__module__ for name, fn in registered_builders().items()},
        )
        snapshot.write(found)
    remember_homes(found.builder_homes)
    return found


def builtin_catalogue() -> Catalogue:
    """The built-in catalogue: 42 versions, every modelled device type."""
    return _builtin().catalogue


def builtin_roms() -> Mapping[str, int]:
    """The ROM files the emulator ships and their sizes (``data/roms.toml``)."""
    return _builtin().roms


def data_path() -> Path:
    return Path(str(_DATA))
