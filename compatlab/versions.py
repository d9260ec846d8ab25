"""Emulator versions: ordered release names such as ``2.12`` and ``10.0``.

The built-in catalogue covers every version that has an i440fx machine type in
one of the installable binaries, QEMU 5.2, 7.2, 10.0 and 11.1 (DESIGN.md §1):
1.4–1.7, 2.0–2.12, 3.0–3.1, 4.0–4.2, 5.0–5.2, 6.0–6.2, 7.0–7.2, 8.0–8.2, 9.0–9.2,
10.0–10.2 and 11.0–11.1 (42 versions).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import total_ordering

from compatlab.errors import UnknownVersionError

_VERSION_RE = re.compile(r"(\d{1,3})\.(\d{1,3})")


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """A release name compared numerically, part by part (``2.9 < 2.12``)."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``"MAJOR.MINOR"``; the inverse of ``str()``. Any version, known or not."""
        match = _VERSION_RE.fullmatch(text.strip())
        if match is None:
            raise UnknownVersionError(text, (str(v) for v in active_versions()))
        return cls(int(match.group(1)), int(match.group(2)))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def machine_type(self) -> str:
        """QEMU's versioned machine type for this version (the built-in compat hint)."""
        return f"pc-i440fx-{self}"


def _series() -> tuple[Version, ...]:
    last_minor = {1: 7, 2: 12, 3: 1, 4: 2, 5: 2, 6: 2, 7: 2, 8: 2, 9: 2, 10: 2, 11: 1}
    first_minor = {1: 4}
    return tuple(
        Version(major, minor)
        for major, last in last_minor.items()
        for minor in range(first_minor.get(major, 0), last + 1)
    )


ALL_VERSIONS: tuple[Version, ...] = _series()
OLDEST: Version = ALL_VERSIONS[0]
NEWEST: Version = ALL_VERSIONS[-1]

_ACTIVE: ContextVar[tuple[Version, ...]] = ContextVar("compatlab_versions", default=ALL_VERSIONS)
# The same versions as a set, for known_version's membership test on every resolve.
_ACTIVE_SET: ContextVar[frozenset[Version]] = ContextVar(
    "compatlab_version_set", default=frozenset(ALL_VERSIONS)
)


def active_versions() -> tuple[Version, ...]:
    """The versions of the catalogue in use: the built-in 42 unless a candidate
    catalogue is active (see :func:`compatlab.catalogue.using_catalogue`)."""
    return _ACTIVE.get()


def newest() -> Version:
    """The newest version of the catalogue in use (the default everywhere)."""
    return _ACTIVE.get()[-1]


@contextmanager
def using_versions(versions: tuple[Version, ...]) -> Iterator[None]:
    """Make ``versions`` (ascending, non-empty) the known versions inside the block."""
    if not versions or list(versions) != sorted(set(versions)):
        raise ValueError("versions must be ascending, distinct and non-empty")
    token = _ACTIVE.set(versions)
    set_token = _ACTIVE_SET.set(frozenset(versions))
    try:
        yield
    finally:
        _ACTIVE_SET.reset(set_token)
        _ACTIVE.reset(token)


def known_version(text: str | Version) -> Version:
    """Parse a version and insist that the catalogue in use covers it."""
    version = text if isinstance(text, Version) else Version.parse(text)
    if version not in _ACTIVE_SET.get():
        raise UnknownVersionError(str(text), (str(v) for v in _ACTIVE.get()))
    return version


def version_range(spec: str) -> tuple[Version, ...]:
    """Versions selected by ``A..B`` (inclusive; either end may be omitted) or ``A,B,C``."""
    known = _ACTIVE.get()
    if ".." in spec:
        low_text, _, high_text = spec.partition("..")
        low = known_version(low_text) if low_text else known[0]
        high = known_version(high_text) if high_text else known[-1]
        return tuple(v for v in known if low <= v <= high)
    return tuple(sorted({known_version(part) for part in spec.split(",") if part.strip()}))
