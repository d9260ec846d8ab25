"""The core invariants of DESIGN.md §3, each a registered, documented check."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from compatlab.catalogue import active_catalogue
from compatlab.catalogue.model import POINTER_WITHOUT_STATUS
from compatlab.config import MAX_VCPUS, Config, DeviceSpec, parse_device_string
from compatlab.errors import CompatlabError, PropertyParseError
from compatlab.hints import HintEntry, Hints
from compatlab.invariants.registry import Case, Scope, System, fail, get, invariant
from compatlab.pci import regs
from compatlab.pci.config_space import ConfigSpace
from compatlab.resolve import (
    IgnoredReason,
    Resolved,
    ResolvedDevice,
    Source,
    assign_addresses,
    dump_hints,
)
from compatlab.versions import Version, active_versions
from strategies.hints import arbitrary_hints
from strategies.suite import (
    guest_writes,
    hint_variations,
    hinted_configs,
    valid_configs,
    with_sibling,
)

# -- shared helpers -----------------------------------------------------------------


def _configs(versions: tuple[Version, ...], scope: Scope) -> st.SearchStrategy[Config]:
    return valid_configs(
        versions[:-1] if scope.last_may_refuse else versions, drivers=scope.drivers
    )


def _cases(
    versions: tuple[Version, ...], scope: Scope, **extra: st.SearchStrategy[Any]
) -> st.SearchStrategy[Case]:
    return st.builds(
        lambda config, **kw: Case(versions, config, kw), _configs(versions, scope), **extra
    )


def _first_difference(a: ConfigSpace, b: ConfigSpace) -> tuple[str, int] | None:
    for name in ("config", "wmask", "w1cmask", "cmask"):
        left, right = getattr(a, name), getattr(b, name)
        if left != right:
            offset = next(i for i in range(256) if left[i] != right[i])
            return name, offset
    return None


def _same_hardware(case: Case, name: str, expected: Any, actual: Any, what: str) -> None:
    """Every device's bytes and masks agree between two realizations."""
    for exp, act in zip(expected.devices, actual.devices, strict=True):
        diff = _first_difference(exp.space, act.space)
        if diff is not None:
            array, offset = diff
            raise fail(
                case,
                name,
                f"{what}: {array} differs at {offset:#04x}",
                device=exp.device.identity,
                driver=exp.device.driver,
                offset=offset,
                expected=f"{getattr(exp.space, array)[offset]:02x}",
                actual=f"{getattr(act.space, array)[offset]:02x}",
                space=act.space.config,
            )


def _upgraded(case: Case, name: str, version: Version, realize: Any) -> Any:
    """Realize on the upgraded version; a refusal there (the source ran this config)
    is itself a violation: the guest cannot come back at all."""
    try:
        return realize()
    except CompatlabError as exc:
        first = case.config.devices[0] if case.config.devices else None
        raise fail(
            case,
            name,
            f"{version} refuses a config {case.versions[0]} ran: {exc}",
            device=None if first is None else (first.id or first.driver),
            driver=getattr(exc, "driver", None) or (None if first is None else first.driver),
        ) from None


# -- the invariants -----------------------------------------------------------------


