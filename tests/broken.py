"""Deliberately broken components, to prove that every invariant can fail.

Each function below is a small, plausible bug in one component of the
:class:`~compatlab.invariants.registry.System` (the resolver, a dump, the codec,
realization, the guest-write model). ``test_invariants.py`` swaps one into
a system and checks that the invariant it targets raises a
:class:`~compatlab.invariants.registry.Violation` with a minimal counterexample.
:data:`BROKEN` maps each invariant to the system that breaks it.

Test code: it is not part of the installed package.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from compatlab.catalogue import active_catalogue
from compatlab.config import Config, DeviceSpec
from compatlab.hints import Hints, decode, encode
from compatlab.hints.model import HintEntry
from compatlab.invariants.registry import System
from compatlab.pci import regs
from compatlab.pci.config_space import ConfigSpace
from compatlab.realize import Realized, realize, realize_resolved
from compatlab.resolve import (
    IgnoredHint,
    IgnoredReason,
    Resolved,
    ResolvedConfig,
    ResolvedDevice,
    Source,
    assign_addresses,
    hints_of,
    resolve,
)
from compatlab.versions import Version, active_versions

Resolver = Callable[..., ResolvedConfig]
Realizer = Callable[..., Realized]


def with_resolver(resolver: Resolver) -> System:
    """A system whose every path goes through ``resolver``: resolving, realizing
    and dumping (the real ``realize`` and ``dump_hints`` call the real resolver,
    so replacing only ``System.resolve`` would leave them intact)."""

    def realize_with(config: Config, version: Version | str, **kw: Any) -> Realized:
        return realize_resolved(resolver(config, version, **kw))

    def dump_with(config: Config, version: Version | str) -> Hints:
        return hints_of(resolver(config, version))

    return System(resolve=resolver, realize=realize_with, dump=dump_with)


def _map_devices(
    resolved: ResolvedConfig, change: Callable[[int, ResolvedDevice], Mapping[str, Resolved]]
) -> ResolvedConfig:
    devices = tuple(
        replace(dev, properties=dict(change(i, dev))) for i, dev in enumerate(resolved.devices)
    )
    return replace(resolved, devices=devices)


# -- resolvers --------------------------------------------------------------------------


def resolve_hints_beat_config(
    config: Config, version: Version | str, *, hints: Hints | None = None, **kw: Any
) -> ResolvedConfig:
    """Rules 1 and 2 swapped: a hinted value wins over the config's explicit one."""
    resolved = resolve(config, version, hints=hints, **kw)
    entries = hints.by_identity() if hints is not None else {}

    def change(_: int, dev: ResolvedDevice) -> Mapping[str, Resolved]:
        entry = entries.get(dev.identity)
        hinted = entry.props if entry is not None and entry.driver == dev.driver else {}
        return {
            name: Resolved(hinted[name], Source.HINT)
            if r.source is Source.CONFIG and name in hinted
            else r
            for name, r in dev.properties.items()
        }

    return _map_devices(resolved, change)


def _oldest_offered(version: Version | str) -> Version:
    """The oldest machine type ``version`` still offers (its oldest defaults)."""
    from compatlab.catalogue import active_catalogue
    from compatlab.versions import known_version

    return active_catalogue().oldest_machine(known_version(version))


def resolve_unhinted_as_oldest(
    config: Config, version: Version | str, *, hints: Hints | None = None, **kw: Any
) -> ResolvedConfig:
    """Given hints, a device they do not mention takes the oldest catalogue
    machine type V offers' values (as if its hints were lost, not absent) instead of
    V's defaults."""
    resolved = resolve(config, version, hints=hints, **kw)
    if hints is None:
        return resolved
    ancient = resolve(config, version, defaults_at=_oldest_offered(version))
    known = hints.by_identity()
    devices = tuple(
        dev if dev.identity in known else old
        for dev, old in zip(resolved.devices, ancient.devices, strict=True)
    )
    return replace(resolved, devices=devices)


