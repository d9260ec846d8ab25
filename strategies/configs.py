"""Strategies for versions, device specs and configs."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from hypothesis import strategies as st

from compatlab.catalogue import Catalogue, active_catalogue
from compatlab.catalogue.properties import PropertyDef
from compatlab.catalogue.values import choices as type_choices
from compatlab.config import (
    FIRST_SLOT,
    LAST_SLOT,
    Config,
    DeviceSpec,
    PciAddress,
    parse_device_string,
)
from compatlab.versions import Version, active_versions

#: The most vCPUs a drawn config asks for: enough for every auto queue count to
#: differ from one vCPU's, and few enough for a real QEMU to start quickly.
MAX_DRAWN_VCPUS = 8


def versions(choices: Sequence[Version] | None = None) -> st.SearchStrategy[Version]:
    """A version of the catalogue in use (or of ``choices``); shrinks towards the newest."""
    return st.sampled_from(list(reversed(choices or active_versions())))


def vcpu_counts() -> st.SearchStrategy[int | None]:
    """A config's vCPU count: not given (one), or 1..MAX_DRAWN_VCPUS; shrinks towards
    not given, then towards 1."""
    return st.none() | st.integers(1, MAX_DRAWN_VCPUS)


@functools.cache
def property_values(prop: PropertyDef) -> st.SearchStrategy[str]:
    """Command-line values for one property: its catalogue sweep values (valid and
    refused ones) and values drawn from its type (every choice of a type with few
    values, any integer within bounds up to 4096). Shrinks towards the first sweep value."""
    t = prop.type
    options: list[st.SearchStrategy[str]] = []
    if prop.sweep:
        options.append(st.sampled_from(prop.sweep))
    if type_choices(t):
        options.append(st.sampled_from(type_choices(t)))
    elif t.bounds is not None:
        low, high = t.bounds
        options.append(st.integers(low, min(high, 4096)).map(str))
    if not options:
        return st.nothing()
    return st.one_of(options)


def _example_props(cat: Catalogue, driver: str) -> list[tuple[str, str]]:
    example = cat.types[driver].example
    if not example:
        return []
    return [(k, str(v)) for k, v in parse_device_string(example).properties]


def required_pairs(
    cat: Catalogue, driver: str, version: Version, index: int
) -> list[tuple[str, str]]:
    """The properties a device cannot do without (its catalogue example, e.g. a
    backend), with backend names made unique to the device at ``index``."""
    props = cat.properties(driver, version)
    pairs = []
    for name, value in _example_props(cat, driver):
        if props.get(name) is not None and props[name].type.kind == "link":
            value = f"{value}{index}"
        pairs.append((name, value))
    return pairs


@st.composite
def device_specs(
    draw: st.DrawFn,
    version: Version,
    *,
    catalogue: Catalogue | None = None,
    drivers: Sequence[str] | None = None,
    index: int = 0,
) -> DeviceSpec:
    """One device that exists in ``version`` with a few guest-visible properties set.

    Shrinks towards the first driver with only its example (required) properties.
    """
    cat = catalogue or active_catalogue()
    driver = draw(st.sampled_from(list(drivers or cat.devices(version))))
    props = cat.properties(driver, version)
    visible = sorted(n for n, p in props.items() if p.guest_visible and n != "multifunction")
    chosen = draw(st.lists(st.sampled_from(visible), unique=True, max_size=4)) if visible else []
    pairs = required_pairs(cat, driver, version, index)
    taken = {name for name, _ in pairs}
    for name in chosen:
        if name not in taken:
            pairs.append((name, draw(property_values(props[name]))))
    return DeviceSpec(driver=driver, id=f"dev{index}", properties=tuple(pairs))


@st.composite
def configs(
    draw: st.DrawFn,
    version: Version,
    *,
    catalogue: Catalogue | None = None,
    max_devices: int = 6,
    drivers: Sequence[str] | None = None,
) -> Config:
    """1..max_devices devices on distinct slots (some left to automatic assignment),
    and a vCPU count (:func:`vcpu_counts`).

    Shrinks towards one device with no explicit properties at the first free slot,
    no vCPU count given.
    """
    n = draw(st.integers(1, max_devices))
    slots = draw(st.lists(st.integers(FIRST_SLOT, LAST_SLOT), min_size=n, max_size=n, unique=True))
    devices = []
    for i in range(n):
        spec = draw(device_specs(version, catalogue=catalogue, drivers=drivers, index=i))
        explicit = draw(st.booleans())
        addr = PciAddress(slots[i]) if explicit else None
        devices.append(DeviceSpec(spec.driver, spec.id, addr, spec.properties))
    return Config(tuple(devices), draw(vcpu_counts()))
