"""Configurations: what a VM manager asks the emulator for.

A config is a list of devices, each with a driver, an optional ``id``, an optional
PCI address ``SLOT[.FN]`` (hex) and explicit property values, and the machine-level
inputs that device defaults depend on: the vCPU count (QEMU ``-smp N``; since QEMU
5.2 virtio-blk's and virtio-scsi's queues, and with them their MSI-X vectors,
default to one per vCPU). It comes from QEMU ``-device`` strings (and ``--vcpus``)
or from a JSON/TOML file::

    {"machine": {"vcpus": 4},
     "devices": [{"driver": "virtio-net-pci", "id": "net0", "addr": "03.0",
                  "properties": {"vectors": 4}}]}

A config that does not give ``vcpus`` leaves it unset: the resolver takes it from
the hints, else one vCPU (QEMU's default), as it does for properties.

Property values stay as given (strings from the command line, scalars from a
file); the resolver parses them against the catalogue of a given version, since
whether a property exists depends on the version.

What a config may hold is bounded, and everything past a bound is a
:class:`~compatlab.errors.ConfigError` naming the file (or ``-device`` string) and
the key:

- ``vcpus`` an integer from 1 to :data:`MAX_VCPUS` (255);
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
#: The most vCPUs an i440fx machine takes: QEMU hw/i386/pc.c, pc_machine_class_init
#: (``mc->max_cpus = 255``; every pc-i440fx machine type of QEMU 5.2, 7.2, 10.0 and
#: 11.1 refuses ``-smp 256``: "Invalid SMP CPUs 256. The max CPUs supported by
#: machine 'pc-i440fx-11.1' is 255").
MAX_VCPUS = 255
#: The vCPU count of a config that gives none (QEMU's default ``-smp``).
DEFAULT_VCPUS = 1
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
    """Devices, and the vCPU count (None: not given; see the module docstring)."""

    devices: tuple[DeviceSpec, ...] = field(default_factory=tuple)
    vcpus: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The file form; the inverse of :func:`parse_config_data`."""
        out: dict[str, Any] = {}
        if self.vcpus is not None:
            out["machine"] = {"vcpus": self.vcpus}
        out["devices"] = [d.to_json() for d in self.devices]
        return out

    def device_strings(self) -> list[str]:
        return [d.to_device_string() for d in self.devices]

    def options(self) -> list[str]:
        """The config as QEMU options: ``-smp N`` when the vCPU count is given, then
        one ``-device`` per device."""
        smp = [] if self.vcpus is None else [f"-smp {self.vcpus}"]
        return smp + [f"-device {d}" for d in self.device_strings()]


def check_vcpus(value: Any, where: str) -> int:
    """``value`` if it is a vCPU count an i440fx machine takes (1..MAX_VCPUS)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: vcpus must be an integer, not {kind_of(value)}")
    if not 1 <= value <= MAX_VCPUS:
        raise ConfigError(
            f"{where}: vcpus={value} is out of range (1..{MAX_VCPUS}: QEMU's i440fx machine "
            f"takes at most {MAX_VCPUS} CPUs)"
        )
    return value


def parse_vcpus(text: str, where: str = "--vcpus") -> int:
    """A vCPU count from the command line (decimal, as ``-smp`` takes it)."""
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise ConfigError(f"{where}: {abbreviate(text)!r} is not an integer") from None
    return check_vcpus(value, where)


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


def _machine(data: Any, source: str) -> int | None:
    """The vCPU count of a config file's ``machine`` table (None: not given)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: 'machine' must be a table, not {kind_of(data)}")
    unknown = set(data) - {"vcpus"}
    if unknown:
        raise ConfigError(f"{source}: unknown keys {sorted(unknown)} in 'machine'")
    return check_vcpus(data["vcpus"], f"{source}: machine") if "vcpus" in data else None


def parse_config_data(data: Any, source: str) -> Config:
    """A config from decoded JSON/TOML: ``{"machine": {...}, "devices": [...]}`` or a
    bare list of devices; the inverse of :meth:`Config.to_json`."""
    vcpus = None
    if isinstance(data, dict):
        if set(data) - {"devices", "machine"}:
            extra = sorted(set(data) - {"devices", "machine"})
            raise ConfigError(f"{source}: unknown top-level keys {extra}")
        if "machine" in data:
            vcpus = _machine(data["machine"], source)
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
    return Config(tuple(specs), vcpus)


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


def build_config(
    files: Iterable[str | Path] = (), device_strings: Iterable[str] = (), vcpus: int | None = None
) -> Config:
    """The devices of the config ``files`` in order, then those of the ``-device``
    strings; at most :data:`MAX_DEVICES` of them (and as many files), refused
    before anything more is read. The vCPU count is ``vcpus`` (the command line's)
    if given, else the one the files give; files that give two are refused."""
    files, device_strings = list(files), list(device_strings)
    if len(files) > MAX_DEVICES:
        raise ConfigError(_too_many(len(files), "config files"))
    if len(device_strings) > MAX_DEVICES:
        raise ConfigError(_too_many(len(device_strings), "-device options"))
    devices: list[DeviceSpec] = []
    given: tuple[str | Path, int] | None = None
    for f in files:
        loaded = load_config_file(f)
        devices.extend(loaded.devices)
        if len(devices) + len(device_strings) > MAX_DEVICES:
            raise ConfigError(f"{f}: {_too_many(len(devices) + len(device_strings))} in all")
        if loaded.vcpus is not None and vcpus is None:
            if given is not None and given[1] != loaded.vcpus:
                raise ConfigError(
                    f"{f}: machine.vcpus={loaded.vcpus}, but {given[0]} gives {given[1]}; "
                    "give one (or --vcpus)"
                )
            given = (f, loaded.vcpus)
    devices.extend(parse_device_string(s) for s in device_strings)
    if vcpus is not None:
        return Config(tuple(devices), check_vcpus(vcpus, "--vcpus"))
    return Config(tuple(devices), None if given is None else given[1])
