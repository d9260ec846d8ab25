"""The invariant registry: named, documented checks over generated inputs.

An invariant registers itself with ``@invariant(name, statement=…, arity=…)`` on
its check function; a duplicate name is an error at import time. ``arity`` is
how many versions a case spans: 1 (V), 2 (U ≤ V) or 3 (U ≤ V ≤ W, with V drawn
between the two ends the runner fixes). A check receives a :class:`Case` and the
:class:`System` under test and raises :class:`Violation` with a structured
:class:`Failure` when the invariant does not hold. Swapping a component of the
system (a resolver in which hints beat config, a builder that drops a
capability) is how the suite proves each invariant can fail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

from compatlab.config import Config, parse_device_string
from compatlab.errors import CatalogueError, CheckFailure
from compatlab.hints import Hints, decode, encode
from compatlab.realize import realize, realize_resolved
from compatlab.resolve import dump_hints, hints_of, resolve
from compatlab.versions import Version

if TYPE_CHECKING:
    from compatlab.catalogue import Catalogue


@dataclass(frozen=True)
class System:
    """The components an invariant exercises; tests replace one to break it."""

    resolve: Callable[..., Any] = resolve
    realize: Callable[..., Any] = realize
    realize_resolved: Callable[..., Any] = realize_resolved
    dump: Callable[..., Hints] = dump_hints
    hints_of: Callable[..., Hints] = hints_of
    encode: Callable[[Hints], bytes] = encode
    decode: Callable[[bytes], Hints] = decode
    #: Where a check reports what it saw but does not fail on (the binary gate:
    #: a config only the older binary refuses); the engine keeps these notes.
    note: Callable[[Failure], None] = lambda failure: None


@dataclass(frozen=True, slots=True)
class Case:
    """One generated input: the versions it spans, a config and whatever else the
    invariant draws (hints, guest writes, a property to touch)."""

    versions: tuple[Version, ...]
    config: Config
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Failure:
    """An invariant violation as data: what failed, where, and how to see it again."""

    invariant: str
    versions: tuple[str, ...]
    device: str | None
    detail: str
    offset: int | None = None
    expected: str | None = None
    actual: str | None = None
    config: tuple[str, ...] = ()
    driver: str | None = None
    #: The machine type the case ran on, when it is not one of ``versions`` (two
    #: real binaries compared on one machine type).
    machine: str | None = None
    #: The failing device's config-space bytes (hex) where the failure is seen, so
    #: that a report names the registers at ``offset`` without realizing anything.
    space: str | None = None
    #: The config's vCPU count (None: the config gives none, so one).
    vcpus: int | None = None

    def minimal_config(self) -> Config:
        """The failing config, devices and vCPU count."""
        return Config(tuple(parse_device_string(s) for s in self.config), self.vcpus)

    def options(self) -> list[str]:
        """The failing config as QEMU options (``-smp N``, ``-device …``)."""
        smp = [] if self.vcpus is None else [f"-smp {self.vcpus}"]
        return smp + [f"-device {s}" for s in self.config]

    @property
    def space_bytes(self) -> bytes | None:
        try:
            return bytes.fromhex(self.space) if self.space else None
        except ValueError:
            return None

    def to_json(self) -> dict[str, Any]:
        return {
            "invariant": self.invariant,
            "versions": list(self.versions),
            "device": self.device,
            "detail": self.detail,
            "offset": self.offset,
            "expected": self.expected,
            "actual": self.actual,
            "config": list(self.config),
            "driver": self.driver,
            "machine": self.machine,
            "space": self.space,
            "vcpus": self.vcpus,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Failure:
        """Inverse of :meth:`to_json`."""
        return cls(
            invariant=str(data["invariant"]),
            versions=tuple(data["versions"]),
            device=data.get("device"),
            detail=str(data["detail"]),
            offset=data.get("offset"),
            expected=data.get("expected"),
            actual=data.get("actual"),
            config=tuple(data.get("config", ())),
            driver=data.get("driver"),
            machine=data.get("machine"),
            space=data.get("space"),
            vcpus=data.get("vcpus"),
        )


class Violation(CheckFailure):
    """Raised by a check; carries the :class:`Failure`."""

    def __init__(self, failure: Failure) -> None:
        self.failure = failure
        super().__init__(f"{failure.invariant}: {failure.detail}")


Strategy = Callable[[tuple[Version, ...], "Scope"], st.SearchStrategy[Case]]
Check = Callable[[Case, System], None]
Examples = Callable[[tuple[Version, ...], "Scope"], list[Case]]
"""Cases an invariant always tries first, before generated ones."""
Applies = Callable[["Catalogue", tuple[Version, ...]], bool]
Recorded = Callable[[tuple[Version, ...], "Scope", Path], list[Case]]
"""Cases a real QEMU answered once, recorded under a captures folder
(``corpora/qemu``), each carrying its recorded answer: the evidence a real-QEMU
invariant checks when no installed binary answers for its versions."""
Destination = Callable[[Case, System], Mapping[str, Any]]
"""How an invariant loads the case on its upgraded version: the keyword arguments
of ``realize``/``resolve`` there (``hints=…`` or ``defaults_at=…``), built with the
system's own components."""


