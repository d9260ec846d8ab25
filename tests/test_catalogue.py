"""The catalogue: type hierarchy, property history and compat-entry semantics."""

from __future__ import annotations

import tomllib

import pytest

from compatlab.catalogue import Catalogue, CompatEntry, builtin_catalogue
from compatlab.catalogue.builders import registered_builders
from compatlab.catalogue.loader import parse_types
from compatlab.catalogue.model import DeviceType
from compatlab.catalogue.values import SUITE_SPREAD, property_values
from compatlab.errors import (
    CatalogueError,
    PropertyValueError,
    UnknownDeviceError,
    UnknownPropertyError,
)
from compatlab.versions import ALL_VERSIONS, Version

V = Version.parse

TYPES = """
[pci-device]
abstract = true
[pci-device.properties.flag]
type = "bool"
default = true

[virtio-pci]
parent = "pci-device"
abstract = true

[net]
parent = "virtio-pci"
since = "2.0"
[net.properties.vectors]
type = "uint32"
default = 4
max = 2048
[net.properties.newprop]
type = "bool"
default = true
since = "5.0"
[net.properties.width]
variants = [
  { type = "uint8", default = 1, until = "6.0" },
  { type = "int32", default = -1, since = "6.0" },
]
"""


def _catalogue(*compat: tuple[str, str, str, str]) -> Catalogue:
    types: dict[str, DeviceType] = {}
    parse_types(tomllib.loads(TYPES), types, "test")
    entries = tuple(CompatEntry(V(v), d, p, val) for v, d, p, val in compat)
    return Catalogue(types=types, compat=tuple(sorted(entries, key=lambda e: e.version)))


def test_no_compat_entry_means_the_newest_default() -> None:
    cat = _catalogue()
    assert all(cat.default("net", "vectors", v) == 4 for v in ALL_VERSIONS)


def test_an_entry_applies_up_to_and_including_its_version() -> None:
    cat = _catalogue(("5.2", "net", "vectors", "3"))
    assert cat.default("net", "vectors", V("5.2")) == 3
    assert cat.default("net", "vectors", V("2.0")) == 3
    assert cat.default("net", "vectors", V("6.0")) == 4


def test_the_oldest_array_at_or_above_the_version_wins() -> None:
    # QEMU applies hw_compat arrays newest first, so older arrays override.
    cat = _catalogue(("5.2", "net", "vectors", "3"), ("2.11", "net", "vectors", "2"))
    assert cat.default("net", "vectors", V("2.11")) == 2
    assert cat.default("net", "vectors", V("3.0")) == 3


def test_an_entry_on_an_abstract_parent_reaches_subtypes() -> None:
    cat = _catalogue(("4.0", "pci-device", "flag", "off"))
    assert cat.default("net", "flag", V("4.0")) is False
    assert cat.default("net", "flag", V("4.1")) is True


def test_within_one_array_the_last_entry_wins() -> None:
    cat = _catalogue(("4.0", "virtio-pci", "flag", "off"), ("4.0", "net", "flag", "on"))
    assert cat.default("net", "flag", V("3.0")) is True


def test_property_existence_follows_since_and_until() -> None:
    cat = _catalogue()
    assert "newprop" not in cat.properties("net", V("4.2"))
    assert "newprop" in cat.properties("net", V("5.0"))
    with pytest.raises(UnknownPropertyError, match=r"in version 4.2 .*from 5.0"):
        cat.property("net", "newprop", V("4.2"))


def test_a_property_may_change_type() -> None:
    cat = _catalogue()
    assert cat.properties("net", V("5.2"))["width"].type.kind == "uint8"
    assert cat.properties("net", V("6.0"))["width"].type.kind == "int32"
    assert cat.default("net", "width", V("5.0")) == 1
    assert cat.default("net", "width", V("7.0")) == -1
    with pytest.raises(PropertyValueError):
        cat.parse_value("net", "width", "-1", V("5.0"))
    assert cat.parse_value("net", "width", "-1", V("6.0")) == -1


def test_devices_exist_from_their_version() -> None:
    cat = _catalogue()
    assert "net" not in cat.devices(V("1.7"))
    with pytest.raises(UnknownDeviceError, match=r"exists from 2.0"):
        cat.device("net", V("1.7"))
    with pytest.raises(UnknownDeviceError):
        cat.device("virtio-pci", V("5.0"))  # abstract


def test_unknown_property_suggests_a_near_name() -> None:
    with pytest.raises(UnknownPropertyError, match="did you mean 'vectors'"):
        _catalogue().property("net", "vector", V("5.0"))


def test_out_of_range_value_names_the_range() -> None:
    with pytest.raises(PropertyValueError, match=r"vectors=5000 .*0\.\.2048"):
        _catalogue().parse_value("net", "vectors", "5000", V("5.0"))


def test_compat_entries_must_name_real_drivers_and_properties() -> None:
    with pytest.raises(CatalogueError, match="does not exist"):
        _catalogue(("4.0", "no-such-driver", "flag", "off"))
    with pytest.raises(CatalogueError, match="no property"):
        _catalogue(("4.0", "net", "no-such-prop", "off"))


# -- the built-in catalogue ------------------------------------------------------------

REQUIRED_DEVICES = {
    "virtio-net-pci",
    "virtio-blk-pci",
    "virtio-scsi-pci",
    "virtio-balloon-pci",
    "virtio-rng-pci",
    "virtio-serial-pci",
    "e1000",
    "e1000e",
    "rtl8139",
    "vmxnet3",
    "nvme",
    "qemu-xhci",
    "ich9-ahci",
    "intel-hda",
    "megasas",
    "pvpanic-pci",
    "usb-ehci",
}


def test_builtin_catalogue_models_the_required_devices() -> None:
    cat = builtin_catalogue()
    missing = REQUIRED_DEVICES - set(cat.concrete)
    assert not missing, f"devices not modelled yet: {sorted(missing)}"


def test_every_builtin_compat_value_parses_at_its_version() -> None:
    cat = builtin_catalogue()
    for entry in cat.compat:
        for driver in cat.subtypes(entry.driver):
            if not cat.types[driver].abstract and entry.prop in cat.properties(
                driver, entry.version
            ):
                cat.default(driver, entry.prop, entry.version)


def test_every_concrete_type_has_a_builder_and_an_example_that_realizes() -> None:
    from compatlab.config import Config, parse_device_string
    from compatlab.realize import realize

    cat = builtin_catalogue()
    for name in cat.concrete:
        assert (cat.types[name].builder or name) in registered_builders()
        t = cat.types[name]
        config = Config((parse_device_string(t.example or name),))
        realized = realize(config, t.since)
        assert realized.devices[0].space.read(0, 2) not in (0, 0xFFFF)


def test_interesting_values_of_a_property_by_type() -> None:
    """One table for the sweep and the strategies: a bounded integer gives the spread
    within its bounds, then its maximum, one past it and a malformed number."""
    cat = builtin_catalogue()
    rombar = cat.properties("e1000", cat.versions[-1])["rombar"]
    assert rombar.type.bounds is not None
    high = rombar.type.bounds[1]
    values = property_values(rombar)
    assert values[:3] == ["0", "1", "2"]
    assert values[-3:] == [str(high), str(high + 1), "x"]
    assert property_values(rombar, SUITE_SPREAD, edges=False) == [str(v) for v in SUITE_SPREAD]
    multifunction = cat.properties("e1000", cat.versions[-1])["multifunction"]
    assert property_values(multifunction) == ["on", "off"]
