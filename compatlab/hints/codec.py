"""The compat-hints file format: encode and decode (spec: docs/hints-format.md).

A savevm-like binary blob, little-endian throughout::

    magic "CLHINTS\\x1a" · format u16 · flags u16 · version major u16 · minor u16
    · section count u32 · sections · CRC-32 of everything before it (u32)

Each section is ``tag u8 · body length u32 · body``. A device section (0x01) holds
``identity str · driver str · property count u16 · properties``; a machine section
(0x02, optional, first) holds ``property count u16 · properties``: the machine-level
inputs that differ from their default (``vcpus``, when not 1). A property is
``name str · type u8 · value`` and a ``str`` is ``length u16 · UTF-8``.

Files written before the machine section existed have none, which says what they
recorded: one vCPU, the only machine compatlab modelled then. So the format version
stays 1: every such file decodes as before and re-encodes to itself, a file dumped
with one vCPU is the same bytes as before, and a decoder that predates the section
refuses a file that has one (an unknown section type) instead of loading it as if
it held one vCPU.

Decoding is bounded: the file size is capped, every declared length and count is
checked against the bytes that remain before anything is read or allocated, and
nothing recurses. Every failure is a :class:`HintsFormatError` naming the byte
offset. Encoding is canonical: sections sorted by identity, properties by name,
integers in one width; the decoder refuses anything else, so
``encode(decode(b)) == b`` for every ``b`` it accepts.
"""

from __future__ import annotations

import struct
import zlib

from compatlab.config import DEFAULT_VCPUS, MAX_DEVICES, MAX_VCPUS
from compatlab.errors import HintsFormatError
from compatlab.hints.model import HintEntry, Hints, HintValue
from compatlab.versions import Version

MAGIC = b"CLHINTS\x1a"
FORMAT_VERSION = 1
MAX_SIZE = 16 * 1024 * 1024
MAX_SECTIONS = MAX_DEVICES + 1  # a machine section and one per device (at most 240)
MAX_PROPERTIES = 4096

SECTION_DEVICE = 0x01
SECTION_MACHINE = 0x02
#: The machine-level inputs a machine section may hold, with their defaults (left out).
MACHINE_DEFAULTS = {"vcpus": DEFAULT_VCPUS}

T_UNSET = 0x00
T_FALSE = 0x01
T_TRUE = 0x02
T_UINT = 0x03
T_NINT = 0x04
T_STR = 0x05

_HEADER = struct.Struct("<8sHHHHI")
_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_SECTION_HEAD = struct.Struct("<BI")
_MIN_SECTION = _SECTION_HEAD.size + 2 + 2 + 2


# -- encode ---------------------------------------------------------------------


