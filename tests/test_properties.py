"""Property values are read as QEMU reads them (compatlab/catalogue/properties.py).

What QEMU's parsers take (``qemu_strtou64``/``qemu_strtoi64`` with base 0,
``qemu_strtosz``, ``qapi_bool_parse``, ``qapi_enum_parse``, ``set_mac``) gives one
canonical value however it is spelled; what they refuse is a one-line error naming
the property (and, for a number, its range), through the public API and through
the CLI alike. Digit separators, other digits than ASCII, a second sign, white
space after a number and numbers of any length are refused, the last in time
linear in their length.
"""

from __future__ import annotations

import json
import time

import pytest

import compatlab
from compatlab.catalogue.properties import PropType
from compatlab.cli.main import main
from compatlab.errors import PropertyParseError, PropertyValueError

U64_MAX = 2**64 - 1

# id: (-device string, property, the value QEMU gives it)
ACCEPTED = {
    "decimal": ("virtio-net-pci,vectors=10", "vectors", 10),
    "hex": ("virtio-net-pci,vectors=0x1F", "vectors", 31),
    "hex-upper-x": ("virtio-net-pci,vectors=0X1f", "vectors", 31),
    "octal": ("virtio-net-pci,vectors=010", "vectors", 8),
    "leading-white-space": ("virtio-net-pci,vectors= \t4", "vectors", 4),
    "plus-sign": ("virtio-net-pci,vectors=+4", "vectors", 4),
    "minus-zero": ("virtio-net-pci,vectors=-0", "vectors", 0),
    "leading-zeros-past-the-width": ("virtio-net-pci,vectors=" + "0" * 100 + "17", "vectors", 15),
    "uint64-minus-one-wraps": ("megasas,sas_address=-1", "sas_address", U64_MAX),
    "int32-negative": ("e1000,bootindex=-5", "bootindex", -5),
    "int32-minimum": ("e1000,bootindex=-2147483648", "bootindex", -(2**31)),
    "size-plain": ("e1000,x-max-bounce-buffer-size=4096", "x-max-bounce-buffer-size", 4096),
    "size-suffix": ("e1000,x-max-bounce-buffer-size=4k", "x-max-bounce-buffer-size", 4096),
    "size-suffix-upper": ("e1000,x-max-bounce-buffer-size=1M", "x-max-bounce-buffer-size", 2**20),
    "size-fraction": ("e1000,x-max-bounce-buffer-size=1.5k", "x-max-bounce-buffer-size", 1536),
    "size-half-byte-rounds-up": (
        "e1000,x-max-bounce-buffer-size=0.00048828125k",
        "x-max-bounce-buffer-size",
        1,
    ),
    "size-byte-suffix": ("e1000,x-max-bounce-buffer-size=512B", "x-max-bounce-buffer-size", 512),
    "size-hex": ("e1000,x-max-bounce-buffer-size=0x1000", "x-max-bounce-buffer-size", 4096),
    "size-whole-fraction": ("e1000,x-max-bounce-buffer-size=7.0", "x-max-bounce-buffer-size", 7),
    "size-decimal-leading-zero": (
        "e1000,x-max-bounce-buffer-size=010",
        "x-max-bounce-buffer-size",
        10,
    ),
    "bool-on": ("e1000,multifunction=on", "multifunction", True),
    "bool-yes": ("e1000,multifunction=yes", "multifunction", True),
    "bool-y": ("e1000,multifunction=y", "multifunction", True),
    "bool-true": ("e1000,multifunction=true", "multifunction", True),
    "bool-no": ("e1000,multifunction=no", "multifunction", False),
    "bool-n": ("e1000,multifunction=n", "multifunction", False),
    "bare-flag-is-on": ("e1000,multifunction", "multifunction", True),
    "onoffauto": ("nvme,serial=x,write-cache=auto", "write-cache", "auto"),
    "mac-colons": ("e1000,mac=52:54:00:AB:cd:ef", "mac", "52:54:00:ab:cd:ef"),
    "mac-dashes": ("e1000,mac=52-54-00-ab-cd-ef", "mac", "52:54:00:ab:cd:ef"),
}

FIVE_THOUSAND_NINES = "9" * 5000