def resolve_matches_absent_hints_by_driver(
    config: Config, version: Version | str, *, hints: Hints | None = None, **kw: Any
) -> ResolvedConfig:
    """A hint entry for a device that is not in the config is applied to every device
    of the same driver (matching on driver when the identity finds nothing)."""
    resolved = resolve(config, version, hints=hints, **kw)
    if hints is None:
        return resolved
    present = {dev.identity for dev in resolved.devices}
    strays = [e for e in hints.entries if e.identity not in present]

    def change(_: int, dev: ResolvedDevice) -> Mapping[str, Resolved]:
        props = dict(dev.properties)
        for entry in strays:
            if entry.driver == dev.driver:
                props.update(
                    (name, Resolved(value, Source.HINT))
                    for name, value in entry.properties
                    if name in props
                )
        return props

    return _map_devices(resolved, change)


def _identities(config: Config) -> dict[str, str]:
    """Each device's identity for hint matching, and its driver."""
    return {
        spec.id if spec.id is not None else str(addr): spec.driver
        for spec, addr in zip(config.devices, assign_addresses(config), strict=True)
    }


def _resolve_as_if(
    config: Config, version: Version | str, hints: Hints | None, used: Hints | None, **kw: Any
) -> ResolvedConfig:
    """Resolved with the ``used`` hints, but reporting what the real resolver reports
    for ``hints``: a defect in what is used, not in what is said."""
    said = resolve(config, version, hints=hints, **kw)
    return replace(resolve(config, version, hints=used, **kw), ignored_hints=said.ignored_hints)


def resolve_borrows_a_siblings_entry(
    config: Config, version: Version | str, *, hints: Hints | None = None, **kw: Any
) -> ResolvedConfig:
    """A device the hints do not name takes the entry of another device of the config
    with the same driver (matching on driver when the identity finds nothing)."""
    if hints is None:
        return resolve(config, version, **kw)
    present = _identities(config)
    entries = hints.by_identity()
    borrowed = [
        HintEntry(identity, lender.driver, lender.properties)
        for identity, driver in present.items()
        if identity not in entries
        for lender in [
            next((e for e in hints.entries if e.identity in present and e.driver == driver), None)
        ]
        if lender is not None
    ]
    used = Hints(hints.version, hints.entries + tuple(borrowed))
    return _resolve_as_if(config, version, hints, used, **kw)


def resolve_accepts_another_driver(
    config: Config, version: Version | str, *, hints: Hints | None = None, **kw: Any
) -> ResolvedConfig:
    """An entry whose driver differs from the config's is used anyway, for the
    properties the device has (and still reported as ignored)."""
    if hints is None:
        return resolve(config, version, **kw)
    present = _identities(config)
    used = Hints(
        hints.version,
        tuple(
            HintEntry(e.identity, present.get(e.identity, e.driver), e.properties)
            for e in hints.entries
        ),
    )
    return _resolve_as_if(config, version, hints, used, **kw)


def resolve_uses_no_entry(
    config: Config, version: Version | str, *, hints: Hints | None = None, **kw: Any
) -> ResolvedConfig:
    """Hints are read and checked (and what does not match is reported), but no
    entry is used: every device takes V's defaults."""
    return _resolve_as_if(config, version, hints, None, **kw)


def resolve_reports_nothing(
    config: Config, version: Version | str, *, hints: Hints | None = None, **kw: Any
) -> ResolvedConfig:
    """Ignored hints are ignored silently: nothing reported."""
    return replace(resolve(config, version, hints=hints, **kw), ignored_hints=())


def resolve_one_reason_for_all(
    config: Config, version: Version | str, *, hints: Hints | None = None, **kw: Any
) -> ResolvedConfig:
    """Every entry not used is reported as for a device not in the config, a replaced
    device as a removed one."""
    resolved = resolve(config, version, hints=hints, **kw)
    return replace(
        resolved,
        ignored_hints=tuple(
            IgnoredHint(h.identity, h.driver, IgnoredReason.NOT_IN_CONFIG, h.reason)
            if h.kind is IgnoredReason.DRIVER_DIFFERS
            else h
            for h in resolved.ignored_hints
        ),
    )