def _twist(value: Any) -> Any:
    """A different value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return f"{value}x" if value is not None else "x"


def _conflicting_hints(config: Config, hints: Hints) -> Hints:
    """``hints`` with every property the config sets holding another value, and
    another vCPU count if the config gives one."""
    explicit = {(d.id or ""): {name for name, _ in d.properties} for d in config.devices}
    vcpus = hints.vcpus if config.vcpus is None else config.vcpus % MAX_VCPUS + 1
    return Hints(
        hints.version,
        tuple(
            HintEntry(
                e.identity,
                e.driver,
                tuple(
                    (n, _twist(v) if n in explicit.get(e.identity, ()) else v)
                    for n, v in e.properties
                ),
            )
            for e in hints.entries
        ),
        vcpus,
    )


@st.composite
def _override_cases(draw: st.DrawFn, versions: tuple[Version, ...], scope: Scope) -> Case:
    """A config, and hints as a VM manager may hand them back (dumped on the older
    version, then made partial, padded with absent devices or given a mismatched
    driver) in which every property the config sets holds another value."""
    config = draw(_configs(versions, scope))
    dumped = _conflicting_hints(config, dump_hints(config, versions[0]))
    return Case(versions, config, {"hints": draw(hint_variations(dumped, config))})


@invariant(
    "config-overrides-hints",
    statement="every property set in C resolves to C's value, whatever H holds",
    arity=2,
    strategy=lambda versions, scope: _override_cases(versions, scope),
)
def config_overrides_hints(case: Case, system: System) -> None:
    _, new = case.versions
    resolved = system.resolve(case.config, new, hints=case.extra["hints"])
    given = case.config.vcpus
    if given is not None and (resolved.vcpus.value, resolved.vcpus.source) != (
        given,
        Source.CONFIG,
    ):
        raise fail(
            case,
            "config-overrides-hints",
            f"vcpus={given} resolved to {resolved.vcpus.value!r} ({resolved.vcpus.source})",
            expected=repr(given),
            actual=repr(resolved.vcpus.value),
        )
    cat = active_catalogue()
    for spec, dev in zip(case.config.devices, resolved.devices, strict=True):
        for name, raw in spec.properties:
            want = cat.parse_value(spec.driver, name, raw, new)
            got = dev.properties[name]
            if got.value != want or got.source is not Source.CONFIG:
                raise fail(
                    case,
                    "config-overrides-hints",
                    f"{name}={raw} resolved to {got.value!r} ({got.source})",
                    device=dev.identity,
                    driver=dev.driver,
                    expected=repr(want),
                    actual=repr(got.value),
                )


@invariant(
    "no-hint-means-default",
    statement="a device with no hint entry resolves every unset property to V's default; "
    "realize(V, C, ∅) = realize(V, C)",
    arity=1,
    strategy=_cases,
)
def no_hint_means_default(case: Case, system: System) -> None:
    (version,) = case.versions
    plain = system.realize(case.config, version)
    empty = system.realize(case.config, version, hints=Hints(version))
    _same_hardware(case, "no-hint-means-default", plain, empty, "with empty hints")
    resolved = system.resolve(case.config, version, hints=Hints(version))
    for dev in resolved.devices:
        for name, r in dev.properties.items():
            if r.source not in (Source.CONFIG, Source.DEFAULT):
                raise fail(
                    case,
                    "no-hint-means-default",
                    f"{name} came from {r.source} with no hint entry",
                    device=dev.identity,
                    driver=dev.driver,
                )


@invariant(
    "absent-device-hints-ignored",
    statement="adding hint entries for devices not in C changes nothing",
    arity=2,
    strategy=lambda versions, scope: _cases(
        versions, scope, absent=valid_configs(versions[:1], drivers=scope.drivers, max_devices=3)
    ),
)
def absent_device_hints_ignored(case: Case, system: System) -> None:
    old, new = case.versions
    hints = system.dump(case.config, old)
    # Other devices, of any type, as the old version dumped them: identities no
    # device of the config has.
    others = Config(
        tuple(
            DeviceSpec(d.driver, f"absent-{k}", d.addr, d.properties)
            for k, d in enumerate(case.extra["absent"].devices)
        )
    )
    extra = system.dump(others, old).entries
    padded = Hints(hints.version, hints.entries + extra, hints.vcpus)
    base = system.realize(case.config, new, hints=hints)
    more = system.realize(case.config, new, hints=padded)
    _same_hardware(case, "absent-device-hints-ignored", base, more, "with hints for absent devices")
    reported = {h.identity for h in more.ignored_hints}
    missing = {e.identity for e in extra} - reported
    if missing:
        raise fail(
            case, "absent-device-hints-ignored", f"not reported as ignored: {sorted(missing)}"
        )


@st.composite
def _matching_cases(draw: st.DrawFn, versions: tuple[Version, ...], scope: Scope) -> Case:
    """A config (some devices known by their address) with hints dumped on U and made
    partial, padded and mismatched, and perhaps one more device of a driver the
    config has, which the hints never saw."""
    valid_on = versions[:-1] if scope.last_may_refuse else versions
    config, hints = draw(hinted_configs(valid_on, drivers=scope.drivers))
    return Case(versions, draw(with_sibling(config, valid_on)), {"hints": hints})


def _shown(r: Resolved | None) -> str:
    return "absent" if r is None else f"{r.value!r} ({r.source})"


def _uses_its_entry(case: Case, spec: DeviceSpec, dev: ResolvedDevice, entry: HintEntry) -> None:
    """Rules 2 and 3 for a device with its own entry: every property C leaves unset
    takes the entry's value, or, where the entry has none or one the property can no
    longer hold, its history at the entry's version (never V's default)."""
    (_, new) = case.versions
    cat = active_catalogue()
    props = cat.properties(dev.driver, new)
    history = cat.all_values_at(dev.driver, case.extra["hints"].version, as_of=new)
    explicit = spec.props
    hinted = entry.props
    for name, r in dev.properties.items():
        if name in explicit:
            continue
        want = Resolved(history.get(name), Source.HISTORY)
        if name in hinted:
            raw = hinted[name]
            # A value that no longer fits keeps its history (and is reported).
            with contextlib.suppress(PropertyParseError):
                want = Resolved(None if raw is None else props[name].type.parse(raw), Source.HINT)
        if r != want:
            raise fail(
                case,
                "hint-matching",
                f"{name} does not come from the device's own entry",
                device=dev.identity,
                driver=dev.driver,
                expected=_shown(want),
                actual=_shown(r),
            )


def _ignored_as_it_should(
    case: Case, hints: Hints, drivers: Mapping[str, str], own: Mapping[str, HintEntry], got: Any
) -> None:
    """Every entry not used is reported once, with its own reason, and nothing else is
    but a value of a used entry that no longer fits."""
    want = sorted(
        (e.identity, e.driver, IgnoredReason.NOT_IN_CONFIG)
        if e.identity not in drivers
        else (e.identity, e.driver, IgnoredReason.DRIVER_DIFFERS)
        for e in hints.entries
        if e.identity not in own
    )
    reported = sorted(
        (h.identity, h.driver, h.kind)
        for h in got.ignored_hints
        if h.kind is not IgnoredReason.VALUE_DOES_NOT_FIT
    )
    misfits = [
        (h.identity, h.driver, h.kind)
        for h in got.ignored_hints
        if h.kind is IgnoredReason.VALUE_DOES_NOT_FIT
        and (h.identity not in own or own[h.identity].driver != h.driver)
    ]
    missing = list((Counter(want) - Counter(reported)).elements())
    wrong = list((Counter(reported) - Counter(want)).elements()) + misfits
    if not missing and not wrong:
        return
    ident, driver, kind = missing[0] if missing else wrong[0]
    said = (
        "not reported as" if missing else "reported again as" if wrong[0] in want else "reported as"
    )
    raise fail(
        case,
        "hint-matching",
        f"hint {ident} ({driver}) {said} {kind}",
        device=ident,
        driver=drivers.get(ident),
        expected=", ".join(f"{i} ({d}): {k}" for i, d, k in want) or "none",
        actual=", ".join(f"{i} ({d}): {k}" for i, d, k in reported) or "none",
    )


@invariant(
    "hint-matching",
    statement="a hint entry applies only to the device with its identity (id, else address) "
    "and driver: with partial hints a device without its own entry resolves as with no hints "
    "(never from another device's entry, even of its driver); entries for devices not in C "
    "change nothing and are each reported not-in-config; an entry whose driver differs from "
    "C's is not used and is reported driver-differs",
    arity=2,
    strategy=lambda versions, scope: _matching_cases(versions, scope),
)
def hint_matching(case: Case, system: System) -> None:
    _, new = case.versions
    name = "hint-matching"
    hints: Hints = case.extra["hints"]
    entries = hints.by_identity()
    specs = case.config.devices
    identities = [
        s.id if s.id is not None else str(a)
        for s, a in zip(specs, assign_addresses(case.config), strict=True)
    ]
    drivers = dict(zip(identities, (s.driver for s in specs), strict=True))
    own = {i: entries[i] for i, d in drivers.items() if i in entries and entries[i].driver == d}
    # Each device resolves as with no hints, or as with its own entry alone.
    loads: list[dict[str, Any]] = [{}, {"hints": Hints(hints.version, tuple(own.values()))}]
    what = ("with no hints", "with its own entry alone")
    given = system.resolve(case.config, new, hints=hints)
    wants = [system.resolve(case.config, new, **kw).devices for kw in loads]
    for k, (spec, ident, dev) in enumerate(zip(specs, identities, given.devices, strict=True)):
        entry = own.get(ident)
        mine = int(entry is not None)
        want = wants[mine][k]
        for prop in sorted(set(dev.properties) | set(want.properties)):
            if dev.properties.get(prop) != want.properties.get(prop):
                raise fail(
                    case,
                    name,
                    f"{prop} resolves otherwise than {what[mine]}",
                    device=ident,
                    driver=spec.driver,
                    expected=_shown(want.properties.get(prop)),
                    actual=_shown(dev.properties.get(prop)),
                )
        if entry is not None:
            _uses_its_entry(case, spec, dev, entry)
    realized = system.realize(case.config, new, hints=hints).devices
    spaces = [system.realize(case.config, new, **kw).devices for kw in loads]
    for k, (ident, got) in enumerate(zip(identities, realized, strict=True)):
        mine = int(ident in own)
        exp = spaces[mine][k]
        diff = _first_difference(exp.space, got.space)
        if diff is not None:
            array, offset = diff
            raise fail(
                case,
                name,
                f"{array} differs at {offset:#04x} from the device {what[mine]}",
                device=ident,
                driver=drivers[ident],
                offset=offset,
                expected=f"{getattr(exp.space, array)[offset]:02x}",
                actual=f"{getattr(got.space, array)[offset]:02x}",
                space=got.space.config,
            )
    _ignored_as_it_should(case, hints, drivers, own, given)


@invariant(
    "same-version-round-trip",
    statement="realize(V, C, dump(V, C)) = realize(V, C)",
    arity=1,
    strategy=_cases,
)
def same_version_round_trip(case: Case, system: System) -> None:
    (version,) = case.versions
    hints = system.decode(system.encode(system.dump(case.config, version)))
    _same_hardware(
        case,
        "same-version-round-trip",
        system.realize(case.config, version),
        system.realize(case.config, version, hints=hints),
        "reloaded on the version that dumped",
    )


def _stored_hints(case: Case, system: System) -> dict[str, Any]:
    """The destination loads the hints the source dumped, through the file format."""
    return {"hints": system.decode(system.encode(system.dump(case.config, case.versions[0])))}


def _machine_type(case: Case, system: System) -> dict[str, Any]:
    """The destination applies the source's machine type (its defaults), no hints."""
    return {"defaults_at": case.versions[0]}


