"""Errors compatlab raises, and the exit codes they map to.

Every error compatlab raises on purpose derives from one root; the branch says
whose fault it is, and so the exit code the CLI gives (a one-line message either
way, never a traceback)::

    CompatlabError
    ├── InputError                   bad usage or bad input: exit 2
    │   ├── UnknownVersionError          a version that is not in the catalogue
    │   ├── ConfigError                  a configuration the emulator would refuse
    │   │   ├── UnknownDeviceError           a driver that does not exist (in that version)
    │   │   ├── UnknownPropertyError         a property the device does not have
    │   │   ├── PropertyValueError           a malformed or out-of-range value
    │   │   ├── PropertyParseError           a value text that does not parse (before
    │   │   │                                a device is known; callers add it)
    │   │   ├── AddressError                 a malformed PCI address or a slot clash
    │   │   ├── DeviceRealizeError           a combination the device refuses
    │   │   ├── CapabilitySpaceError         capabilities that do not fit config space
    │   │   └── MsiError                     an MSI or MSI-X vector count QEMU refuses
    │   ├── NothingToRunError            a selection that plans no run at all
    │   ├── HintsFormatError             a compat-hints file that cannot be decoded
    │   ├── HintsVersionError            hints dumped by a newer version (no downgrades)
    │   ├── CandidateError               a malformed candidate release file
    │   ├── CorpusError                  a findings file, failure-corpus entry or capture
    │   │                                corpus that cannot be read or is malformed
    │   ├── InputFileError (inputs)      a user file that is not a regular file, too
    │   │                                large, unreadable or not text
    │   └── QemuNotFoundError            no binary for the requested emulator version
    ├── OracleError                  a real QEMU that could not be run or read: exit 3
    ├── CheckFailure                 a verdict, raised inside a search, never to the CLI
    │   └── Violation (invariants.registry)  an invariant does not hold (two binaries
    │                                        disagreeing is ``binaries-agree``'s)
    └── DefectError                  a defect in compatlab itself: exit 3
        ├── CatalogueError               the built-in catalogue's data is inconsistent
        └── GateTaskError (gate.candidate)   a gate run that errored instead of giving
                                             a verdict

Errors that come from input are *data*: they keep the offending value (and, for
decoders, the byte offset and the raw bytes) so that a caller can show them.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, shared by every compatlab command."""

    OK = 0
    FAILED = 1
    USAGE_ERROR = 2
    INTERNAL_ERROR = 3


class CompatlabError(Exception):
    """Root of every error compatlab raises on purpose."""

    exit_code: ExitCode = ExitCode.INTERNAL_ERROR


class InputError(CompatlabError):
    """Bad usage or bad input: the user can fix it (exit 2)."""

    exit_code = ExitCode.USAGE_ERROR


class DefectError(CompatlabError):
    """A defect in compatlab itself, not in anything a user gave it (exit 3)."""


class CheckFailure(CompatlabError):
    """A verdict raised inside a search (an invariant that does not hold, binaries
    that disagree); the engine turns it into an outcome, so it never reaches the CLI."""

    exit_code = ExitCode.FAILED


class UnknownVersionError(InputError):
    def __init__(self, text: str, known: Iterable[str] = ()) -> None:
        self.text = text
        super().__init__(f"unknown emulator version {text!r}{did_you_mean(text, known)}")


class ConfigError(InputError):
    """A configuration the emulator would refuse."""


class UnknownDeviceError(ConfigError):
    def __init__(self, driver: str, known: Iterable[str] = (), *, detail: str = "") -> None:
        self.driver = driver
        suffix = detail or did_you_mean(driver, known)
        super().__init__(f"unknown device {driver!r}{suffix}")


class UnknownPropertyError(ConfigError):
    def __init__(
        self, driver: str, name: str, known: Iterable[str] = (), *, detail: str = ""
    ) -> None:
        self.driver = driver
        self.name = name
        suffix = detail or did_you_mean(name, known)
        super().__init__(f"{driver!r} has no property {name!r}{suffix}")


class PropertyValueError(ConfigError):
    def __init__(self, driver: str, name: str, value: str, reason: str) -> None:
        self.driver = driver
        self.name = name
        self.value = value
        super().__init__(f"{name}={value} is invalid for {driver}: {reason}")


class AddressError(ConfigError):
    """A malformed PCI address, or two devices on one slot and function."""


class DeviceRealizeError(ConfigError):
    """A combination of property values that the device refuses when realized."""

    def __init__(self, driver: str, device_id: str | None, reason: str) -> None:
        self.driver = driver
        self.device_id = device_id
        self.reason = reason
        where = f" (id {device_id!r})" if device_id else ""
        super().__init__(f"{driver}{where} cannot be realized: {reason}")


class PropertyParseError(ConfigError):
    """A property value text that does not parse; the caller knows the device and
    turns it into a :class:`PropertyValueError`."""


class CapabilitySpaceError(ConfigError):
    """Capabilities that do not fit the device's configuration space."""


class MsiError(ConfigError):
    """An MSI or MSI-X vector count QEMU refuses."""


class NothingToRunError(InputError):
    """A selection (versions, devices, invariants) that plans no run at all."""


class HintsFormatError(InputError):
    """A compat-hints blob that cannot be decoded; keeps the evidence."""

    def __init__(self, reason: str, *, offset: int | None = None, raw: bytes = b"") -> None:
        self.reason = reason
        self.offset = offset
        self.raw = raw
        where = f" at byte offset {offset}" if offset is not None else ""
        super().__init__(f"bad compat hints{where}: {reason}")


class HintsVersionError(InputError):
    """Hints dumped by a version newer than the one loading them."""


class CandidateError(InputError):
    """A candidate release file that is missing, unreadable or malformed."""


class CorpusError(InputError):
    """A findings file, failure-corpus entry or capture corpus that cannot be read, or
    whose content is not what its format says."""


class CatalogueError(DefectError):
    """The built-in catalogue's own data is inconsistent: a defect in compatlab."""


class OracleError(CompatlabError):
    """A real emulator could not be started, driven or read: no evidence, no verdict."""


class QemuNotFoundError(InputError):
    """No QEMU binary is available for the requested emulator version."""


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """Return "; did you mean 'x'?" for the closest known word, or an empty string."""
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