def resolve_without_history(
    config: Config, version: Version | str, *, hints: Hints | None = None, **kw: Any
) -> ResolvedConfig:
    """Rule 3 forgotten: a property the hints' version did not have takes V's default
    instead of its historical value for that version."""
    resolved = resolve(config, version, hints=hints, **kw)
    cat = active_catalogue()

    def change(_: int, dev: ResolvedDevice) -> Mapping[str, Resolved]:
        return {
            name: Resolved(cat.default(dev.driver, name, resolved.version), Source.DEFAULT)
            if r.source is Source.HISTORY
            else r
            for name, r in dev.properties.items()
        }

    return _map_devices(resolved, change)


def resolve_explicit_means_modern(
    config: Config, version: Version | str, *, hints: Hints | None = None, **kw: Any
) -> ResolvedConfig:
    """Unset confused with default: a device with any explicit property drops its
    version's compat values and takes the newest defaults for everything else."""
    resolved = resolve(config, version, hints=hints, **kw)
    cat = active_catalogue()
    newest = active_versions()[-1]

    def change(i: int, dev: ResolvedDevice) -> Mapping[str, Resolved]:
        if not config.devices[i].properties:
            return dev.properties
        return {
            name: r
            if r.source is Source.CONFIG
            else Resolved(
                cat.default(dev.driver, name, newest, as_of=resolved.version), Source.DEFAULT
            )
            for name, r in dev.properties.items()
        }

    return _map_devices(resolved, change)


def resolve_leaks_properties(
    config: Config, version: Version | str, *, hints: Hints | None = None, **kw: Any
) -> ResolvedConfig:
    """Explicit properties of a device carry over to later devices of the same driver
    (one dict of options per driver, shared by its instances). The ROM options and the
    boot index do not leak, so that the leak shows as changed bytes, not as a refused
    duplicate ROM or boot index."""
    shared: dict[str, dict[str, Any]] = {}
    leaky = []
    for spec in config.devices:
        options = shared.setdefault(spec.driver, {})
        merged = {**options, **spec.props}
        options.update((k, v) for k, v in spec.properties if k not in ("rombar", "romfile", "bootindex"))
        leaky.append(DeviceSpec(spec.driver, spec.id, spec.addr, tuple(merged.items())))
    return resolve(Config(tuple(leaky), config.vcpus), version, hints=hints, **kw)


# -- dumps ------------------------------------------------------------------------------


def dump_from_oldest_era(config: Config, version: Version | str) -> Hints:
    """Hints labelled with the dumping version that hold the values of the oldest
    machine type it offers (the machine type's defaults confused with the emulator's)."""
    return hints_of(resolve(config, version, defaults_at=_oldest_offered(version)))


def hints_of_forgets_history(resolved: ResolvedConfig) -> Hints:
    """A re-dump that writes only what it resolved from config, hints or defaults,
    forgetting the properties it took from history."""
    return Hints(
        resolved.version,
        tuple(
            HintEntry(
                dev.identity,
                dev.driver,
                tuple(
                    (name, r.value)
                    for name, r in dev.properties.items()
                    if r.source is not Source.HISTORY
                ),
            )
            for dev in resolved.devices
        ),
        resolved.vcpu_count,
    )


# -- codecs -----------------------------------------------------------------------------

_FLAGS_OFFSET = 10  # magic (8) · format u16 · flags u16
_calls = itertools.count()


def encode_nondeterministic(hints: Hints) -> bytes:
    """Every call writes a different flags word (a counter), CRC kept valid."""
    blob = bytearray(encode(hints)[:-4])
    struct.pack_into("<H", blob, _FLAGS_OFFSET, next(_calls) & 0xFFFF)
    return bytes(blob) + struct.pack("<I", zlib.crc32(blob))


def decode_drops_last_property(blob: bytes) -> Hints:
    """Decodes every device but loses its last property (an off-by-one count)."""
    hints = decode(blob)
    return Hints(
        hints.version,
        tuple(HintEntry(e.identity, e.driver, e.properties[:-1]) for e in hints.entries),
        hints.vcpus,
    )


# -- realization and the guest-write model ----------------------------------------------


