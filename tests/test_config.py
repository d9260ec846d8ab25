"""Config parsing: -device strings, JSON and TOML files, and what is refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from compatlab.config import (
    Config,
    DeviceSpec,
    PciAddress,
    build_config,
    load_config_file,
    parse_config_data,
    parse_device_string,
    parse_vcpus,
)
from compatlab.errors import AddressError, ConfigError


def test_device_string_with_id_addr_and_properties() -> None:
    spec = parse_device_string("virtio-net-pci,id=net0,addr=03.0,vectors=4,mac=52:54:00:12:34:56")
    assert spec.driver == "virtio-net-pci"
    assert spec.id == "net0"
    assert spec.addr == PciAddress(3, 0)
    assert spec.props == {"vectors": "4", "mac": "52:54:00:12:34:56"}


def test_driver_may_be_named_and_bare_flags_mean_on() -> None:
    spec = parse_device_string("id=n,driver=e1000,multifunction")
    assert spec.driver == "e1000"
    assert spec.props == {"multifunction": "on"}


def test_double_comma_is_a_literal_comma() -> None:
    assert parse_device_string("e1000,romfile=a,,b").props == {"romfile": "a,b"}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["vectors", "romfile", "x", "serial"]),
            st.text(st.characters(codec="ascii", exclude_characters="="), max_size=8),
        ),
        unique_by=lambda kv: kv[0],
        max_size=4,
    )
)
@example([("romfile", ",,,")])
def test_device_string_round_trip(pairs: list[tuple[str, str]]) -> None:
    spec = DeviceSpec("e1000", "nic0", PciAddress(4, 1), tuple(pairs))
    assert parse_device_string(spec.to_device_string()) == spec


def test_addresses() -> None:
    assert PciAddress.parse("1f.7") == PciAddress(0x1F, 7)
    assert PciAddress.parse("0x04") == PciAddress(4, 0)
    assert str(PciAddress(0x0A, 2)) == "0a.2"


BAD_DEVICE_STRINGS = {
    "empty": "",
    "no-driver": "id=x",
    "slot-0-host-bridge": "e1000,addr=00.0",
    "slot-1-isa-bridge": "e1000,addr=01.0",
    "slot-past-1f": "e1000,addr=20.0",
    "function-8": "e1000,addr=03.8",
    "garbage-addr": "e1000,addr=zz",
    "duplicate-property": "e1000,mac=52:54:00:00:00:01,mac=52:54:00:00:00:02",
    "driver-twice": "e1000,driver=rtl8139",
    "trailing-comma": "e1000,",
    "bad-id": "e1000,id=0abc",
}


@pytest.mark.parametrize("text", BAD_DEVICE_STRINGS.values(), ids=BAD_DEVICE_STRINGS.keys())
def test_bad_device_strings_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_device_string(text)


def test_slot_zero_explains_itself() -> None:
    with pytest.raises(AddressError, match="host and ISA bridges"):
        PciAddress.parse("00.0")


def test_json_and_toml_files(tmp_path: Path) -> None:
    data = {
        "devices": [{"driver": "e1000", "id": "nic0", "addr": "05.0", "properties": {"rombar": 0}}]
    }
    (tmp_path / "c.json").write_text(json.dumps(data))
    (tmp_path / "c.toml").write_text(
        '[[devices]]\ndriver = "e1000"\nid = "nic0"\naddr = "05.0"\n[devices.properties]\nrombar = 0\n'
    )
    expected = Config((DeviceSpec("e1000", "nic0", PciAddress(5), (("rombar", 0),)),))
    assert load_config_file(tmp_path / "c.json") == expected
    assert load_config_file(tmp_path / "c.toml") == expected


def test_a_file_may_give_the_vcpu_count(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps({"machine": {"vcpus": 4}, "devices": ["e1000"]}))
    (tmp_path / "c.toml").write_text('devices = ["e1000"]\n[machine]\nvcpus = 4\n')
    expected = Config((DeviceSpec("e1000"),), vcpus=4)
    assert load_config_file(tmp_path / "c.json") == expected
    assert load_config_file(tmp_path / "c.toml") == expected
    assert parse_config_data(expected.to_json(), "x") == expected
    assert load_config_file(tmp_path / "c.json").options() == ["-smp 4", "-device e1000"]
    # A config that gives none leaves it unset (not 1): the hints may give it.
    assert parse_config_data({"devices": ["e1000"]}, "x").vcpus is None
    assert "machine" not in Config((DeviceSpec("e1000"),)).to_json()


def test_the_command_line_vcpus_beats_the_files_and_two_files_must_agree(tmp_path: Path) -> None:
    for name, n in (("a.json", 2), ("b.json", 2), ("c.json", 3)):
        (tmp_path / name).write_text(json.dumps({"machine": {"vcpus": n}, "devices": []}))
    a, b, c = (tmp_path / n for n in ("a.json", "b.json", "c.json"))
    assert build_config([a, b]).vcpus == 2
    assert build_config([a], vcpus=8).vcpus == 8
    assert build_config([a, c], vcpus=8).vcpus == 8
    assert build_config([], ["e1000"]).vcpus is None
    with pytest.raises(ConfigError, match=r"machine\.vcpus=3, but .*a\.json gives 2"):
        build_config([a, c])


@pytest.mark.parametrize(
    "text,says",
    [("0", "out of range (1..255"), ("256", "out of range"), ("-1", "out of range"),
     ("4.0", "not an integer"), ("four", "not an integer"), ("", "not an integer")],
)  # fmt: skip
def test_bad_vcpu_counts_on_the_command_line(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        parse_vcpus(text)


BAD_FILES = {
    "malformed-json": ("c.json", "{"),
    "malformed-toml": ("c.toml", "devices = ["),
    "not-utf8": ("c.json", b"\xff\xfe"),
    "devices-not-list": ("c.json", '{"devices": 3}'),
    "unknown-top-key": ("c.json", '{"devices": [], "extra": 1}'),
    "unknown-device-key": ("c.json", '{"devices": [{"driver": "e1000", "bus": "x"}]}'),
    "float-value": ("c.json", '{"devices": [{"driver": "e1000", "properties": {"rombar": 1.5}}]}'),
    "nested-value": ("c.json", '{"devices": [{"driver": "e1000", "properties": {"rombar": [1]}}]}'),
    "device-not-table": ("c.json", '{"devices": [3]}'),
    "deep-nesting": ("c.json", "[" * 100000 + "]" * 100000),
    "vcpus-zero": ("c.json", '{"machine": {"vcpus": 0}, "devices": []}'),
    "vcpus-negative": ("c.json", '{"machine": {"vcpus": -2}, "devices": []}'),
    "vcpus-over-i440fx": ("c.json", '{"machine": {"vcpus": 256}, "devices": []}'),
    "vcpus-float": ("c.json", '{"machine": {"vcpus": 2.0}, "devices": []}'),
    "vcpus-string": ("c.toml", 'devices = []\n[machine]\nvcpus = "4"\n'),
    "vcpus-boolean": ("c.toml", "devices = []\n[machine]\nvcpus = true\n"),
    "machine-not-table": ("c.json", '{"machine": 4, "devices": []}'),
    "machine-unknown-key": ("c.json", '{"machine": {"cpus": 4}, "devices": []}'),
}


@pytest.mark.parametrize("name,content", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_config_files_are_refused(tmp_path: Path, name: str, content: str | bytes) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ConfigError):
        load_config_file(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config_file(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="directory"):
        load_config_file(tmp_path)


def test_a_file_may_hold_device_strings() -> None:
    config = parse_config_data({"devices": ["e1000,id=a"]}, "inline")
    assert config.devices[0].id == "a"


def test_a_config_holds_as_many_devices_as_bus_0_has_functions(tmp_path: Path) -> None:
    """Slots 02..1f, 8 functions each: 240 devices fit, the 241st is refused before
    anything is parsed, from a file, from -device strings, or from both."""
    from compatlab.config import MAX_DEVICES, build_config

    assert MAX_DEVICES == 30 * 8
    full = [f"e1000,addr={2 + n // 8:02x}.{n % 8}" for n in range(MAX_DEVICES)]
    assert len(parse_config_data({"devices": full}, "inline").devices) == MAX_DEVICES
    with pytest.raises(ConfigError, match="inline: 241 devices is more than the 240"):
        parse_config_data({"devices": [*full, "e1000"]}, "inline")
    assert len(build_config((), full).devices) == MAX_DEVICES
    with pytest.raises(ConfigError, match="241 -device options is more than the 240"):
        build_config((), [*full, "e1000"])
    half = tmp_path / "half.json"
    half.write_text(json.dumps(full[:120]))
    with pytest.raises(ConfigError, match=r"half\.json: 241 devices is more than the 240"):
        build_config([half], full[:121])


def test_names_and_values_are_text_that_hints_can_hold() -> None:
    from compatlab.config import MAX_TEXT_BYTES

    longest = "x" * MAX_TEXT_BYTES
    assert parse_device_string(f"e1000,romfile={longest}").props["romfile"] == longest
    with pytest.raises(ConfigError, match="'romfile' is 65536 bytes long"):
        parse_device_string(f"e1000,romfile={longest}x")
    with pytest.raises(ConfigError, match="'romfile' is 65537 bytes long"):
        parse_device_string(f"e1000,romfile={longest[2:]}\u00e9\u00e9")  # two bytes each
    with pytest.raises(ConfigError, match="lone surrogate at character 3"):
        parse_device_string("e1000,romfile=pxe\udcff.rom")  # a non-UTF-8 command line


def test_a_long_device_string_is_abbreviated_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        parse_device_string("e1000," + "x=1," * 10_000 + ",")
    assert "…(40007 characters)" in str(info.value) and len(str(info.value)) < 200
