"""Property types: how a value is spelled on the command line and what it may hold.

Parsing follows QEMU's string input visitor as ``-device`` uses it: integers in
decimal, hex (``0x``) or octal (leading ``0``); booleans as on/off, yes/no,
true/false, y/n; sizes with K/M/G/T suffixes. Values are canonical Python
values (``bool``, ``int``, ``str``) so that equal settings compare equal however
they were spelled.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from compatlab.errors import PropertyParseError
from compatlab.versions import Version

Value = bool | int | str

_TRUE = {"on", "yes", "true", "y"}
_FALSE = {"off", "no", "false", "n"}
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([kKmMgGtTpPeE]?)[bB]?")
_SIZE_SHIFT = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}
_MAC_RE = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")

INT_RANGES: dict[str, tuple[int, int]] = {
    "uint8": (0, 0xFF),
    "uint16": (0, 0xFFFF),
    "uint32": (0, 0xFFFFFFFF),
    "uint64": (0, 0xFFFFFFFFFFFFFFFF),
    "int8": (-0x80, 0x7F),
    "int16": (-0x8000, 0x7FFF),
    "int32": (-0x80000000, 0x7FFFFFFF),
    "int64": (-0x8000000000000000, 0x7FFFFFFFFFFFFFFF),
    "size": (0, 0xFFFFFFFFFFFFFFFF),
}


def _parse_int(text: str) -> int:
    s = text.strip()
    negative = s.startswith("-")
    digits = s[1:] if negative or s.startswith("+") else s
    try:
        if digits.lower().startswith("0x"):
            number = int(digits[2:], 16)
        elif len(digits) > 1 and digits.startswith("0"):
            number = int(digits[1:], 8)
        else:
            number = int(digits, 10)
    except ValueError:
        raise PropertyParseError("not an integer") from None
    return -number if negative else number


def _parse_size(text: str) -> int:
    match = _SIZE_RE.fullmatch(text.strip())
    if match is None:
        raise PropertyParseError("not a size (a number with an optional K, M, G or T suffix)")
    number, unit = match.groups()
    shift = _SIZE_SHIFT[unit.lower()]
    if "." in number:
        if not unit:
            raise PropertyParseError("a size without a suffix must be a whole number")
        return int(float(number) * (1 << shift))
    return int(number) << shift


@dataclass(frozen=True, slots=True)
class PropType:
    """A property type: ``bool``, ``onoffauto``, an integer width, ``size``,
    ``string``, ``macaddr``, ``link`` (a backend id) or ``enum`` with choices."""

    kind: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None

    def parse(self, raw: Value) -> Value:
        """Canonical value of ``raw`` (a command-line string, or a JSON/TOML scalar)."""
        parser = _PARSERS.get(self.kind)
        if parser is None:
            raise PropertyParseError(f"unknown property type {self.kind!r}")
        return parser(self, raw)

    def format(self, value: Value) -> str:
        """Command-line spelling of a canonical value; inverse of :meth:`parse`."""
        if self.kind == "bool":
            return "on" if value else "off"
        return str(value)

    @property
    def bounds(self) -> tuple[int, int] | None:
        if self.kind not in INT_RANGES:
            return None
        low, high = INT_RANGES[self.kind]
        return (
            low if self.minimum is None else self.minimum,
            high if self.maximum is None else self.maximum,
        )

    def describe(self) -> str:
        if self.kind == "enum":
            return "|".join(self.choices)
        if self.kind == "onoffauto":
            return "on|off|auto"
        bounds = self.bounds
        if bounds and (self.minimum is not None or self.maximum is not None):
            return f"{self.kind} {bounds[0]}..{bounds[1]}"
        return self.kind


def _bool(t: PropType, raw: Value) -> Value:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise PropertyParseError("expected on or off")


def _onoffauto(t: PropType, raw: Value) -> Value:
    if isinstance(raw, bool):
        return "on" if raw else "off"
    text = str(raw).strip().lower()
    if text in ("on", "off", "auto"):
        return text
    raise PropertyParseError("expected on, off or auto")


def _integer(t: PropType, raw: Value) -> Value:
    if isinstance(raw, bool):
        raise PropertyParseError("expected an integer, not a boolean")
    number = (
        raw
        if isinstance(raw, int)
        else (_parse_size(raw) if t.kind == "size" else _parse_int(str(raw)))
    )
    bounds = t.bounds
    assert bounds is not None
    if not bounds[0] <= number <= bounds[1]:
        raise PropertyParseError(f"out of range ({bounds[0]}..{bounds[1]})")
    return number


def _string(t: PropType, raw: Value) -> Value:
    if isinstance(raw, bool):
        return "on" if raw else "off"
    return str(raw)


def _macaddr(t: PropType, raw: Value) -> Value:
    text = str(raw).strip()
    if not _MAC_RE.fullmatch(text):
        raise PropertyParseError("expected a MAC address like 52:54:00:12:34:56")
    return text.lower()


def _enum(t: PropType, raw: Value) -> Value:
    text = str(raw).strip()
    if text not in t.choices:
        raise PropertyParseError(f"expected one of {', '.join(t.choices)}")
    return text


_PARSERS: dict[str, Callable[[PropType, Value], Value]] = {
    "bool": _bool,
    "onoffauto": _onoffauto,
    "string": _string,
    "link": _string,
    "macaddr": _macaddr,
    "enum": _enum,
    **{kind: _integer for kind in INT_RANGES},
}

KINDS: tuple[str, ...] = tuple(_PARSERS)


@dataclass(frozen=True, slots=True)
class PropertyDef:
    """One property of a device type, with the versions it exists in.

    ``default`` is the newest default; older defaults come from compat entries.
    ``since`` is the first version with the property; ``until`` (exclusive), if
    set, the first version without it. ``guest_visible`` marks properties that
    change config space. ``sweep`` lists values worth capturing from real QEMU.
    ``internal`` marks behaviour of an emulator release that QEMU changed without a
    compat property: it cannot be set or hinted, and a release always uses its own
    value (builders see it; resolution does not).
    """

    name: str
    type: PropType
    default: Value | None
    since: Version
    until: Version | None = None
    guest_visible: bool = False
    doc: str = ""
    sweep: tuple[str, ...] = ()
    internal: bool = False
    owner: str = field(default="", compare=False)