def _map_spaces(realizer: Realizer, change: Callable[[ConfigSpace], ConfigSpace]) -> Realizer:
    def realize_changed(config: Config, version: Version | str, **kw: Any) -> Realized:
        realized = realizer(config, version, **kw)
        return replace(
            realized,
            devices=tuple(replace(d, space=change(d.space)) for d in realized.devices),
        )

    return realize_changed


def _on_destination(change: Callable[[ConfigSpace], ConfigSpace]) -> Realizer:
    """``change`` applied only when hints are loaded (the upgraded destination)."""
    changed = _map_spaces(realize, change)

    def realize_destination(config: Config, version: Version | str, **kw: Any) -> Realized:
        return (changed if kw.get("hints") is not None else realize)(config, version, **kw)

    return realize_destination


def _drop_capability_list(space: ConfigSpace) -> ConfigSpace:
    """Unlinks every capability (pointer 0x34 zeroed) but leaves the status bit set."""
    config = bytearray(space.config)
    config[regs.CAPABILITY_LIST] = 0
    return replace(space, config=bytes(config))


def _bars_read_only(space: ConfigSpace) -> ConfigSpace:
    """BAR address bits lose their wmask (still checked by cmask)."""
    wmask = bytearray(space.wmask)
    start, end = regs.bar_offset(0), regs.bar_offset(regs.NUM_BARS - 1) + 4
    wmask[start:end] = bytes(end - start)
    return replace(space, wmask=bytes(wmask))


def _bump_revision(space: ConfigSpace) -> ConfigSpace:
    """Revision ID off by one."""
    config = bytearray(space.config)
    config[regs.REVISION_ID] = (config[regs.REVISION_ID] + 1) & 0xFF
    return replace(space, config=bytes(config))


@dataclass(frozen=True, slots=True)
class WmaskBlindSpace(ConfigSpace):
    """A guest-write model that ignores ``wmask`` and ``w1cmask``: every written
    byte lands as written, read-only registers included."""

    def write(self, offset: int, value: int, width: int = 4) -> ConfigSpace:
        config = bytearray(self.config)
        config[offset : offset + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(
            width, "little"
        )
        return WmaskBlindSpace(bytes(config), self.wmask, self.w1cmask, self.cmask)


def _wmask_blind(space: ConfigSpace) -> ConfigSpace:
    return WmaskBlindSpace(space.config, space.wmask, space.w1cmask, space.cmask)


realize_drops_capability_list: Realizer = _map_spaces(realize, _drop_capability_list)
realize_dst_bars_read_only: Realizer = _on_destination(_bars_read_only)
realize_dst_ignores_wmask: Realizer = _on_destination(_wmask_blind)
realize_bumps_revision: Realizer = _map_spaces(realize, _bump_revision)


def resolve_ignores_machine_type(
    config: Config, version: Version | str, *, defaults_at: Version | str | None = None, **kw: Any
) -> ResolvedConfig:
    """A machine type that pins nothing: unset properties take V's own defaults."""
    return resolve(config, version, **kw)


BROKEN: Mapping[str, System] = {
    "config-overrides-hints": with_resolver(resolve_hints_beat_config),
    "no-hint-means-default": with_resolver(resolve_unhinted_as_oldest),
    "absent-device-hints-ignored": with_resolver(resolve_matches_absent_hints_by_driver),
    "same-version-round-trip": System(dump=dump_from_oldest_era),
    "upgrade-round-trip": with_resolver(resolve_without_history),
    "upgrade-chain": System(hints_of=hints_of_forgets_history),
    "machine-type-upgrade": with_resolver(resolve_ignores_machine_type),
    "hints-codec-round-trip": System(encode=encode_nondeterministic),
    "config-space-well-formed": System(realize=realize_drops_capability_list),
    "migration-load-accepts": System(realize=realize_dst_bars_read_only),
    "explicit-default-is-neutral": with_resolver(resolve_explicit_means_modern),
    "per-device-independence": with_resolver(resolve_leaks_properties),
    "guest-write-equivalence": System(realize=realize_dst_ignores_wmask),
    "model-matches-qemu": System(realize=realize_bumps_revision),
    "hint-matching": with_resolver(resolve_borrows_a_siblings_entry),
}
"""For each invariant, a system with one broken component that violates it."""