def _chained_hints(case: Case, system: System) -> dict[str, Any]:
    """The source's hints loaded on the middle version and dumped again there."""
    first, middle, _ = case.versions
    on_middle = system.resolve(case.config, middle, hints=system.dump(case.config, first))
    return {"hints": system.decode(system.encode(system.hints_of(on_middle)))}


def _round_trip(case: Case, system: System, name: str, what: str) -> None:
    """The source's realization equals the destination's, loaded as ``name`` loads it."""
    old, new = case.versions[0], case.versions[-1]
    load = get(name).upgraded(case, system) or {}
    _same_hardware(
        case,
        name,
        system.realize(case.config, old),
        _upgraded(case, name, new, lambda: system.realize(case.config, new, **load)),
        what,
    )


@invariant(
    "upgrade-round-trip",
    statement="for U ≤ V: realize(V, C, dump(U, C)) = realize(U, C), bytes and masks",
    arity=2,
    strategy=_cases,
    destination=_stored_hints,
)
def upgrade_round_trip(case: Case, system: System) -> None:
    old, new = case.versions
    _round_trip(case, system, "upgrade-round-trip", f"{old} hints loaded on {new}")


@invariant(
    "machine-type-upgrade",
    statement="for U ≤ V: V with U's defaults (QEMU V with machine type pc-i440fx-U, "
    "no stored hints) realizes C as U does",
    arity=2,
    strategy=_cases,
    destination=_machine_type,
    # QEMU deletes old machine types: where V no longer offers U's, no guest of U
    # can be restarted on V with it, and there is nothing to compare.
    applies=lambda cat, versions: cat.removal_of(versions[0], versions[-1]) is None,
)
def machine_type_upgrade(case: Case, system: System) -> None:
    old, new = case.versions
    _round_trip(case, system, "machine-type-upgrade", f"{new} with machine type pc-i440fx-{old}")