def _str(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError(f"string of {len(raw)} bytes is too long for compat hints")
    return _U16.pack(len(raw)) + raw


def _value(value: HintValue) -> bytes:
    if value is None:
        return _U8.pack(T_UNSET)
    if isinstance(value, bool):
        return _U8.pack(T_TRUE if value else T_FALSE)
    if isinstance(value, int):
        if value >= 0:
            return _U8.pack(T_UINT) + _U64.pack(value)
        return _U8.pack(T_NINT) + _I64.pack(value)
    return _U8.pack(T_STR) + _str(value)


def encode(hints: Hints) -> bytes:
    """Serialise hints to the canonical file format; the inverse of :func:`decode`."""
    if len(hints.entries) > MAX_DEVICES:
        raise ValueError(f"{len(hints.entries)} devices is more than compat hints hold")
    machine = [(k, n) for k, n in (("vcpus", hints.vcpus),) if n != MACHINE_DEFAULTS[k]]
    count = len(hints.entries) + (1 if machine else 0)
    out = bytearray(
        _HEADER.pack(MAGIC, FORMAT_VERSION, 0, hints.version.major, hints.version.minor, count)
    )
    if machine:
        body = bytearray(_U16.pack(len(machine)))
        for key, count in machine:
            body += _str(key) + _value(count)
        out += _SECTION_HEAD.pack(SECTION_MACHINE, len(body)) + body
    for entry in hints.entries:
        body = bytearray(_str(entry.identity) + _str(entry.driver))
        body += _U16.pack(len(entry.properties))
        for name, value in entry.properties:
            body += _str(name) + _value(value)
        out += _SECTION_HEAD.pack(SECTION_DEVICE, len(body)) + body
    out += _U32.pack(zlib.crc32(out))
    if len(out) > MAX_SIZE:
        raise ValueError("compat hints would exceed the size limit")
    return bytes(out)


# -- decode -----------------------------------------------------------------------


class _Reader:
    """Reads from a window ``[pos, end)`` of the blob; never past ``end``."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data = data
        self.pos = pos
        self.end = end

    def fail(self, reason: str, at: int | None = None) -> HintsFormatError:
        offset = self.pos if at is None else at
        return HintsFormatError(reason, offset=offset, raw=self.data[offset : offset + 16])

    def take(self, n: int, what: str) -> bytes:
        if n > self.end - self.pos:
            raise self.fail(f"{what} needs {n} bytes but only {self.end - self.pos} remain")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self, what: str) -> int:
        return int(_U8.unpack(self.take(1, what))[0])

    def u16(self, what: str) -> int:
        return int(_U16.unpack(self.take(2, what))[0])

    def u32(self, what: str) -> int:
        return int(_U32.unpack(self.take(4, what))[0])

    def text(self, what: str) -> str:
        start = self.pos
        raw = self.take(self.u16(f"{what} length"), what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not valid UTF-8", start) from None

    def value(self, name: str) -> HintValue:
        start = self.pos
        tag = self.u8(f"type of {name!r}")
        if tag == T_UNSET:
            return None
        if tag in (T_FALSE, T_TRUE):
            return tag == T_TRUE
        if tag == T_UINT:
            return int(_U64.unpack(self.take(8, f"value of {name!r}"))[0])
        if tag == T_NINT:
            number = int(_I64.unpack(self.take(8, f"value of {name!r}"))[0])
            if number >= 0:
                raise self.fail(f"{name!r}: a non-negative integer stored as negative", start)
            return number
        if tag == T_STR:
            return self.text(f"value of {name!r}")
        raise self.fail(f"{name!r} has unknown value type {tag:#04x}", start)


def decode(data: bytes) -> Hints:
    """Parse a compat-hints blob; the inverse of :func:`encode`.

    Raises :class:`HintsFormatError` for anything that is not a canonical blob of
    a known format version, in time and memory bounded by the input's size.
    """
    size = len(data)
    if size == 0:
        raise HintsFormatError("the file is empty", offset=0)
    if size > MAX_SIZE:
        raise HintsFormatError(f"{size} bytes is over the {MAX_SIZE}-byte limit", offset=MAX_SIZE)
    prefix = data[: len(MAGIC)]
    if prefix != MAGIC[: len(prefix)]:
        raise HintsFormatError("not a compat-hints file (bad magic)", offset=0, raw=data[:16])
    if size < _HEADER.size + 4:
        raise HintsFormatError(
            f"truncated: {size} bytes is shorter than the {_HEADER.size + 4}-byte minimum",
            offset=size,
        )
    _, fmt, flags, major, minor, count = _HEADER.unpack_from(data)
    if fmt != FORMAT_VERSION:
        newer = "newer than this compatlab understands" if fmt > FORMAT_VERSION else "unknown"
        raise HintsFormatError(
            f"format version {fmt} is {newer} (supported: {FORMAT_VERSION})", offset=8
        )
    if flags:
        raise HintsFormatError(f"unknown flags {flags:#06x}", offset=10)
    stored = int(_U32.unpack_from(data, size - 4)[0])
    computed = zlib.crc32(data[: size - 4])
    if stored != computed:
        raise HintsFormatError(
            f"checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): "
            "the file is corrupt or truncated",
            offset=size - 4,
        )
    reader = _Reader(data, _HEADER.size, size - 4)
    if count > MAX_SECTIONS or count * _MIN_SECTION > reader.end - reader.pos:
        raise HintsFormatError(f"declares {count} sections, more than the file can hold", offset=16)
    entries: list[HintEntry] = []
    machine = dict(MACHINE_DEFAULTS)
    previous: str | None = None
    for index in range(count):
        start = reader.pos
        tag = reader.u8("section tag")
        length = reader.u32("section length")
        if tag not in (SECTION_DEVICE, SECTION_MACHINE):
            raise reader.fail(f"unknown section type {tag:#04x}", start)
        if tag == SECTION_MACHINE and index:
            raise reader.fail("a machine section after the first section", start)
        if length > reader.end - reader.pos:
            raise reader.fail(
                f"section declares {length} bytes but only {reader.end - reader.pos} remain", start
            )
        body = _Reader(data, reader.pos, reader.pos + length)
        reader.pos += length
        if tag == SECTION_MACHINE:
            machine.update(_machine(body))
            _ended(body)
            continue
        entry = _device(body)
        _ended(body)
        if previous is not None and entry.identity <= previous:
            why = "twice" if entry.identity == previous else "out of order"
            raise reader.fail(f"device {entry.identity!r} appears {why}", start)
        previous = entry.identity
        entries.append(entry)
    if reader.pos != reader.end:
        raise reader.fail(f"{reader.end - reader.pos} unexpected bytes after the last section")
    if len(entries) > MAX_DEVICES:
        raise HintsFormatError(f"holds {len(entries)} devices, more than a config", offset=16)
    return Hints(Version(major, minor), tuple(entries), machine["vcpus"])


def _ended(body: _Reader) -> None:
    if body.pos != body.end:
        raise body.fail(f"{body.end - body.pos} unexpected bytes at the end of a section")


def _properties(body: _Reader, owner: str) -> list[tuple[str, HintValue]]:
    """``count u16 · properties``, names in canonical order."""
    count_at = body.pos
    count = body.u16("property count")
    if count > MAX_PROPERTIES or count * 3 > body.end - body.pos:
        raise body.fail(f"declares {count} properties, more than the section holds", count_at)
    props: list[tuple[str, HintValue]] = []
    previous: str | None = None
    for _ in range(count):
        at = body.pos
        name = body.text("property name")
        if previous is not None and name <= previous:
            why = "twice" if name == previous else "out of order"
            raise body.fail(f"property {name!r} of {owner} appears {why}", at)
        previous = name
        props.append((name, body.value(name)))
    return props


def _machine(body: _Reader) -> dict[str, int]:
    """The machine inputs of a machine section: known names, values in range, none at
    its default (the canonical form leaves those out) and at least one."""
    start = body.pos
    props = _properties(body, "the machine")
    if not props:
        raise body.fail("an empty machine section (the canonical form leaves it out)", start)
    out: dict[str, int] = {}
    for name, value in props:
        if name not in MACHINE_DEFAULTS:
            raise body.fail(f"unknown machine input {name!r}", start)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VCPUS:
            raise body.fail(
                f"machine input {name}={value!r} is not a count in 1..{MAX_VCPUS}", start
            )
        if value == MACHINE_DEFAULTS[name]:
            raise body.fail(
                f"machine input {name}={value} is its default (the canonical form leaves it out)",
                start,
            )
        out[name] = value
    return out


def _device(body: _Reader) -> HintEntry:
    identity = body.text("device identity")
    driver = body.text("driver name")
    if not identity or not driver:
        raise body.fail("a device section needs an identity and a driver")
    return HintEntry(identity, driver, tuple(_properties(body, repr(identity))))
