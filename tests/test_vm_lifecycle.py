"""A VM manager's life, as a Hypothesis state machine.

The manager creates a VM on version U, keeps compat hints next to its config
(dumped from the running emulator and stored through the file format), hot-adds
and removes devices, lets the guest write config space, and upgrades to newer
versions V (and W), restarting with the stored hints.

What it relies on, checked after every step: each device shows the hardware of
its *era* — the version it was first started on, kept as long as the hints that
the VM restarts with hold it — bytes and masks, guest writes included. So a device
present since before an upgrade (and dumped) still looks as it did on U; a device
added after an upgrade, or missing from the stored hints, gets the new version's
defaults; hints for devices that are gone are reported as ignored.

Device types QEMU changed without a compat property are left out (nvme in 6.0,
7.1 and 9.1; e1000e's Link Active in 6.0; the balloons' config size in 4.0 and
11.1; vmxnet3's old MSI offsets gone in 10.1; virtio-serial's emergency write
forced in 11.0: corpora/findings.toml), which tests/test_invariants.py covers;
here they would hide the manager's own defects.
"""

from __future__ import annotations

from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from compatlab.catalogue import builtin_catalogue
from compatlab.config import FIRST_SLOT, LAST_SLOT, Config, DeviceSpec, PciAddress
from compatlab.errors import CompatlabError
from compatlab.hints import Hints, decode, encode
from compatlab.pci.config_space import ConfigSpace
from compatlab.realize import realize
from compatlab.resolve import IgnoredHint, assign_addresses, hints_of, resolve
from compatlab.versions import ALL_VERSIONS, Version
from strategies.suite import guest_writes, ordered_versions, valid_configs

CATALOGUE = builtin_catalogue()
BROKEN_BY_QEMU = ("nvme", "e1000e", "vmxnet3", "virtio-balloon-pci", "virtio-serial-pci")
DRIVERS = tuple(
    d
    for d in CATALOGUE.concrete
    if not any(d == b or d.startswith(f"{b}-") for b in BROKEN_BY_QEMU)
)
MAX_DEVICES = 6
ARRAYS = ("config", "wmask", "w1cmask", "cmask")


def _alone(spec: DeviceSpec, version: Version) -> ConfigSpace:
    """The device as a fresh VM on ``version`` with no hints would show it."""
    return realize(Config((spec,)), version).devices[0].space


