"""Property types: how a value is spelled on the command line and what it may hold.

Parsing follows QEMU's own parsers as ``-device`` uses them (through the string
input visitor or, since QEMU 6.2, the keyval visitor; both call the same helpers),
written anew here:

- integers as ``qemu_strtou64``/``qemu_strtoi64`` (util/cutils.c) read them with
  base 0, that is C's ``strtoull``/``strtoll``: leading ASCII white space, one
  optional sign, then ``0x``/``0X`` and hex digits, ``0`` and octal digits, or
  decimal digits, and nothing after them. No digit separators (``1_0``), no other
  digits than ASCII ones, no second sign. A negative number for an unsigned type
  wraps as ``strtoull`` wraps it (``-1`` is 2**64-1), so only ``-0`` survives the
  width check; the width check (``visit_type_uint32`` …, qapi/qapi-visit-core.c)
  and the catalogue's own bounds then apply. A number of any length is refused
  in time linear in its text: its significant digits are counted before it is
  converted;
- sizes as ``qemu_strtosz`` reads them since QEMU 6.0: decimal (or ``0x`` hex
  without suffix or fraction), an optional fraction, an optional one-letter
  suffix B, K, M, G, T, P or E (any case, powers of 1024), the fraction rounded
  to the byte as QEMU rounds it; no sign, no exponent, no white space inside;
- booleans as ``qapi_bool_parse`` (qapi/qapi-util.c) reads them since QEMU 6.0:
  exactly on/yes/true/y or off/no/false/n, in lower case (QEMU 5.2 and older also
  took upper case, but not y and n);
- on/off/auto and other enums as ``qapi_enum_parse``: one of the names, exactly;
- MAC addresses as ``set_mac`` (hw/core/qdev-properties-system.c): six pairs of
  hex digits separated by ``:`` or ``-``.

Values are canonical Python values (``bool``, ``int``, ``str``) so that equal
settings compare equal however they were spelled; a JSON/TOML scalar of the
right type is taken as is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from compatlab.errors import PropertyParseError
from compatlab.versions import Version

Value = bool | int | str

# qapi_bool_parse (QEMU >= 6.0): exact, lower case.
_TRUE = frozenset({"on", "yes", "true", "y"})
_FALSE = frozenset({"off", "no", "false", "n"})
_ON_OFF_AUTO = ("on", "off", "auto")
# C's isspace() in the C locale, which strtoull skips before a number.
_C_SPACE = " \t\n\v\f\r"
_INT_RE = re.compile(
    rf"[{_C_SPACE}]*([+-]?)(?:0[xX]([0-9a-fA-F]+)|0([0-7]*)|([1-9][0-9]*))", re.ASCII
)
_SIZE_RE = re.compile(
    rf"[{_C_SPACE}]*\+?(?:0[xX]([0-9a-fA-F]+)|([0-9]+)(?:\.([0-9]*))?([bBkKmMgGtTpPeE]?))",
    re.ASCII,
)
_SIZE_SHIFT = {"": 0, "b": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}
_MAC_RE = re.compile(r"[0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){5}", re.ASCII)
_U64 = 1 << 64
# The most significant digits a number below 2**64 can have, per base (octal
# 1777777777777777777777, hex ffffffffffffffff, decimal 18446744073709551615).
_MAX_DIGITS = {8: 22, 10: 20, 16: 16}

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


def abbreviate(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters for an error message, saying how long
    it was: messages stay one short line whatever the input."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text)} characters)"


def _magnitude(digits: str, base: int) -> int | None:
    """The value of ASCII ``digits`` in ``base``, or None if it is 2**64 or more;
    the significant digits are counted before anything is converted."""
    significant = digits.lstrip("0")
    if len(significant) > _MAX_DIGITS[base]:
        return None
    number = int(significant or "0", base)
    return number if number < _U64 else None


def _parse_int(text: str, *, unsigned: bool) -> int | None:
    """``text`` as strtoull (``unsigned``) or strtoll with base 0 reads it; None when
    it overflows 64 bits (QEMU's ERANGE)."""
    match = _INT_RE.fullmatch(text)
    if match is None:
        raise PropertyParseError("not an integer")
    sign, hexa, octal, decimal = match.groups()
    if hexa is not None:
        number = _magnitude(hexa, 16)
    elif octal is not None:
        number = _magnitude(octal, 8)
    else:
        number = _magnitude(decimal, 10)
    if number is None:
        return None
    if unsigned:
        # strtoull negates in 64 bits: -1 is 2**64-1, -0 is 0.
        return (_U64 - number) % _U64 if sign == "-" else number
    signed = -number if sign == "-" else number
    return signed if -(1 << 63) <= signed < (1 << 63) else None


def _parse_size(text: str) -> int | None:
    """``text`` as qemu_strtosz reads it (QEMU >= 6.0); None when it is 2**64 or more."""
    match = _SIZE_RE.fullmatch(text)
    if match is None:
        raise PropertyParseError(
            "not a size (a whole number, or a decimal with a B, K, M, G, T, P or E suffix)"
        )
    hexa, whole, fraction, suffix = match.groups()
    if hexa is not None:
        return _magnitude(hexa, 16)
    number = _magnitude(whole, 10)
    if number is None:
        return None
    shift = _SIZE_SHIFT[suffix.lower()]
    # QEMU reads the fraction as a double, keeps it as 64-bit fixed point and rounds
    # the scaled fraction to the nearest byte, half up.
    fixed = min(int(float(f"0.{fraction or 0}") * _U64), _U64 - 1)
    if shift == 0:
        if fixed:
            raise PropertyParseError("a fraction of a byte needs a K, M, G, T, P or E suffix")
        return number
    scaled = fixed << shift
    total = (number << shift) + (scaled >> 64) + ((scaled >> 63) & 1)
    return total if total < _U64 else None


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
    text = str(raw)
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise PropertyParseError("expected on or off")


def _onoffauto(t: PropType, raw: Value) -> Value:
    if isinstance(raw, bool):
        return "on" if raw else "off"
    text = str(raw)
    if text in _ON_OFF_AUTO:
        return text
    raise PropertyParseError("expected on, off or auto")


def _integer(t: PropType, raw: Value) -> Value:
    if isinstance(raw, bool):
        raise PropertyParseError("expected an integer, not a boolean")
    bounds = t.bounds
    assert bounds is not None
    number: int | None
    if isinstance(raw, int):
        number = raw
    elif t.kind == "size":
        number = _parse_size(raw)
    else:
        number = _parse_int(raw, unsigned=t.kind.startswith("uint"))
    if number is None or not bounds[0] <= number <= bounds[1]:
        raise PropertyParseError(f"out of range ({bounds[0]}..{bounds[1]})")
    return number


def _string(t: PropType, raw: Value) -> Value:
    if isinstance(raw, bool):
        return "on" if raw else "off"
    return str(raw)


def _macaddr(t: PropType, raw: Value) -> Value:
    text = str(raw)
    if not _MAC_RE.fullmatch(text):
        raise PropertyParseError("expected a MAC address like 52:54:00:12:34:56")
    return text.lower().replace("-", ":")


def _enum(t: PropType, raw: Value) -> Value:
    text = str(raw)
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
    value (builders see it; resolution does not). ``readonly`` marks one QEMU reports
    but refuses to set.
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
    #: A property QEMU lists but no -device may set ("Property 'e1000.busnr' is not
    #: writable"): it has a value, as every property does, but a config refuses it.
    readonly: bool = False