@dataclass(frozen=True, slots=True)
class Scope:
    """What a run is restricted to: device types (None: all). Configs are drawn so
    that every version of the case accepts them, or, with ``last_may_refuse``, every
    version but the newest: then the newest refusing one is a finding (the gate)."""

    drivers: tuple[str, ...] | None = None
    last_may_refuse: bool = False
    #: The two real binaries a case compares (by release, e.g. ``10.0``), and
    #: the machine types it is drawn on (the binary gate).
    binaries: tuple[str, str] | None = None
    machines: tuple[Version, ...] | None = None


@dataclass(frozen=True, slots=True)
class Invariant:
    name: str
    statement: str
    arity: int
    strategy: Strategy
    check: Check
    needs_qemu: bool = False
    destination: Destination | None = None
    examples: Examples | None = None
    #: Whether ``compatlab check`` runs it by default (the binary gate's invariant
    #: needs two binaries to be named, so it is run by the gate only).
    suite: bool = True
    #: Whether it has anything to check on a version tuple of a catalogue (None:
    #: always); the planner leaves the others out.
    applies: Applies | None = None
    #: The recorded cases that stand in for a live QEMU when none answers (None:
    #: without a binary the invariant has no evidence, and its task is skipped).
    recorded: Recorded | None = None

    def run(self, case: Case, system: System | None = None) -> None:
        self.check(case, system or System())

    def upgraded(self, case: Case, system: System | None = None) -> Mapping[str, Any] | None:
        """How this invariant loads ``case`` on its last version (None: it compares no
        upgraded destination with the source). The gate explains failures with it."""
        if self.destination is None:
            return None
        return self.destination(case, system or System())


_REGISTRY: dict[str, Invariant] = {}


def invariant(
    name: str,
    *,
    statement: str,
    arity: int,
    strategy: Strategy,
    needs_qemu: bool = False,
    destination: Destination | None = None,
    examples: Examples | None = None,
    suite: bool = True,
    applies: Applies | None = None,
    recorded: Recorded | None = None,
) -> Callable[[Check], Check]:
    """Register ``check`` as invariant ``name``; ``destination`` says how it loads a
    case on the upgraded version (see :meth:`Invariant.upgraded`), ``examples``
    which cases it tries first, ``suite`` whether ``check`` runs it by default,
    ``applies`` on which version tuples it has something to check, and
    ``recorded`` (for one with ``needs_qemu``) the recorded cases it checks instead
    when no QEMU answers."""

    def register(check: Check) -> Check:
        if name in _REGISTRY:
            raise CatalogueError(f"invariant {name!r} is registered twice")
        if arity not in (1, 2, 3):
            raise CatalogueError(f"invariant {name!r}: arity must be 1, 2 or 3")
        _REGISTRY[name] = Invariant(
            name,
            statement,
            arity,
            strategy,
            check,
            needs_qemu,
            destination,
            examples,
            suite,
            applies,
            recorded,
        )
        return check

    return register


def _every() -> Mapping[str, Invariant]:
    # Importing the modules registers the built-in invariants.
    from compatlab.invariants import binary, checks  # noqa: F401

    return _REGISTRY


def registered() -> Mapping[str, Invariant]:
    """The suite: every invariant ``check`` runs by default, in registration order."""
    return {name: inv for name, inv in _every().items() if inv.suite}


def get(name: str) -> Invariant:
    """Any registered invariant, by name (the suite's and the gate's own)."""
    from compatlab.errors import ConfigError, did_you_mean

    invariants = _every()
    if name not in invariants:
        raise ConfigError(f"unknown invariant {name!r}{did_you_mean(name, invariants)}")
    return invariants[name]


def in_suite(name: str) -> Invariant:
    """Invariant ``name``, which ``check`` may run (one outside the suite, such as the
    binary gate's, is run by its own command)."""
    from compatlab.errors import ConfigError

    inv = get(name)
    if not inv.suite:
        raise ConfigError(
            f"{inv.name} is the binary gate's invariant: run it with "
            "compatlab gate --baseline-binary A --candidate-binary B"
        )
    return inv


def fail(
    case: Case,
    name: str,
    detail: str,
    *,
    device: str | None = None,
    offset: int | None = None,
    expected: str | None = None,
    actual: str | None = None,
    driver: str | None = None,
    space: bytes | None = None,
) -> Violation:
    """A :class:`Violation` for ``case`` (raise it)."""
    return Violation(
        Failure(
            invariant=name,
            versions=tuple(str(v) for v in case.versions),
            device=device,
            detail=detail,
            offset=offset,
            expected=expected,
            actual=actual,
            config=tuple(case.config.device_strings()),
            driver=driver,
            space=None if space is None else space.hex(),
            vcpus=case.config.vcpus,
        )
    )
