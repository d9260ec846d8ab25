"""Strategies for the invariant suite: ordered versions, valid configs, hint
variations and hint sets, and guest config writes."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from compatlab.catalogue import Catalogue, active_catalogue
from compatlab.catalogue.values import SUITE_SPREAD, property_values
from compatlab.config import FIRST_SLOT, LAST_SLOT, Config, DeviceSpec, PciAddress
from compatlab.errors import CompatlabError
from compatlab.hints import HintEntry, Hints
from compatlab.realize import realize
from compatlab.resolve import assign_addresses, dump_hints
from compatlab.versions import Version, active_versions
from strategies.configs import _example_props, required_pairs, vcpu_counts


def ordered_versions(
    n: int, choices: Sequence[Version] | None = None
) -> st.SearchStrategy[tuple[Version, ...]]:
    """``n`` versions in ascending order (repeats allowed); shrinks towards the oldest."""
    return st.lists(
        st.sampled_from(list(choices or active_versions())), min_size=n, max_size=n
    ).map(lambda vs: tuple(sorted(vs)))


_SETTABLE: dict[
    tuple[Catalogue, str, tuple[Version, ...]], tuple[tuple[str, ...], tuple[str, ...]]
] = {}
_ACCEPTED: dict[tuple[Catalogue, str, str, Version], tuple[str, ...]] = {}
_TAKES: dict[tuple[Catalogue, str, str, str, Version], bool] = {}


def accepted_values(
    cat: Catalogue, driver: str, name: str, versions: tuple[Version, ...]
) -> tuple[str, ...]:
    """Values of ``driver.name`` that every one of ``versions`` accepts on the device
    alone (checked once per version against the model, then cached): most drawn
    configs are then valid, and Hypothesis spends its examples on checks instead of
    rejections."""
    per_version = [set(_accepted_at(cat, driver, name, v)) for v in versions]
    return tuple(
        v for v in _accepted_at(cat, driver, name, versions[0]) if all(v in s for s in per_version)
    )


def _accepted_at(cat: Catalogue, driver: str, name: str, version: Version) -> tuple[str, ...]:
    key = (cat, driver, name, version)
    if key not in _ACCEPTED:
        props = cat.properties(driver, version)
        values = property_values(props[name], SUITE_SPREAD, edges=False) if name in props else []
        _ACCEPTED[key] = tuple(v for v in values if takes(cat, driver, name, v, version))
    return _ACCEPTED[key]


def takes(cat: Catalogue, driver: str, name: str, value: str, version: Version) -> bool:
    """Whether ``version`` accepts ``driver.name=value`` on the device alone (with its
    catalogue example); checked against the model once, then cached."""
    key = (cat, driver, name, value, version)
    if key not in _TAKES:
        example = [(k, v) for k, v in _example_props(cat, driver) if k != name]
        config = Config((DeviceSpec(driver, "probe", None, (*example, (name, value))),))
        try:
            realize(config, version, catalogue=cat)
            _TAKES[key] = True
        except CompatlabError:
            _TAKES[key] = False
    return _TAKES[key]


def _common_settable(
    cat: Catalogue, driver: str, versions: tuple[Version, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The properties of ``driver`` a user can set in every one of ``versions``:
    (guest-visible ones, the others). Links (backends) are left to the catalogue
    example; multifunction moves the device to another function."""
    key = (cat, driver, versions)
    if key not in _SETTABLE:
        common = set.intersection(*(set(cat.properties(driver, v)) for v in versions))
        props = cat.properties(driver, min(versions))
        names = sorted(n for n in common if props[n].type.kind != "link" and n != "multifunction")
        _SETTABLE[key] = (
            tuple(n for n in names if props[n].guest_visible),
            # Free-form ones (a string, a MAC address) have no values to try.
            tuple(
                n
                for n in names
                if not props[n].guest_visible
                and property_values(props[n], SUITE_SPREAD, edges=False)
            ),
        )
    return _SETTABLE[key]


