"""Configurations: what a VM manager asks the emulator for.

A config is a list of devices, each with a driver, an optional ``id``, an optional
PCI address ``SLOT[.FN]`` (hex) and explicit property values. It comes from QEMU
``-device`` strings or from a JSON/TOML file::

    {"devices": [{"driver": "virtio-net-pci", "id": "net0", "addr": "03.0",
                  "properties": {"vectors": 4}}]}

Property values stay as given (strings from the command line, scalars from a
file); the resolver parses them against the catalogue of a given version, since
whether a property exists depends on the version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compatlab.catalogue.properties import Value
from compatlab.errors import AddressError, ConfigError

FIRST_SLOT = 0x02
LAST_SLOT = 0x1F
MAX_DEVICES = 256
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
    if not isinstance(driver, str) or not driver:
        raise ConfigError(f"{where}: a device needs a driver name")
    pairs = list(props.items()) if isinstance(props, Mapping) else list(props)
    dev_id: str | None = None
    addr: PciAddress | None = None
    rest: list[tuple[str, Value]] = []
    seen: set[str] = set()
    for name, value in pairs:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: empty property name")
        if name in seen:
            raise ConfigError(f"{where}: property {name!r} is given twice")
        seen.add(name)
        if isinstance(value, float) or not isinstance(value, bool | int | str):
            raise ConfigError(
                f"{where}: property {name!r} must be a string, integer or boolean, "
                f"not {type(value).__name__}"
            )
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
    where = f"-device {text!r}"
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
    devices = data.get("devices") if isinstance(data, dict) else data
    if isinstance(data, dict) and set(data) - {"devices"}:
        raise ConfigError(f"{source}: unknown top-level keys {sorted(set(data) - {'devices'})}")
    if not isinstance(devices, list):
        raise ConfigError(f"{source}: expected a list of devices under 'devices'")
    if len(devices) > MAX_DEVICES:
        raise ConfigError(f"{source}: {len(devices)} devices is more than a bus holds")
    specs = []
    for n, item in enumerate(devices):
        where = f"{source}: device {n}"
        if isinstance(item, str):
            specs.append(parse_device_string(item))
            continue
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a table or a -device string")
        unknown = set(item) - {"driver", "id", "addr", "properties"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        props = item.get("properties", {})
        if not isinstance(props, dict):
            raise ConfigError(f"{where}: 'properties' must be a table")
        extra = [(k, item[k]) for k in ("id", "addr") if k in item]
        specs.append(make_device(item.get("driver"), [*extra, *props.items()], where))
    return Config(tuple(specs))


def load_config_file(path: str | Path) -> Config:
    """Read a JSON (``.json``) or TOML (any other suffix) config file."""
    import tomllib

    p = Path(path)
    try:
        raw = p.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: config is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{p}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: malformed TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{p}: config nests too deeply") from None
    return parse_config_data(data, str(p))


def build_config(files: Iterable[str | Path] = (), device_strings: Iterable[str] = ()) -> Config:
    devices: list[DeviceSpec] = []
    for f in files:
        devices.extend(load_config_file(f).devices)
    devices.extend(parse_device_string(s) for s in device_strings)
    return Config(tuple(devices))
