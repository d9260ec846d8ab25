"""Strategies for the invariant suite: ordered versions, valid configs, hint
variations and guest config writes."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import assume
from hypothesis import strategies as st

from compatlab.catalogue import Catalogue, active_catalogue
from compatlab.catalogue.values import SUITE_SPREAD, property_values
from compatlab.config import FIRST_SLOT, LAST_SLOT, Config, DeviceSpec, PciAddress
from compatlab.errors import CompatlabError
from compatlab.hints import HintEntry, Hints
from compatlab.realize import realize
from compatlab.versions import Version, active_versions
from strategies.configs import _example_props, required_pairs, vcpu_counts


def ordered_versions(
    n: int, choices: Sequence[Version] | None = None
) -> st.SearchStrategy[tuple[Version, ...]]:
    """``n`` versions in ascending order (repeats allowed); shrinks towards the oldest."""
    return st.lists(
        st.sampled_from(list(choices or active_versions())), min_size=n, max_size=n
    ).map(lambda vs: tuple(sorted(vs)))


_VISIBLE: dict[tuple[Catalogue, str, tuple[Version, ...]], tuple[str, ...]] = {}
_ACCEPTED: dict[tuple[Catalogue, str, str, Version], tuple[str, ...]] = {}


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
        example = [(k, v) for k, v in _example_props(cat, driver) if k != name]
        props = cat.properties(driver, version)
        ok = []
        if name in props:
            for value in property_values(props[name], SUITE_SPREAD, edges=False):
                config = Config((DeviceSpec(driver, "probe", None, (*example, (name, value))),))
                try:
                    realize(config, version, catalogue=cat)
                except CompatlabError:
                    continue
                ok.append(value)
        _ACCEPTED[key] = tuple(ok)
    return _ACCEPTED[key]


def _common_visible(cat: Catalogue, driver: str, versions: tuple[Version, ...]) -> tuple[str, ...]:
    """Guest-visible properties of ``driver`` that exist in every one of ``versions``."""
    key = (cat, driver, versions)
    if key not in _VISIBLE:
        common = set.intersection(*(set(cat.properties(driver, v)) for v in versions))
        props = cat.properties(driver, min(versions))
        _VISIBLE[key] = tuple(
            sorted(n for n in common if props[n].guest_visible and n != "multifunction")
        )
    return _VISIBLE[key]


@st.composite
def valid_configs(
    draw: st.DrawFn,
    versions: Sequence[Version],
    *,
    catalogue: Catalogue | None = None,
    drivers: Sequence[str] | None = None,
    max_devices: int = 4,
) -> Config:
    """A config every one of ``versions`` accepts: devices that exist in the oldest,
    guest-visible properties that exist in all of them, values they all take, and
    a vCPU count (:func:`vcpu_counts`).

    Shrinks towards one device with only its required properties, automatic address,
    no vCPU count given.
    """
    cat = catalogue or active_catalogue()
    oldest = min(versions)
    choices = [
        d
        for d in (drivers or cat.devices(oldest))
        if all(cat.types[d].exists_in(v) for v in versions)
    ]
    assume(choices)
    n = draw(st.integers(1, max_devices))
    slots = draw(st.lists(st.integers(FIRST_SLOT, LAST_SLOT), min_size=n, max_size=n, unique=True))
    devices: list[DeviceSpec] = []
    for i in range(n):
        driver = draw(st.sampled_from(choices))
        visible = _common_visible(cat, driver, tuple(versions))
        chosen = (
            draw(st.lists(st.sampled_from(visible), unique=True, max_size=3)) if visible else []
        )
        pairs = required_pairs(cat, driver, oldest, i)
        taken = {name for name, _ in pairs}
        for name in chosen:
            values = accepted_values(cat, driver, name, tuple(versions))
            if name not in taken and values:
                pairs.append((name, draw(st.sampled_from(values))))
        addr = PciAddress(slots[i]) if draw(st.booleans()) else None
        devices.append(DeviceSpec(driver, f"dev{i}", addr, tuple(pairs)))
    # Drawn last, so that the devices drawn from a seed are what they were before.
    config = Config(tuple(devices), draw(vcpu_counts()))
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