@functools.cache
def _some(names: tuple[str, ...], most: int) -> st.SearchStrategy[list[str]]:
    """Up to ``most`` of ``names`` (built once: strategies are drawn from often)."""
    return st.lists(st.sampled_from(names), unique=True, max_size=most)


@functools.cache
def _one(values: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.sampled_from(values)


@st.composite
def valid_configs(
    draw: st.DrawFn,
    versions: Sequence[Version],
    *,
    catalogue: Catalogue | None = None,
    drivers: Sequence[str] | None = None,
    max_devices: int = 4,
    visible_only: bool = False,
) -> Config:
    """A config every one of ``versions`` accepts: devices that exist in the oldest,
    properties that exist in all of them, values they all take, and a vCPU count
    (:func:`vcpu_counts`).

    Every property a user can set may be drawn, weighted toward guest-visible ones
    (up to three of those and one other per device): a property that does
    not change config space still has to be accepted by a newer release, and some
    do change it without being flagged (a builder reads them). ``visible_only``
    draws guest-visible ones alone.

    Shrinks towards one device with only its required properties, automatic address,
    no vCPU count given.
    """
    cat = catalogue or active_catalogue()
    choices = _drivers_in_all(cat, versions, drivers)
    assume(choices)
    n = draw(st.integers(1, max_devices))
    slots = draw(st.lists(st.integers(FIRST_SLOT, LAST_SLOT), min_size=n, max_size=n, unique=True))
    devices: list[DeviceSpec] = []
    for i in range(n):
        driver = draw(st.sampled_from(choices))
        pairs, pinned = _device_choices(draw, cat, driver, versions, visible_only)
        addr = PciAddress(slots[i]) if pinned else None
        devices.append(_device(cat, driver, f"dev{i}", addr, pairs, versions, i))
    # Drawn last, so that the devices drawn from a seed are what they were before.
    return _accepted(Config(tuple(devices), draw(vcpu_counts())), versions, cat)


def _drivers_in_all(
    cat: Catalogue, versions: Sequence[Version], drivers: Sequence[str] | None
) -> list[str]:
    """The device types (of ``drivers``, else all) that every one of ``versions`` has."""
    return [
        d
        for d in (drivers or cat.devices(min(versions)))
        if all(cat.types[d].exists_in(v) for v in versions)
    ]


def _device_choices(
    draw: st.DrawFn,
    cat: Catalogue,
    driver: str,
    versions: Sequence[Version],
    visible_only: bool = False,
) -> tuple[list[tuple[str, str]], bool]:
    """What is drawn for one device of ``driver``: up to three guest-visible
    properties and one other settable one (none with ``visible_only``), with values
    every version takes (beside its required ones), and whether it has an explicit
    address. Shrinks towards no property, no address."""
    visible, others = _common_settable(cat, driver, tuple(versions))
    chosen = draw(_some(visible, 3)) if visible else []
    extra = draw(_some(others, 1)) if others and not visible_only else []
    taken = {name for name, _ in _example_props(cat, driver)}
    pairs = []
    for name in chosen:
        values = accepted_values(cat, driver, name, tuple(versions))
        if name not in taken and values:
            pairs.append((name, draw(st.sampled_from(values))))
    # The others' values are checked one at a time: there are many of them, and a
    # value some version refuses only leaves its property out.
    props = cat.properties(driver, min(versions))
    for name in extra:
        value = draw(_one(tuple(property_values(props[name], SUITE_SPREAD, edges=False))))
        if name not in taken and all(takes(cat, driver, name, value, v) for v in versions):
            pairs.append((name, value))
    return pairs, draw(st.booleans())


def _device(
    cat: Catalogue,
    driver: str,
    id: str | None,
    addr: PciAddress | None,
    pairs: list[tuple[str, str]],
    versions: Sequence[Version],
    index: int,
) -> DeviceSpec:
    """The device at ``index``: its required properties (backends named after the
    index), then ``pairs``."""
    required = required_pairs(cat, driver, min(versions), index)
    return DeviceSpec(driver, id, addr, (*required, *pairs))


def _accepted(config: Config, versions: Sequence[Version], cat: Catalogue) -> Config:
    """``config``, if every one of ``versions`` realizes it (else the draw is rejected)."""
    for v in versions:
        try:
            realize(config, v, catalogue=cat)
        except CompatlabError:
            assume(False)
    return config


def guest_writes(max_writes: int = 8) -> st.SearchStrategy[list[tuple[int, int, int]]]:
    """Guest config writes ``(offset, width, value)``, naturally aligned; shrinks
    towards no writes."""
    write = st.sampled_from([1, 2, 4]).flatmap(
        lambda width: st.tuples(
            st.integers(0, 256 // width - 1).map(lambda i: i * width),
            st.just(width),
            st.integers(0, (1 << (8 * width)) - 1),
        )
    )
    return st.lists(write, max_size=max_writes)


@st.composite
def hint_variations(draw: st.DrawFn, hints: Hints, config: Config) -> Hints:
    """Hints as a VM manager may hand them back: partial (entries or properties
    dropped), with entries for devices not in the config, with a mismatched driver.
    Every choice shrinks towards "leave it as it is", so shrinking leads back to
    the hints unchanged."""
    identities = [e.identity for e in hints.entries]
    dropped = draw(st.sets(st.sampled_from(identities))) if identities else set()
    out: list[HintEntry] = []
    for entry in hints.entries:
        if entry.identity in dropped:
            continue
        props = entry.properties
        if len(props) > 0 and draw(st.booleans()):
            gone = draw(st.sets(st.sampled_from([n for n, _ in props]), max_size=len(props)))
            props = tuple((n, v) for n, v in props if n not in gone)
        out.append(HintEntry(entry.identity, entry.driver, props))
    for k in range(draw(st.integers(0, 2))):
        out.append(HintEntry(f"absent{k}", "e1000", (("rombar", 0),)))
    ids = {d.id for d in config.devices}
    if len(out) > 0 and draw(st.booleans()):
        victim = draw(st.sampled_from(range(len(out))))
        e = out[victim]
        if e.identity in ids:
            other = "rtl8139" if e.driver != "rtl8139" else "e1000"
            out[victim] = HintEntry(e.identity, other, ())
    return Hints(hints.version, tuple(out), hints.vcpus)


#: What becomes of a device's entry in :func:`hinted_configs`, simplest first.
FATES = ("keep", "partial", "drop", "mismatch")


@st.composite
def _hinted_device(
    draw: st.DrawFn, cat: Catalogue, choices: Sequence[str], versions: Sequence[Version]
) -> tuple[str, list[tuple[str, str]], int | None, bool, str, Any]:
    """One device of :func:`hinted_configs` and the fate of its entry, drawn together
    so that shrinking drops a device with its entry."""
    driver = draw(st.sampled_from(choices))
    pairs, pinned = _device_choices(draw, cat, driver, versions)
    slot = draw(st.integers(FIRST_SLOT, LAST_SLOT)) if pinned else None
    anonymous = draw(st.booleans())
    fate = draw(st.sampled_from(FATES))
    detail: Any = None
    if fate == "partial":
        names = sorted(cat.properties(driver, min(versions)))
        detail = frozenset(draw(st.sets(st.sampled_from(names), min_size=1))) if names else None
    elif fate == "mismatch":
        detail = draw(st.sampled_from([d for d in cat.devices(min(versions)) if d != driver]))
    return driver, pairs, slot, anonymous, fate, detail


@st.composite
def hinted_configs(
    draw: st.DrawFn,
    versions: Sequence[Version],
    *,
    catalogue: Catalogue | None = None,
    drivers: Sequence[str] | None = None,
    max_devices: int = 4,
) -> tuple[Config, Hints]:
    """A config every one of ``versions`` accepts (as :func:`valid_configs` draws one,
    some devices without an ``id``, so known by their address), and hints for it as
    the oldest version dumps them, then made partial, mismatched and padded:

    - partial: a device's entry dropped, or some of its properties;
    - mismatched: a device's entry replaced by one of another driver, as the oldest
      version dumps a device of that driver under the same identity;
    - padded: entries for identities no device has, copies of the config's own
      entries (so of drivers it has) under an ``absent-N`` id or a free address.

    Shrinks towards one device with its id and its whole entry, and no padding.
    """
    cat = catalogue or active_catalogue()
    oldest = min(versions)
    choices = _drivers_in_all(cat, versions, drivers)
    assume(choices)
    drawn = draw(st.lists(_hinted_device(cat, choices, versions), min_size=1, max_size=max_devices))
    devices: list[DeviceSpec] = []
    used: set[int] = set()
    for i, (driver, pairs, slot, anonymous, _, _) in enumerate(drawn):
        addr = None if slot is None or slot in used else PciAddress(slot)
        used.add(-1 if slot is None else slot)
        ident = None if anonymous else f"dev{i}"
        devices.append(_device(cat, driver, ident, addr, pairs, versions, i))
    config = _accepted(Config(tuple(devices)), versions, cat)
    addresses = assign_addresses(config)
    dumped = {e.identity: e for e in dump_hints(config, oldest, catalogue=cat).entries}
    out: dict[str, HintEntry] = {}
    for spec, addr, (_, _, _, _, fate, detail) in zip(devices, addresses, drawn, strict=True):
        entry = dumped[spec.id if spec.id is not None else str(addr)]
        if fate == "keep":
            out[entry.identity] = entry
        elif fate == "partial":
            kept = tuple((n, v) for n, v in entry.properties if n not in (detail or ()))
            out[entry.identity] = HintEntry(entry.identity, entry.driver, kept)
        elif fate == "mismatch":
            out[entry.identity] = _entry_of(cat, detail, entry.identity, oldest)
    free = [str(PciAddress(s)) for s in range(FIRST_SLOT, LAST_SLOT + 1)]
    free = [a for a in free if a not in {str(a) for a in addresses}]
    padding = draw(st.lists(st.tuples(st.sampled_from(sorted(dumped)), st.booleans()), max_size=3))
    for k, (copied, by_address) in enumerate(padding):
        identity = free.pop(0) if by_address and free else f"absent-{k}"
        out[identity] = HintEntry(identity, dumped[copied].driver, dumped[copied].properties)
    return config, Hints(oldest, tuple(out.values()))


def _entry_of(cat: Catalogue, driver: str, identity: str, version: Version) -> HintEntry:
    """The entry ``version`` dumps for a device of ``driver`` (its required properties
    only) known as ``identity``."""
    alone = Config(
        (DeviceSpec(driver, identity, None, tuple(required_pairs(cat, driver, version, 0))),)
    )
    try:
        (entry,) = dump_hints(alone, version, catalogue=cat).entries
    except CompatlabError:
        return HintEntry(identity, driver, ())
    return entry


@st.composite
def with_sibling(
    draw: st.DrawFn,
    config: Config,
    versions: Sequence[Version],
    *,
    catalogue: Catalogue | None = None,
) -> Config:
    """``config``, perhaps with one more device of a driver it already has (its
    required properties only, the next free slot, id ``devN``), when every one of
    ``versions`` takes it: two devices of one driver, of which hints made for
    ``config`` know only one. Shrinks towards no extra device."""
    cat = catalogue or active_catalogue()
    n = len(config.devices)
    index = draw(st.none() | st.integers(0, n - 1)) if n else None
    if index is None:
        return config
    driver = config.devices[index].driver
    extra = DeviceSpec(
        driver, f"dev{n}", None, tuple(required_pairs(cat, driver, min(versions), n))
    )
    bigger = Config((*config.devices, extra))
    try:
        for v in versions:
            realize(bigger, v, catalogue=cat)
    except CompatlabError:
        return config  # QEMU takes one such device per machine, or no slot is left
    return bigger