@invariant(
    "upgrade-chain",
    statement="for U ≤ V ≤ W: hints from U loaded on V, dumped again on V, loaded on W, "
    "give realize(U, C)",
    arity=3,
    strategy=_cases,
    destination=_chained_hints,
)
def upgrade_chain(case: Case, system: System) -> None:
    first, middle, last = case.versions
    _round_trip(case, system, "upgrade-chain", f"{first} → {middle} → {last}")


@invariant(
    "hints-codec-round-trip",
    statement="decode(encode(h)) = h; encoding is canonical and deterministic",
    arity=1,
    strategy=lambda versions, scope: st.builds(
        lambda h: Case(versions, Config(), {"hints": h}), arbitrary_hints()
    ),
)
def hints_codec_round_trip(case: Case, system: System) -> None:
    hints: Hints = case.extra["hints"]
    blob = system.encode(hints)
    if system.encode(hints) != blob:
        raise fail(case, "hints-codec-round-trip", "encoding is not deterministic")
    back = system.decode(blob)
    if back != hints:
        raise fail(case, "hints-codec-round-trip", f"decode(encode(h)) != h: {back!r}")
    if system.encode(back) != blob:
        raise fail(case, "hints-codec-round-trip", "re-encoding changed the bytes")


def _well_formed_problems(space: ConfigSpace, quirks: tuple[str, ...] = ()) -> list[str]:
    problems = []
    config = space.config
    status_caps = bool(config[regs.STATUS] & regs.STATUS_CAP_LIST)
    pointer = config[regs.CAPABILITY_LIST]
    if status_caps and not pointer:
        problems.append("status says a capability list exists but the pointer is 0")
    if not status_caps and pointer and POINTER_WITHOUT_STATUS not in quirks:
        problems.append(f"capability pointer {pointer:#04x} without the status bit")
    seen: set[int] = set()
    while status_caps and pointer:
        if pointer < regs.HEADER_SIZE or pointer > 0xFC:
            problems.append(f"capability at {pointer:#04x} is out of bounds")
            break
        if pointer & 3:
            problems.append(f"capability at {pointer:#04x} is not dword aligned")
            break
        if pointer in seen:
            problems.append(f"capability list loops at {pointer:#04x}")
            break
        seen.add(pointer)
        pointer = config[pointer + 1]
    if config[regs.HEADER_TYPE] & 0x7F:
        problems.append("not a type 0 header")
    region = 0
    while region < regs.NUM_BARS:
        bar = space.read(regs.bar_offset(region))
        if bar & regs.BASE_ADDRESS_SPACE_IO:
            if bar & 0x2:
                problems.append(f"I/O BAR {region} sets reserved bit 1")
        elif (bar >> 1) & 3 == 3:
            problems.append(f"BAR {region} has the reserved memory type 11b")
        elif bar & regs.BASE_ADDRESS_MEM_TYPE_64:
            if region == regs.NUM_BARS - 1:
                problems.append("a 64-bit BAR in BAR 5 has no upper half")
            region += 1
        region += 1
    return problems


