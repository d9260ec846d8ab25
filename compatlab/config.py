"""Configurations: what a VM manager asks the emulator for.

A config is a list of devices, each with a driver, an optional ``id``, an optional
PCI address ``SLOT[.FN]`` (hex) and explicit property values. It comes from QEMU
``-device`` strings or from a JSON/TOML file::

    {"devices": [{"driver": "virtio-net-pci", "id": "net0", "addr": "03.0",
                  "properties": {"vectors": 4}}]}

Property values stay as given (strings from the command line, scalars from a
file); the resolver parses them against the catalogue of a given version, since
whether a property exists depends on the version.

What a config may hold is bounded, and everything past a bound is a
:class:`~compatlab.errors.ConfigError` naming the file (or ``-device`` string) and
the key:

- at most :data:`MAX_DEVICES` devices in all (240: bus 0 has 32 slots of 8
  functions, and slots 00 and 01 belong to the host and ISA bridges);
- names and values of at most :data:`MAX_TEXT_BYTES` bytes of UTF-8 (65535: the
  longest string compat hints record), and text only (no lone surrogates, which a
  command line that is not UTF-8 or a JSON ``\\ud800`` escape would give);
- a file is a regular file of at most 16 MiB, nested at most 32 levels
  (:mod:`compatlab.inputs`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compatlab.catalogue.properties import Value, abbreviate
from compatlab.errors import AddressError, ConfigError
from compatlab.inputs import kind_of, read_json, read_toml

FIRST_SLOT = 0x02
LAST_SLOT = 0x1F
FUNCTIONS = 8
#: The most devices a config may hold: every function of every slot a device can
#: take (02..1f; PCI Local Bus 3.0 §3.2.2.3.2: 32 devices of 8 functions on a bus,
#: and the i440fx machine keeps slot 00 for the host bridge and slot 01 for the
#: PIIX ISA bridge and its IDE, USB and ACPI functions). More devices than that
#: cannot all get an address, so a longer config is refused before it is parsed.
MAX_DEVICES = (LAST_SLOT - FIRST_SLOT + 1) * FUNCTIONS
#: The longest name or value a config may hold, in bytes of UTF-8: what a string
#: in compat hints can hold (its length is a u16, docs/hints-format.md).
MAX_TEXT_BYTES = 0xFFFF
_ADDR_RE = re.compile(r"(?:0x)?([0-9a-fA-F]{1,2})(?:\.([0-7]))?")
_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")


@dataclass(frozen=True, slots=True, order=True)
class PciAddress:
    """Slot and function on bus 0, as QEMU's ``addr=SLOT[.FN]`` names them."""

    slot: int
    function: int = 0

    @classmethod
    def parse(cls, text: str) -> PciAddress:
        """Parse ``SLOT[.FN]`` in hex; the inverse of ``str()``."""
        match = _ADDR_RE.fullmatch(str(text).strip())
        if match is None:
            raise AddressError(
                f"malformed PCI address {text!r}; expected SLOT[.FN] in hex, e.g. 03.0"
            )
        slot = int(match.group(1), 16)
        function = int(match.group(2) or "0")
        if not FIRST_SLOT <= slot <= LAST_SLOT:
            raise AddressError(
                f"PCI address {text!r}: slot {slot:#04x} is not free "
                f"(slots 00 and 01 hold the host and ISA bridges; use 02..1f)"
            )
        return cls(slot, function)

    def __str__(self) -> str:
        return f"{self.slot:02x}.{self.function}"


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One requested device. ``properties`` keeps the given order and spelling."""

    driver: str
    id: str | None = None
    addr: PciAddress | None = None
    properties: tuple[tuple[str, Value], ...] = ()

    @property
    def props(self) -> dict[str, Value]:
        return dict(self.properties)

    def to_device_string(self) -> str:
        """QEMU ``-device`` syntax; the inverse of :func:`parse_device_string`."""
        parts = [self.driver]
        if self.id is not None:
            parts.append(f"id={self.id}")
        if self.addr is not None:
            parts.append(f"addr={self.addr}")
        for name, value in self.properties:
            text = ("on" if value else "off") if isinstance(value, bool) else str(value)
            parts.append(f"{name}={text.replace(',', ',,')}")
        return ",".join(parts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"driver": self.driver}
        if self.id is not None:
            out["id"] = self.id
        if self.addr is not None:
            out["addr"] = str(self.addr)
        if self.properties:
            out["properties"] = dict(self.properties)
        return out


@dataclass(frozen=True, slots=True)
class Config:
    devices: tuple[DeviceSpec, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"devices": [d.to_json() for d in self.devices]}

    def device_strings(self) -> list[str]:
        return [d.to_device_string() for d in self.devices]


def _split_opts(text: str) -> list[str]:
    """Split QemuOpts syntax on commas; ``,,`` is a literal comma."""
    parts, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == ",":
            if i + 1 < len(text) and text[i + 1] == ",":
                current.append(",")
                i += 2
                continue
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _check_text(value: str, where: str, what: str) -> str:
    """``value`` if it is Unicode text that compat hints can hold."""
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ConfigError(
            f"{where}: {what} is not Unicode text (a lone surrogate at character {exc.start}; "
            "is the command line UTF-8?)"
        ) from None
    if size > MAX_TEXT_BYTES:
        raise ConfigError(
            f"{where}: {what} is {size} bytes long, more than the {MAX_TEXT_BYTES} a "
            "compat-hints string holds"
        )
    return value


def _check_id(value: str, where: str) -> str:
    if not _ID_RE.fullmatch(value):
        raise ConfigError(
            f"{where}: invalid id {value!r} (QEMU ids start with a letter and hold "
            "letters, digits, '-', '.' and '_')"
        )
    return value


def make_device(
    driver: Any, props: Mapping[str, Any] | Iterable[tuple[str, Any]], where: str
) -> DeviceSpec:
    """Build a spec from a driver and (name, value) pairs, pulling out ``id``/``addr``."""
    if driver is None or driver == "":
        raise ConfigError(f"{where}: a device needs a driver name")
    if not isinstance(driver, str):
        raise ConfigError(f"{where}: 'driver' must be a string, not {kind_of(driver)}")
    _check_text(driver, where, "the driver name")
    pairs = list(props.items()) if isinstance(props, Mapping) else list(props)
    dev_id: str | None = None
    addr: PciAddress | None = None
    rest: list[tuple[str, Value]] = []
    seen: set[str] = set()
    for name, value in pairs:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: empty property name")
        _check_text(name, where, f"property name {abbreviate(name)!r}")
        if name in seen:
            raise ConfigError(f"{where}: property {name!r} is given twice")
        seen.add(name)
        if isinstance(value, float) or not isinstance(value, bool | int | str):
            raise ConfigError(
                f"{where}: property {name!r} must be a string, integer or boolean, "
                f"not {kind_of(value)}"
            )
        if isinstance(value, str):
            _check_text(value, where, f"the value of {name!r}")
        if name in ("id", "addr") and not isinstance(value, str):
            raise ConfigError(f"{where}: {name!r} must be a string, not {kind_of(value)}")
        if name == "id":
            dev_id = _check_id(str(value), where)
        elif name == "addr":
            try:
                addr = PciAddress.parse(str(value))
            except AddressError as exc:
                raise AddressError(f"{where}: {exc}") from None
        elif name == "driver":
            raise ConfigError(f"{where}: 'driver' is given twice")
        else:
            rest.append((name, value))
    return DeviceSpec(driver=driver, id=dev_id, addr=addr, properties=tuple(rest))


def parse_device_string(text: str) -> DeviceSpec:
    """Parse one QEMU ``-device`` option such as ``e1000,id=nic0,addr=04.0``."""
    where = f"-device {abbreviate(text)!r}"
    parts = _split_opts(text)
    if not parts or not parts[0]:
        raise ConfigError(f"{where}: a device needs a driver name")
    first, rest = parts[0], parts[1:]
    driver: str | None = None
    pairs: list[tuple[str, str]] = []
    if "=" in first:
        rest = parts
    else:
        driver = first
    for part in rest:
        if not part:
            raise ConfigError(f"{where}: empty option between commas")
        name, eq, value = part.partition("=")
        if not eq:
            # QemuOpts: a bare name means name=on.
            value = "on"
        if name == "driver":
            if driver is not None:
                raise ConfigError(f"{where}: 'driver' is given twice")
            driver = value
            continue
        pairs.append((name, value))
    return make_device(driver, pairs, where)


def parse_config_data(data: Any, source: str) -> Config:
    """A config from decoded JSON/TOML: ``{"devices": [...]}`` or a bare list."""
    if isinstance(data, dict):
        if set(data) - {"devices"}:
            raise ConfigError(f"{source}: unknown top-level keys {sorted(set(data) - {'devices'})}")
        if "devices" not in data:
            raise ConfigError(f"{source}: expected a list of devices under 'devices'")
        devices = data["devices"]
        if not isinstance(devices, list):
            raise ConfigError(f"{source}: 'devices' must be a list, not {kind_of(devices)}")
    elif isinstance(data, list):
        devices = data
    else:
        raise ConfigError(
            f"{source}: expected a table with a list under 'devices', not {kind_of(data)}"
        )
    if len(devices) > MAX_DEVICES:
        raise ConfigError(f"{source}: {_too_many(len(devices))}")
    specs = []
    for n, item in enumerate(devices):
        where = f"{source}: device {n}"
        if isinstance(item, str):
            specs.append(parse_device_string(item))
            continue
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a table or a -device string, not {kind_of(item)}")
        unknown = set(item) - {"driver", "id", "addr", "properties"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        props = item.get("properties", {})
        if not isinstance(props, dict):
            raise ConfigError(f"{where}: 'properties' must be a table, not {kind_of(props)}")
        extra = [(k, item[k]) for k in ("id", "addr") if k in item]
        specs.append(make_device(item.get("driver"), [*extra, *props.items()], where))
    return Config(tuple(specs))


def _too_many(count: int, what: str = "devices") -> str:
    return (
        f"{count} {what} is more than the {MAX_DEVICES} devices a config may hold "
        f"(slots {FIRST_SLOT:02x}..{LAST_SLOT:02x} of bus 0, {FUNCTIONS} functions each)"
    )


def load_config_file(path: str | Path) -> Config:
    """Read a JSON (``.json``) or TOML (any other suffix) config file: a regular file
    of at most 16 MiB, nested at most 32 levels (:mod:`compatlab.inputs`)."""
    p = Path(path)
    read = read_json if p.suffix.lower() == ".json" else read_toml
    return parse_config_data(read(p, what="config file", error=ConfigError), str(p))


def build_config(files: Iterable[str | Path] = (), device_strings: Iterable[str] = ()) -> Config:
    """The devices of the config ``files`` in order, then those of the ``-device``
    strings; at most :data:`MAX_DEVICES` of them (and as many files), refused
    before anything more is read."""
    files, device_strings = list(files), list(device_strings)
    if len(files) > MAX_DEVICES:
        raise ConfigError(_too_many(len(files), "config files"))
    if len(device_strings) > MAX_DEVICES:
        raise ConfigError(_too_many(len(device_strings), "-device options"))
    devices: list[DeviceSpec] = []
    for f in files:
        devices.extend(load_config_file(f).devices)
        if len(devices) + len(device_strings) > MAX_DEVICES:
            raise ConfigError(f"{f}: {_too_many(len(devices) + len(device_strings))} in all")
    devices.extend(parse_device_string(s) for s in device_strings)
    return Config(tuple(devices))
