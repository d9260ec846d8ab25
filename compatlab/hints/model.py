"""Compat hints as values: what an emulator version pinned for each device.

Hints are normalised on construction (entries sorted by identity, properties by
name), so two hint sets holding the same facts are equal and encode to the same
bytes. Besides the devices they record the machine-level inputs the dumping version
resolved device defaults with: the vCPU count, which an ``auto`` queue count
(virtio-blk's ``num-queues=65535``) follows, so that a reload with a config that does
not give it resolves ``auto`` as the dump did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from compatlab.catalogue.properties import Value
from compatlab.config import DEFAULT_VCPUS, MAX_VCPUS
from compatlab.versions import Version

HintValue = Value | None


@dataclass(frozen=True, slots=True)
class HintEntry:
    """One device as the dumping version resolved it: identity, driver, every property."""

    identity: str
    driver: str
    properties: tuple[tuple[str, HintValue], ...] = ()

    def __post_init__(self) -> None:
        names = [name for name, _ in self.properties]
        if len(set(names)) != len(names):
            raise ValueError(f"hint entry {self.identity!r} names a property twice")
        object.__setattr__(self, "properties", tuple(sorted(self.properties)))

    @property
    def props(self) -> dict[str, HintValue]:
        return dict(self.properties)


@dataclass(frozen=True, slots=True)
class Hints:
    """The hints one emulator version dumped for one config, with the vCPU count
    it ran it with."""

    version: Version
    entries: tuple[HintEntry, ...] = field(default_factory=tuple)
    vcpus: int = DEFAULT_VCPUS

    def __post_init__(self) -> None:
        if isinstance(self.vcpus, bool) or not 1 <= self.vcpus <= MAX_VCPUS:
            raise ValueError(f"hints hold vcpus={self.vcpus!r}, outside 1..{MAX_VCPUS}")
        ids = [e.identity for e in self.entries]
        if len(set(ids)) != len(ids):
            raise ValueError("hints hold two entries with the same identity")
        object.__setattr__(self, "entries", tuple(sorted(self.entries, key=lambda e: e.identity)))

    @classmethod
    def of(
        cls, version: Version, entries: Iterable[HintEntry], vcpus: int = DEFAULT_VCPUS
    ) -> Hints:
        return cls(version, tuple(entries), vcpus)

    def by_identity(self) -> Mapping[str, HintEntry]:
        return {e.identity: e for e in self.entries}

    def to_json(self) -> dict[str, object]:
        return {
            "version": str(self.version),
            "machine": {"vcpus": self.vcpus},
            "devices": [
                {"identity": e.identity, "driver": e.driver, "properties": dict(e.properties)}
                for e in self.entries
            ],
        }