@invariant(
    "config-space-well-formed",
    statement="header and capability list obey the PCI rules (in bounds, aligned, acyclic, "
    "terminated, status capability bit set iff a list exists, BAR flag bits consistent)",
    arity=1,
    strategy=_cases,
)
def config_space_well_formed(case: Case, system: System) -> None:
    (version,) = case.versions
    cat = active_catalogue()
    for dev in system.realize(case.config, version).devices:
        problems = _well_formed_problems(dev.space, cat.types[dev.device.driver].quirks)
        if problems:
            raise fail(
                case,
                "config-space-well-formed",
                "; ".join(problems),
                device=dev.device.identity,
                driver=dev.device.driver,
            )


def _apply_writes(space: ConfigSpace, writes: list[tuple[int, int, int]]) -> ConfigSpace:
    for offset, width, value in writes:
        space = space.write(offset, value, width)
    return space


def _dumped_hints(case: Case, system: System) -> dict[str, Any]:
    """The destination loads the hints the source dumped (in memory, no file)."""
    return {"hints": system.dump(case.config, case.versions[0])}


def _source_and_upgraded(case: Case, system: System, name: str) -> Any:
    """Each device as realized on U, beside the same device on V loaded as ``name``
    loads it."""
    old, new = case.versions
    src = system.realize(case.config, old)
    load = get(name).upgraded(case, system) or {}
    dst = _upgraded(case, name, new, lambda: system.realize(case.config, new, **load))
    return zip(src.devices, dst.devices, strict=True)