class VmLife(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.path: tuple[Version, ...] = ()  # U ≤ V ≤ W, the versions the VM goes through
        self.stage = 0
        self.specs: dict[str, DeviceSpec] = {}  # by id, in config order
        self.era: dict[str, Version] = {}
        self.running: dict[str, ConfigSpace] = {}  # what the guest sees now
        self.reference: dict[str, ConfigSpace] = {}  # the same device on its era
        self.boot_hints: Hints | None = None  # what the running emulator was started with
        self.stored: bytes | None = None  # the blob the manager keeps next to the config
        self.serial = 0

    # -- helpers ----------------------------------------------------------------------

    @property
    def version(self) -> Version:
        return self.path[self.stage]

    def config(self) -> Config:
        return Config(tuple(self.specs.values()))

    def _pin(self, drawn: DeviceSpec, addr: PciAddress) -> DeviceSpec:
        """As a manager records a device: a never-reused id, a fixed address, and
        backends of its own."""
        ident = f"vm{self.serial}"
        self.serial += 1
        props = CATALOGUE.properties(drawn.driver, self.version)
        pairs = tuple(
            (name, f"{value}-{ident}" if props[name].type.kind == "link" else value)
            for name, value in drawn.properties
        )
        return DeviceSpec(drawn.driver, ident, addr, pairs)

    def _boot(self, spec: DeviceSpec, space: ConfigSpace) -> None:
        assert spec.id is not None
        self.running[spec.id] = space
        self.reference[spec.id] = _alone(spec, self.era[spec.id])

    # -- rules ------------------------------------------------------------------------

    @initialize(path=ordered_versions(3), data=st.data())
    def create(self, path: tuple[Version, ...], data: st.DataObject) -> None:
        self.path = path
        drawn = data.draw(valid_configs(path, drivers=DRIVERS, max_devices=3))
        for spec, addr in zip(drawn.devices, assign_addresses(drawn), strict=True):
            pinned = self._pin(spec, addr)
            assert pinned.id is not None
            self.specs[pinned.id] = pinned
            self.era[pinned.id] = self.version
        note(f"created on {self.version}, path {[str(v) for v in path]}: {self.config()}")
        realized = realize(self.config(), self.version)
        for spec, dev in zip(self.specs.values(), realized.devices, strict=True):
            self._boot(spec, dev.space)

    @rule()
    def dump_hints(self) -> None:
        """Dump from the running emulator (its resolution, boot hints included) and
        store the blob."""
        resolved = resolve(self.config(), self.version, hints=self.boot_hints)
        self.stored = encode(hints_of(resolved))

    @precondition(lambda self: len(self.specs) < MAX_DEVICES)
    @rule(data=st.data())
    def add_device(self, data: st.DataObject) -> None:
        future = self.path[self.stage :]
        drawn = data.draw(valid_configs(future, drivers=DRIVERS, max_devices=1)).devices[0]
        taken = {spec.addr for spec in self.specs.values()}
        free = [s for s in range(FIRST_SLOT, LAST_SLOT + 1) if PciAddress(s) not in taken]
        spec = self._pin(drawn, PciAddress(data.draw(st.sampled_from(free))))
        candidate = Config((*self.specs.values(), spec))
        try:
            realized = realize(candidate, self.version, hints=self.boot_hints)
            for later in future[1:]:
                realize(candidate, later)
        except CompatlabError as exc:  # as QEMU would refuse it: a second ROM, …
            event(f"add refused: {type(exc).__name__}")
            return
        assert spec.id is not None
        self.specs[spec.id] = spec
        self.era[spec.id] = self.version
        self._boot(spec, realized.devices[-1].space)

    @precondition(lambda self: self.specs)
    @rule(data=st.data())
    def remove_device(self, data: st.DataObject) -> None:
        ident = data.draw(st.sampled_from(sorted(self.specs)))
        for table in (self.specs, self.era, self.running, self.reference):
            del table[ident]

    @precondition(lambda self: self.specs)
    @rule(data=st.data(), writes=guest_writes(max_writes=3))
    def guest_writes(self, data: st.DataObject, writes: list[tuple[int, int, int]]) -> None:
        ident = data.draw(st.sampled_from(sorted(self.specs)))
        for offset, width, value in writes:
            self.running[ident] = self.running[ident].write(offset, value, width)
            self.reference[ident] = self.reference[ident].write(offset, value, width)

    @precondition(lambda self: self.stage < len(self.path) - 1)
    @rule()
    def upgrade(self) -> None:
        """Restart on the next version with the stored hints: devices they hold keep
        their era, the others start over on the new version."""
        self.stage += 1
        hints = None if self.stored is None else decode(self.stored)
        realized = realize(self.config(), self.version, hints=hints)
        hinted = set() if hints is None else set(hints.by_identity())
        for spec, dev in zip(self.specs.values(), realized.devices, strict=True):
            assert spec.id is not None
            if spec.id not in hinted:
                self.era[spec.id] = self.version
            self._boot(spec, dev.space)
        self.boot_hints = hints
        self._check_ignored(hints, realized.ignored_hints)

    # -- invariants --------------------------------------------------------------------

    def _check_ignored(self, hints: Hints | None, ignored: tuple[IgnoredHint, ...]) -> None:
        if hints is None:
            return
        gone = set(hints.by_identity()) - set(self.specs)
        reported = {h.identity for h in ignored if h.identity not in self.specs}
        assert reported == gone, f"hints for removed devices {sorted(gone)}: reported {reported}"

    @invariant()
    def every_device_shows_its_era(self) -> None:
        for ident, spec in self.specs.items():
            running, reference = self.running[ident], self.reference[ident]
            for array in ARRAYS:
                got, want = getattr(running, array), getattr(reference, array)
                if got != want:
                    offset = next(i for i in range(len(want)) if got[i] != want[i])
                    raise AssertionError(
                        f"{spec.to_device_string()} on {self.version} (era {self.era[ident]}): "
                        f"{array}[{offset:#04x}] is {got[offset]:02x}, "
                        f"{self.era[ident]} has {want[offset]:02x}"
                    )

    @invariant()
    def stored_hints_reload(self) -> None:
        """The stored blob is canonical, loads on the current version, and its entries
        for removed devices are reported as ignored."""
        if self.stored is None:
            return
        hints = decode(self.stored)
        assert encode(hints) == self.stored
        assert hints.version <= self.version
        assert hints.version in ALL_VERSIONS
        realized = realize(self.config(), self.version, hints=hints)
        self._check_ignored(hints, realized.ignored_hints)


VmLife.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestVmLife = VmLife.TestCase
