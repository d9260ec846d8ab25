"""Errors compatlab raises, and the exit codes they map to.

Every error a user can cause derives from one root, so the CLI can turn it into
a one-line message and exit code 2::

    CompatlabError
    ├── UnknownVersionError      a version that is not in the catalogue
    ├── ConfigError              a configuration the emulator would refuse
    │   ├── UnknownDeviceError       a driver that does not exist (in that version)
    │   ├── UnknownPropertyError     a property the device does not have (in that version)
    │   ├── PropertyValueError       a malformed or out-of-range value
    │   ├── AddressError             a malformed PCI address or a slot clash
    │   └── DeviceRealizeError       a combination the device refuses at realize time
    ├── HintsFormatError         a compat-hints file that cannot be decoded
    ├── HintsVersionError        hints dumped by a newer version (no downgrades)
    ├── CatalogueError           inconsistent catalogue data (a defect, not user input)
    └── OracleError              a real QEMU that could not be run or read
        └── QemuNotFoundError        no binary for the requested version

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


class UnknownVersionError(CompatlabError):
    def __init__(self, text: str, known: Iterable[str] = ()) -> None:
        self.text = text
        super().__init__(f"unknown emulator version {text!r}{did_you_mean(text, known)}")


class ConfigError(CompatlabError):
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


class HintsFormatError(CompatlabError):
    """A compat-hints blob that cannot be decoded; keeps the evidence."""

    def __init__(self, reason: str, *, offset: int | None = None, raw: bytes = b"") -> None:
        self.reason = reason
        self.offset = offset
        self.raw = raw
        where = f" at byte offset {offset}" if offset is not None else ""
        super().__init__(f"bad compat hints{where}: {reason}")


class HintsVersionError(CompatlabError):
    """Hints dumped by a version newer than the one loading them."""


class CatalogueError(CompatlabError):
    """The catalogue's own data is inconsistent (a defect in compatlab or a candidate)."""


class OracleError(CompatlabError):
    """A real emulator could not be started, driven or read."""


class QemuNotFoundError(OracleError):
    """No QEMU binary is available for the requested emulator version."""


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """Return "; did you mean 'x'?" for the closest known word, or an empty string."""
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