# id: (-device string, what the one-line error must say)
REFUSED = {
    "digit-separator": ("virtio-net-pci,vectors=1_0", "vectors=1_0 is invalid for virtio-net-pci"),
    "double-sign": ("virtio-net-pci,vectors=--5", "vectors=--5 is invalid"),
    "plus-minus": ("virtio-net-pci,vectors=+-5", "not an integer"),
    "arabic-indic-digit": ("virtio-net-pci,vectors=\u0663", "not an integer"),
    "fullwidth-digit": ("virtio-net-pci,vectors=\uff14", "not an integer"),
    "superscript-digit": ("virtio-net-pci,vectors=\u00b2", "not an integer"),
    "trailing-space": ("virtio-net-pci,vectors=4 ", "not an integer"),
    "empty": ("virtio-net-pci,vectors=", "not an integer"),
    "hex-without-digits": ("virtio-net-pci,vectors=0x", "not an integer"),
    "octal-with-8": ("virtio-net-pci,vectors=08", "not an integer"),
    "float": ("virtio-net-pci,vectors=4.0", "not an integer"),
    "exponent": ("virtio-net-pci,vectors=1e3", "not an integer"),
    "5000-digits": (
        f"virtio-net-pci,vectors={FIVE_THOUSAND_NINES}",
        "(5000 characters) is invalid for virtio-net-pci: out of range (0..4294967295)",
    ),
    "5000-digit-hex": (f"virtio-net-pci,vectors=0x{'f' * 5000}", "out of range (0..4294967295)"),
    "negative-unsigned": ("virtio-net-pci,vectors=-5", "out of range (0..4294967295)"),
    "one-past-uint32": ("virtio-net-pci,vectors=4294967296", "out of range (0..4294967295)"),
    "one-past-uint64": ("megasas,sas_address=18446744073709551616", "out of range (0..1844674"),
    "uint64-minus-two-to-the-64": (
        "megasas,sas_address=-18446744073709551616",
        "out of range (0..18446744073709551615)",
    ),
    "int32-overflow": ("e1000,bootindex=2147483648", "out of range (-2147483648..2147483647)"),
    "int32-underflow": ("e1000,bootindex=-2147483649", "out of range (-2147483648..2147483647)"),
    "size-negative": ("e1000,x-max-bounce-buffer-size=-1", "not a size"),
    "size-exponent": ("e1000,x-max-bounce-buffer-size=1e3", "not a size"),
    "size-fraction-exponent": ("e1000,x-max-bounce-buffer-size=1.5e3", "not a size"),
    "size-two-letter-suffix": ("e1000,x-max-bounce-buffer-size=4kB", "not a size"),
    "size-iec-suffix": ("e1000,x-max-bounce-buffer-size=4KiB", "not a size"),
    "size-hex-with-suffix": ("e1000,x-max-bounce-buffer-size=0x10k", "not a size"),
    "size-hex-fraction": ("e1000,x-max-bounce-buffer-size=0x1.8", "not a size"),
    "size-space-before-suffix": ("e1000,x-max-bounce-buffer-size=4 k", "not a size"),
    "size-digit-separator": ("e1000,x-max-bounce-buffer-size=4_096", "not a size"),
    "size-fraction-of-a-byte": ("e1000,x-max-bounce-buffer-size=1.5", "a fraction of a byte"),
    "size-overflow": ("e1000,x-max-bounce-buffer-size=16E", "out of range (0..1844674"),
    "size-5000-digits": (
        f"e1000,x-max-bounce-buffer-size={FIVE_THOUSAND_NINES}k",
        "out of range (0..18446744073709551615)",
    ),
    "bool-upper-case": ("e1000,multifunction=ON", "expected on or off"),
    "bool-capitalised": ("e1000,multifunction=Yes", "expected on or off"),
    "bool-number": ("e1000,multifunction=1", "expected on or off"),
    "bool-padded": ("e1000,multifunction= on", "expected on or off"),
    "onoffauto-upper-case": ("nvme,serial=x,write-cache=AUTO", "expected on, off or auto"),
    "mac-no-separators": ("e1000,mac=525400123456", "expected a MAC address"),
    "mac-short": ("e1000,mac=52:54:00:12:34", "expected a MAC address"),
    "mac-non-ascii-hex": ("e1000,mac=52:54:00:12:34:\uff15\uff16", "expected a MAC address"),
}


def _resolved(device: str, name: str) -> compatlab.Resolved:
    config = compatlab.Config((compatlab.parse_device_string(device),))
    (dev,) = compatlab.resolve(config, compatlab.NEWEST).devices
    return dev.properties[name]


@pytest.mark.parametrize(("device", "name", "value"), ACCEPTED.values(), ids=ACCEPTED.keys())
def test_what_qemu_takes_gives_its_value(device: str, name: str, value: object) -> None:
    resolved = _resolved(device, name)
    assert resolved.value == value and type(resolved.value) is type(value)
    assert resolved.source == compatlab.Source.CONFIG


@pytest.mark.parametrize(("device", "name", "value"), ACCEPTED.values(), ids=ACCEPTED.keys())
def test_the_cli_realizes_what_qemu_takes(
    device: str, name: str, value: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["realize", "--device", device, "--format", "json"]) == 0
    (dev,) = json.loads(capsys.readouterr().out)["devices"]
    assert dev["properties"][name] == {"value": value, "source": "config"}


@pytest.mark.parametrize(("device", "said"), REFUSED.values(), ids=REFUSED.keys())
def test_what_qemu_refuses_is_one_short_line(device: str, said: str) -> None:
    started = time.perf_counter()
    with pytest.raises(PropertyValueError) as info:
        _resolved(device, device.rsplit(",", 1)[1].split("=")[0])
    assert time.perf_counter() - started < 5
    message = str(info.value)
    assert said in message and "\n" not in message and len(message) < 200, message


@pytest.mark.parametrize(("device", "said"), REFUSED.values(), ids=REFUSED.keys())
def test_the_cli_refuses_it_with_exit_2(
    device: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["realize", "--device", device]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("compatlab: error: "), lines
    assert said in lines[0]


def test_numbers_are_refused_in_time_linear_in_their_length() -> None:
    """Significant digits are counted before anything is converted: a million digits
    (past Python's own 4300-digit limit for int()) is refused as fast as twenty."""
    uint32 = PropType("uint32")
    for digits in ("9" * 10**6, "0x" + "f" * 10**6, "0" * 10**6 + "1" * 30):
        started = time.perf_counter()
        with pytest.raises(PropertyParseError, match=r"out of range \(0\.\.4294967295\)"):
            uint32.parse(digits)
        assert time.perf_counter() - started < 1
    assert uint32.parse("0" * 10**6 + "7") == 7


def test_file_values_of_the_right_type_are_taken_as_they_are() -> None:
    """A JSON/TOML integer or boolean needs no spelling; a huge one is out of range."""
    assert PropType("uint32").parse(7) == 7
    assert PropType("bool").parse(False) is False
    assert PropType("onoffauto").parse(True) == "on"
    with pytest.raises(PropertyParseError, match="out of range"):
        PropType("uint32").parse(10**4000)
    with pytest.raises(PropertyParseError, match="not a boolean"):
        PropType("uint32").parse(True)
