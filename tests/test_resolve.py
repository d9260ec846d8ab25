"""Resolution without hints: sources, address assignment and refusals."""

from __future__ import annotations

import pytest

from compatlab.config import Config, PciAddress, parse_device_string
from compatlab.errors import (
    AddressError,
    ConfigError,
    PropertyValueError,
    UnknownDeviceError,
    UnknownPropertyError,
)
from compatlab.realize import realize
from compatlab.resolve import Source, assign_addresses, resolve


def _config(*strings: str) -> Config:
    return Config(tuple(parse_device_string(s) for s in strings))


def test_every_property_gets_a_value_and_a_source() -> None:
    resolved = resolve(_config("pvpanic-pci,id=p,romsize=4096"), "10.0")
    props = resolved.devices[0].properties
    assert props["romsize"].value == 4096
    assert props["romsize"].source is Source.CONFIG
    assert props["multifunction"].source is Source.DEFAULT
    assert props["multifunction"].value is False


def test_explicit_value_equal_to_default_is_still_config() -> None:
    props = resolve(_config("pvpanic-pci,multifunction=off"), "10.0").devices[0].properties
    assert props["multifunction"].source is Source.CONFIG


def test_defaults_at_an_older_version_are_history() -> None:
    props = resolve(_config("pvpanic-pci"), "10.0", defaults_at="9.1").devices[0].properties
    assert props["x-pcie-ext-tag"].value is False  # hw_compat_9_1
    assert props["x-pcie-ext-tag"].source is Source.HISTORY
    assert (
        resolve(_config("pvpanic-pci"), "10.0").devices[0].properties["x-pcie-ext-tag"].value
        is True
    )


def test_properties_that_do_not_exist_yet_are_absent() -> None:
    props = resolve(_config("pvpanic-pci"), "7.2").devices[0].properties
    assert "x-pcie-ext-tag" not in props
    with pytest.raises(UnknownPropertyError, match=r"in version 7.2"):
        resolve(_config("pvpanic-pci,x-pcie-ext-tag=on"), "7.2")


def test_automatic_addresses_follow_config_order() -> None:
    # QEMU -nodefaults: first free slot from 02, in config order.
    config = _config("pvpanic-pci", "pvpanic-pci,addr=02.1", "pvpanic-pci", "pvpanic-pci,addr=05.0")
    assert assign_addresses(config) == [
        PciAddress(2),
        PciAddress(2, 1),
        PciAddress(3),
        PciAddress(5),
    ]


def test_an_explicit_address_taken_by_an_earlier_automatic_one_clashes() -> None:
    with pytest.raises(AddressError, match="not available"):
        assign_addresses(_config("pvpanic-pci", "pvpanic-pci,addr=02.0"))


def test_functions_need_a_multifunction_function_zero() -> None:
    with pytest.raises(AddressError, match="single function"):
        realize(_config("pvpanic-pci,addr=03.0", "pvpanic-pci,addr=03.1"), "10.0")
    ok = realize(_config("pvpanic-pci,addr=03.0,multifunction=on", "pvpanic-pci,addr=03.1"), "10.0")
    assert ok.devices[0].space.config[0x0E] & 0x80
    with pytest.raises(AddressError, match="indicates single function"):
        realize(_config("pvpanic-pci,addr=03.1", "pvpanic-pci,addr=03.0"), "10.0")


@pytest.mark.parametrize(
    "strings,error",
    [
        (("pvpanic",), UnknownDeviceError),
        (("pvpanic-pci,romsize=3",), ConfigError),
        (("pvpanic-pci,multifunction=maybe",), PropertyValueError),
        (("pvpanic-pci,romsize=-1",), PropertyValueError),
        (("pvpanic-pci,id=a", "pvpanic-pci,id=a"), ConfigError),
        (("pvpanic-pci,romfile=no-such.rom",), ConfigError),
    ],
    ids=[
        "unknown-driver",
        "romsize-not-pow2",
        "bad-bool",
        "negative-uint",
        "duplicate-id",
        "missing-romfile",
    ],
)
def test_refusals(strings: tuple[str, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        realize(_config(*strings), "10.0")


def test_a_device_before_it_existed_is_refused() -> None:
    with pytest.raises(UnknownDeviceError, match=r"in version 5.2"):
        resolve(_config("pvpanic-pci"), "5.2")


def test_unknown_driver_suggests() -> None:
    with pytest.raises(UnknownDeviceError, match="did you mean 'pvpanic-pci'"):
        resolve(_config("pvpanic-pc"), "10.0")


def test_option_roms_through_fw_cfg_need_distinct_names() -> None:
    # Found by the live differential test: QEMU says
    # "duplicate fw_cfg file name: genroms/efi-e1000.rom".
    with pytest.raises(ConfigError, match="duplicate fw_cfg file name"):
        realize(_config("e1000,rombar=0", "e1000,rombar=0"), "10.0")
    realize(_config("e1000,rombar=0", "e1000"), "10.0")
    realize(_config("e1000,rombar=0", "e1000,rombar=0,romfile=pxe-e1000.rom"), "10.0")
    # A ROM file QEMU does not ship is never added to fw_cfg, so it cannot clash
    # (found by the live differential test against QEMU 5.2; 7.2 and 10.0 agree).
    missing = "e1000,rombar=0,romfile=no-such-file.rom"
    for version in ("5.2", "10.0"):
        realize(_config(missing, missing), version)


def test_only_one_balloon() -> None:
    with pytest.raises(ConfigError, match="at most 1"):
        realize(_config("virtio-balloon-pci", "virtio-balloon-pci"), "10.0")


def test_a_boot_index_is_taken_once() -> None:
    # Found by model-matches-qemu once configs drew every settable property: QEMU 5.2
    # says "-device e1000,id=dev2,bootindex=0: The bootindex 0 has already been used".
    with pytest.raises(ConfigError, match="The bootindex 0 has already been used"):
        realize(_config("e1000,bootindex=0", "rtl8139,bootindex=0"), "5.2")
    realize(_config("e1000,bootindex=0", "rtl8139,bootindex=1"), "5.2")
    # -1, the default, is no place in the boot order
    realize(_config("e1000,bootindex=-1", "rtl8139,bootindex=-1", "e1000"), "10.0")


def test_a_read_only_property_is_refused_as_qemu_refuses_it() -> None:
    # QEMU 10.0 and 11.1: "Property 'e1000.busnr' is not writable" (data: readonly)
    with pytest.raises(ConfigError, match="Property 'e1000.busnr' is not writable"):
        realize(_config("e1000,busnr=0"), "10.0")
    # it still has a value, as every property QEMU lists does
    dev = resolve(_config("e1000"), "10.0").devices[0]
    assert "busnr" in dev.properties
