"""The resolver's rules with compat hints (DESIGN.md §1), one test per rule."""

from __future__ import annotations

import pytest

from compatlab.config import Config, parse_device_string
from compatlab.errors import HintsVersionError, UnknownVersionError
from compatlab.hints import Hints, decode, encode
from compatlab.realize import realize
from compatlab.resolve import IgnoredReason, Source, dump_hints, resolve
from compatlab.versions import Version


def _config(*strings: str) -> Config:
    return Config(tuple(parse_device_string(s) for s in strings))


NET = _config("virtio-net-pci,id=net0,netdev=n0")


def test_rule_1_config_beats_hints() -> None:
    hints = dump_hints(NET, "2.4")  # 2.4 pinned vectors=3 and disable-modern=on
    config = _config("virtio-net-pci,id=net0,netdev=n0,vectors=7,disable-modern=off")
    props = resolve(config, "10.0", hints=hints).devices[0].properties
    assert (props["vectors"].value, props["vectors"].source) == (7, Source.CONFIG)
    assert (props["disable-modern"].value, props["disable-modern"].source) == (False, Source.CONFIG)


def test_rule_1_explicit_value_equal_to_the_hint_is_still_config() -> None:
    hints = dump_hints(NET, "2.4")
    config = _config("virtio-net-pci,id=net0,netdev=n0,vectors=3")
    assert (
        resolve(config, "10.0", hints=hints).devices[0].properties["vectors"].source
        is Source.CONFIG
    )


def test_rule_2_a_hinted_property_beats_the_default() -> None:
    hints = dump_hints(NET, "2.4")
    props = resolve(NET, "10.0", hints=hints).devices[0].properties
    # hw_compat_2_6: disable-modern=on; pc_compat (5.2): vectors=3 — pinned by the hints.
    assert (props["disable-modern"].value, props["disable-modern"].source) == (True, Source.HINT)
    assert props["vectors"].source is Source.HINT
    assert props["vectors"].value == 3


def test_rule_3_a_property_newer_than_the_hints_takes_its_history() -> None:
    nvme = _config("nvme,id=n0,serial=abc")
    hints = dump_hints(nvme, "5.0")
    props = resolve(nvme, "10.0", hints=hints).devices[0].properties
    assert "use-intel-id" not in hints.entries[0].props
    # hw_compat_5_1: use-intel-id=on; hw_compat_9_1: x-pcie-ext-tag=false
    assert (props["use-intel-id"].value, props["use-intel-id"].source) == (True, Source.HISTORY)
    assert (props["x-pcie-ext-tag"].value, props["x-pcie-ext-tag"].source) == (
        False,
        Source.HISTORY,
    )


def test_rule_4_no_hint_means_the_default() -> None:
    hints = dump_hints(NET, "2.4")
    other = _config("virtio-net-pci,id=net1,netdev=n0")
    props = resolve(other, "10.0", hints=hints).devices[0].properties
    assert {r.source for n, r in props.items() if n != "netdev"} == {Source.DEFAULT}
    assert (
        realize(other, "10.0", hints=hints).devices[0].space
        == realize(other, "10.0").devices[0].space
    )


def test_hints_for_absent_devices_are_ignored_and_reported() -> None:
    hints = dump_hints(_config("e1000,id=gone", "virtio-net-pci,id=net0,netdev=n0"), "7.2")
    resolved = resolve(NET, "10.0", hints=hints)
    assert [(h.identity, h.driver) for h in resolved.ignored_hints] == [("gone", "e1000")]
    assert "no device" in resolved.ignored_hints[0].reason
    assert resolved.ignored_hints[0].kind is IgnoredReason.NOT_IN_CONFIG


def test_a_hint_with_another_driver_is_ignored_and_reported() -> None:
    hints = dump_hints(_config("e1000,id=net0"), "7.2")
    resolved = resolve(NET, "10.0", hints=hints)
    (ignored,) = resolved.ignored_hints
    assert (ignored.identity, ignored.driver) == ("net0", "e1000")
    assert "virtio-net-pci" in ignored.reason
    assert ignored.kind is IgnoredReason.DRIVER_DIFFERS
    sources = {r.source for n, r in resolved.devices[0].properties.items() if n != "netdev"}
    assert sources == {Source.DEFAULT}


def test_identity_is_the_address_without_an_id() -> None:
    config = _config("virtio-net-pci,addr=05.0,netdev=n0")
    hints = dump_hints(config, "2.4")
    assert hints.entries[0].identity == "05.0"
    assert (
        resolve(config, "10.0", hints=hints).devices[0].properties["vectors"].source is Source.HINT
    )


def test_hints_from_a_newer_version_are_refused() -> None:
    with pytest.raises(HintsVersionError, match="no downgrades"):
        resolve(NET, "7.2", hints=dump_hints(NET, "8.0"))


def test_hints_from_an_unknown_version_are_refused() -> None:
    with pytest.raises(UnknownVersionError):
        resolve(NET, "10.0", hints=Hints(Version(3, 7)))