@invariant(
    "migration-load-accepts",
    statement="the upgraded destination accepts the source's bytes under QEMU's load rule "
    "(src ^ dst) & cmask & ~wmask & ~w1cmask == 0 (destination masks)",
    arity=2,
    strategy=lambda versions, scope: _cases(versions, scope, writes=guest_writes()),
    destination=_dumped_hints,
)
def migration_load_accepts(case: Case, system: System) -> None:
    for s, d in _source_and_upgraded(case, system, "migration-load-accepts"):
        sent = _apply_writes(s.space, case.extra["writes"]).config
        sp = d.space
        for i in range(256):
            if (sent[i] ^ sp.config[i]) & sp.cmask[i] & ~sp.wmask[i] & ~sp.w1cmask[i] & 0xFF:
                raise fail(
                    case,
                    "migration-load-accepts",
                    f"destination refuses byte {i:#04x} of the migration stream",
                    device=s.device.identity,
                    driver=s.device.driver,
                    offset=i,
                    expected=f"{sp.config[i]:02x}",
                    actual=f"{sent[i]:02x}",
                    space=sp.config,
                )


@st.composite
def _neutral_cases(draw: st.DrawFn, versions: tuple[Version, ...], scope: Scope) -> Case:
    config = draw(_configs(versions, scope))
    index = draw(st.integers(0, len(config.devices) - 1))
    spec = config.devices[index]
    props = active_catalogue().properties(spec.driver, versions[0])
    visible = sorted(n for n, p in props.items() if p.guest_visible and n not in spec.props)
    name = draw(st.sampled_from(visible)) if visible else None
    return Case(versions, config, {"index": index, "property": name})


@invariant(
    "explicit-default-is-neutral",
    statement="setting a property to the value it would resolve to anyway changes nothing",
    arity=1,
    strategy=lambda versions, scope: _neutral_cases(versions, scope),
)
def explicit_default_is_neutral(case: Case, system: System) -> None:
    (version,) = case.versions
    name = case.extra["property"]
    if name is None:
        return
    index = case.extra["index"]
    resolved = system.resolve(case.config, version)
    value = resolved.devices[index].properties[name].value
    if value is None:
        return
    spec = case.config.devices[index]
    ptype = active_catalogue().properties(spec.driver, version)[name].type
    explicit = DeviceSpec(
        spec.driver, spec.id, spec.addr, (*spec.properties, (name, ptype.format(value)))
    )
    devices = list(case.config.devices)
    devices[index] = explicit
    what = f"with {name}={ptype.format(value)} set explicitly"
    implicit = system.realize(case.config, version)
    try:
        spelled_out = system.realize(Config(tuple(devices), case.config.vcpus), version)
    except CompatlabError as exc:
        # Spelling out the value it resolved to anyway made the config unrunnable.
        raise fail(
            case,
            "explicit-default-is-neutral",
            f"{what}: refused ({exc})",
            device=spec.id or spec.driver,
            driver=spec.driver,
        ) from None
    _same_hardware(case, "explicit-default-is-neutral", implicit, spelled_out, what)


@invariant(
    "per-device-independence",
    statement="hints, properties and order of one device never change another device's state",
    arity=2,
    strategy=_cases,
)
def per_device_independence(case: Case, system: System) -> None:
    old, new = case.versions
    pinned = Config(
        tuple(
            DeviceSpec(d.driver, d.id, a, d.properties)
            for d, a in zip(case.config.devices, assign_addresses(case.config), strict=True)
        ),
        case.config.vcpus,
    )
    hints = system.dump(pinned, old)
    together = system.realize(pinned, new, hints=hints)
    reordered = system.realize(
        Config(tuple(reversed(pinned.devices)), pinned.vcpus), new, hints=hints
    )
    by_id = {d.device.identity: d for d in reordered.devices}
    for dev, spec in zip(together.devices, pinned.devices, strict=True):
        alone = system.realize(Config((spec,), pinned.vcpus), new, hints=hints).devices[0]
        for other, what in ((alone, "alone"), (by_id[dev.device.identity], "in reverse order")):
            diff = _first_difference(dev.space, other.space)
            if diff is not None:
                raise fail(
                    case,
                    "per-device-independence",
                    f"{what}: {diff[0]} differs at {diff[1]:#04x}",
                    device=dev.device.identity,
                    driver=dev.device.driver,
                    offset=diff[1],
                )