def test_a_hinted_value_that_no_longer_fits_takes_its_history() -> None:
    # intel-hda's msi was a number until 2.7 and is on/off/auto since; QEMU 10.0 on
    # machine type 2.4 has msi=auto (no compat entry), and so does the model.
    hda = _config("intel-hda,id=hda")
    hints = dump_hints(hda, "2.4")
    assert hints.entries[0].props["msi"] == 1
    resolved = resolve(hda, "10.0", hints=hints)
    msi = resolved.devices[0].properties["msi"]
    assert (msi.value, msi.source) == ("auto", Source.HISTORY)
    (ignored,) = resolved.ignored_hints
    assert "msi=1" in ignored.reason and "does not fit" in ignored.reason
    assert ignored.kind is IgnoredReason.VALUE_DOES_NOT_FIT


def test_same_version_round_trip_through_the_file_format() -> None:
    config = _config("virtio-net-pci,id=net0,netdev=n0", "nvme,id=d,serial=x", "e1000")
    for version in ("2.4", "7.2", "10.0"):
        if version == "2.4":
            config = _config("virtio-net-pci,id=net0,netdev=n0", "e1000")
        hints = decode(encode(dump_hints(config, version)))
        again = realize(config, version, hints=hints)
        plain = realize(config, version)
        assert [d.space for d in again.devices] == [d.space for d in plain.devices]


def test_upgrade_reproduces_the_old_version() -> None:
    # realize(V, C, dump(U, C)) == realize(U, C), bytes and masks
    config = _config("virtio-net-pci,id=net0,netdev=n0", "e1000,id=e")
    for old in ("2.4", "5.0", "7.2"):
        upgraded = realize(config, "10.0", hints=dump_hints(config, old))
        original = realize(config, old)
        assert [d.space for d in upgraded.devices] == [d.space for d in original.devices]


# -- the machine's vCPU count: the same rules ------------------------------------------

BLK = _config("virtio-blk-pci,id=blk0,drive=d0")


def _queues(realized: object) -> int:
    """virtio-blk's MSI-X table size (N - 1 = its queue count, one vector per queue
    and one for config changes)."""
    space = realized.devices[0].space.config  # type: ignore[attr-defined]
    pointer = space[0x34]
    while space[pointer] != 0x11:
        pointer = space[pointer + 1]
    return int.from_bytes(space[pointer + 2 : pointer + 4], "little") & 0x7FF


def test_vcpus_come_from_the_config_else_the_hints_else_one() -> None:
    four = Config(BLK.devices, vcpus=4)
    hints = dump_hints(four, "10.0")
    assert hints.vcpus == 4
    assert vars_of(resolve(BLK, "10.0").vcpus) == (1, Source.DEFAULT)
    assert vars_of(resolve(BLK, "10.0", hints=hints).vcpus) == (4, Source.HINT)
    two = Config(BLK.devices, vcpus=2)
    assert vars_of(resolve(two, "10.0", hints=hints).vcpus) == (2, Source.CONFIG)
    # An explicit 1 is the config's, even against hints of 4 (unset is not default).
    one = Config(BLK.devices, vcpus=1)
    assert vars_of(resolve(one, "10.0", hints=hints).vcpus) == (1, Source.CONFIG)
    # A machine type carries no vCPU count: defaults_at leaves it to the config.
    assert resolve(BLK, "10.0", defaults_at="5.1").vcpus.source is Source.DEFAULT


def vars_of(resolved: object) -> tuple[object, object]:
    return (resolved.value, resolved.source)  # type: ignore[attr-defined]


def test_hints_resolve_auto_as_the_dump_did_for_a_config_that_gives_no_vcpus() -> None:
    """num-queues=65535 (auto) is what the hints hold; the vCPU count they were dumped
    with makes a reload see the queues the dump saw, through the file format too."""
    four = Config(BLK.devices, vcpus=4)
    hints = decode(encode(dump_hints(four, "10.0")))
    assert hints.entries[0].props["num-queues"] == 65535
    assert _queues(realize(four, "10.0")) == 4
    assert _queues(realize(BLK, "11.1", hints=hints)) == 4
    assert _queues(realize(BLK, "11.1")) == 1
    assert _queues(realize(Config(BLK.devices, vcpus=3), "11.1", hints=hints)) == 3


def test_auto_queue_counts_follow_the_vcpus_only_where_the_release_has_auto() -> None:
    for vcpus, version, defaults_at, queues in [
        (4, "5.2", None, 4),     # auto is the default since 5.2
        (4, "5.1", None, 1),     # 5.1 had one queue
        (4, "11.0", "5.1", 1),   # hw_compat_5_1 keeps one on the 5.1 machine type
        (255, "11.1", None, 255),
    ]:  # fmt: skip
        config = Config(BLK.devices, vcpus=vcpus)
        assert _queues(realize(config, version, defaults_at=defaults_at)) == queues
    explicit = _config("virtio-blk-pci,id=blk0,drive=d0,num-queues=65535")
    # Before 5.2, 65535 was a count like any other, past the 1024 queues of a device.
    with pytest.raises(Exception, match="exceeds the 1024 virtqueues"):
        realize(explicit, "5.1")
    # (11.0 is the last release that offers the 5.1 machine type)
    assert _queues(realize(Config(explicit.devices, vcpus=3), "11.0", defaults_at="5.1")) == 3