@invariant(
    "guest-write-equivalence",
    statement="the same sequence of guest config writes on source and upgraded destination "
    "leaves identical bytes",
    arity=2,
    strategy=lambda versions, scope: _cases(versions, scope, writes=guest_writes()),
    destination=_dumped_hints,
)
def guest_write_equivalence(case: Case, system: System) -> None:
    for s, d in _source_and_upgraded(case, system, "guest-write-equivalence"):
        a = _apply_writes(s.space, case.extra["writes"]).config
        b = _apply_writes(d.space, case.extra["writes"]).config
        if a != b:
            offset = next(i for i in range(256) if a[i] != b[i])
            raise fail(
                case,
                "guest-write-equivalence",
                f"after {len(case.extra['writes'])} guest writes, byte {offset:#04x} differs",
                device=s.device.identity,
                driver=s.device.driver,
                offset=offset,
                expected=f"{a[offset]:02x}",
                actual=f"{b[offset]:02x}",
                space=d.space.config,
            )


def _recorded_cases(versions: tuple[Version, ...], scope: Scope, captures: Path) -> list[Case]:
    """Every capture recorded under ``captures`` on machine type V, by any binary the
    catalogue covers, of the scope's device types, that has bytes or a refusal to
    compare (a crash has none), as one case each (:func:`recorded_captures` leaves
    out a plain capture that a write-probe capture of the same config repeats)."""
    from compatlab.oracles.capture import recorded_captures

    (machine,) = versions
    known = active_versions()
    cases = []
    for where, record in recorded_captures(captures, machine):
        if record.fault is not None or Version.parse(record.binary) not in known:
            continue
        config = Config(tuple(parse_device_string(d) for d in record.devices))
        if scope.drivers is not None and any(d.driver not in scope.drivers for d in config.devices):
            continue
        cases.append(Case(versions, config, {"recorded": record, "source": where}))
    return cases


@invariant(
    "model-matches-qemu",
    statement="the model's bytes, and what guest writes of all-ones and zeros to every "
    "dword read back (its masks), equal a real QEMU's, under the mapping of DESIGN.md §2",
    arity=1,
    strategy=_cases,
    needs_qemu=True,
    recorded=_recorded_cases,
)
def model_matches_qemu(case: Case, system: System) -> None:
    """Live, the binary that answers for machine type V runs the config with a write
    probe; a recorded case carries what a binary did. Either way
    :func:`~compatlab.oracles.compare.check_record` compares bytes and probe."""
    from compatlab.oracles.compare import check_record

    record = case.extra.get("recorded")
    if record is not None:
        verdict = check_record(
            record, via_hints=True, realize_fn=system.realize, dump_fn=system.dump
        )
        if not verdict.applicable:
            # Not a config V could have dumped hints for: V's defaults play the
            # machine type instead, so that every recorded line is evidence.
            verdict = check_record(record, realize_fn=system.realize)
        where = f"QEMU {record.release} as recorded ({case.extra.get('source')})"
    else:
        record, where = _live_capture(case)
        verdict = check_record(
            record, via_hints=True, realize_fn=system.realize, dump_fn=system.dump
        )
    if not verdict.agrees:
        first = case.config.devices[0] if len(case.config.devices) == 1 else None
        raise fail(
            case,
            "model-matches-qemu",
            f"{where}: {verdict.detail}",
            device=None if first is None else (first.id or first.driver),
            driver=None if first is None else first.driver,
        )


def _live_capture(case: Case) -> tuple[Any, str]:
    """What the binary answering for machine type V does with the case's config,
    write probe included, and which binary that was."""
    from compatlab.errors import QemuNotFoundError
    from compatlab.oracles.capture import capture_config
    from compatlab.oracles.qemu import answering_binary

    (machine,) = case.versions
    binary = answering_binary(machine)
    if binary is None:
        raise QemuNotFoundError(
            f"no QEMU binary the catalogue covers offers {machine.machine_type}: "
            "run .ci/install-qemu or set COMPATLAB_QEMU"
        )
    return capture_config(binary, machine, case.config, probe=True), f"QEMU {binary.release}"
