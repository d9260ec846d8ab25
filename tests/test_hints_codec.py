"""The compat-hints file format: round trip, canonical form and hostile input."""

from __future__ import annotations

import struct
import time
import zlib

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from compatlab.errors import HintsFormatError
from compatlab.hints import MAGIC, MAX_SIZE, HintEntry, Hints, decode, encode
from compatlab.hints.codec import SECTION_DEVICE, SECTION_MACHINE
from compatlab.versions import Version
from strategies.hints import arbitrary_hints, mutated_blobs

EVERY_TYPE = HintEntry(
    "net0",
    "virtio-net-pci",
    (
        ("unset", None),
        ("off", False),
        ("on", True),
        ("zero", 0),
        ("max", 2**64 - 1),
        ("min", -(2**63)),
        ("text", "efi-virtio.rom"),
        ("empty", ""),
        ("unicode", "päß ✓"),
    ),
)


@given(arbitrary_hints())
@example(Hints(Version(10, 0)))
@example(Hints(Version(1, 4), (EVERY_TYPE,)))
@example(Hints(Version(7, 2), (HintEntry("x" * 0xFFFF, "e1000", (("romfile", "y" * 0xFFFF),)),)))
@example(Hints(Version(11, 1), (EVERY_TYPE,), vcpus=4))
@example(Hints(Version(5, 2), vcpus=255))
def test_decode_is_the_inverse_of_encode(hints: Hints) -> None:
    blob = encode(hints)
    assert decode(blob) == hints
    assert encode(decode(blob)) == blob


@given(arbitrary_hints(), st.randoms())
def test_encoding_is_canonical(hints: Hints, rnd: object) -> None:
    # The same facts in another order are the same hints and the same bytes.
    entries = list(hints.entries)
    rnd.shuffle(entries)  # type: ignore[attr-defined]
    shuffled = Hints(
        hints.version,
        tuple(HintEntry(e.identity, e.driver, tuple(reversed(e.properties))) for e in entries),
        hints.vcpus,
    )
    assert shuffled == hints
    assert encode(shuffled) == encode(hints)


def _blob(body: bytes, *, count: int = 1, fmt: int = 1, version: tuple[int, int] = (7, 2)) -> bytes:
    head = MAGIC + struct.pack("<HHHHI", fmt, 0, *version, count)
    data = head + body
    return data + struct.pack("<I", zlib.crc32(data))


def _str(s: bytes) -> bytes:
    return struct.pack("<H", len(s)) + s


def _section(body: bytes, tag: int = SECTION_DEVICE) -> bytes:
    return struct.pack("<BI", tag, len(body)) + body


def _device(
    identity: bytes = b"a", driver: bytes = b"e1000", props: bytes = b"", n: int = 0
) -> bytes:
    return _str(identity) + _str(driver) + struct.pack("<H", n) + props


def _machine(props: bytes = _str(b"vcpus") + b"\x03" + struct.pack("<Q", 4), n: int = 1) -> bytes:
    return _section(struct.pack("<H", n) + props, tag=SECTION_MACHINE)


def _vcpus(value: bytes) -> bytes:
    return _machine(_str(b"vcpus") + value)


GOOD = encode(Hints(Version(7, 2), (EVERY_TYPE,)))

CRAFTED = {
    "empty-file": (b"", "empty"),
    "one-byte": (b"C", "shorter"),
    "foreign-file": (b"\x7fELF" + bytes(60), "bad magic"),
    "text-file": (b'{"devices": []}\n', "bad magic"),
    "truncated-header": (GOOD[:20], "shorter"),
    "truncated-body": (GOOD[:-10], "checksum"),
    "bit-flip": (GOOD[:40] + bytes([GOOD[40] ^ 0x10]) + GOOD[41:], "checksum"),
    "wrong-checksum": (GOOD[:-4] + b"\0\0\0\0", "checksum"),
    "future-format": (_blob(b"", count=0, fmt=2), "format version 2 is newer"),
    "unknown-flags": (MAGIC + struct.pack("<HHHHI", 1, 4, 7, 2, 0), "shorter"),
    "huge-section-count": (_blob(b"", count=0xFFFFFFFF), "more than the file can hold"),
    "huge-section-length": (_blob(struct.pack("<BI", 1, 0x7FFFFFFF) + bytes(16)), "remain"),
    "huge-string-length": (_blob(_section(struct.pack("<H", 0xFFFF) + bytes(16))), "remain"),
    "huge-property-count": (_blob(_section(_device(n=0xFFFF))), "more than the section holds"),
    "unknown-section-type": (_blob(_section(_device(), tag=7)), "unknown section type"),
    "unknown-value-type": (
        _blob(_section(_device(props=_str(b"p") + b"\x09", n=1))),
        "unknown value type",
    ),
    "duplicate-device": (_blob(_section(_device()) * 2, count=2), "appears twice"),
    "devices-out-of-order": (
        _blob(_section(_device(b"b")) + _section(_device(b"a")), count=2),
        "out of order",
    ),
    "duplicate-property": (
        _blob(_section(_device(props=(_str(b"p") + b"\x01") * 2, n=2))),
        "appears twice",
    ),
    "bad-utf8": (_blob(_section(_device(identity=b"\xff\xfe"))), "UTF-8"),
    "empty-identity": (_blob(_section(_device(identity=b""))), "needs an identity"),
    "trailing-bytes-in-section": (_blob(_section(_device() + b"xx")), "unexpected bytes"),
    "trailing-bytes-after-sections": (_blob(_section(_device()) + b"junk"), "unexpected bytes"),
    "machine-section-after-a-device": (
        _blob(_section(_device()) + _machine(), count=2),
        "machine section after the first",
    ),
    "two-machine-sections": (_blob(_machine() * 2, count=2), "machine section after the first"),
    "empty-machine-section": (
        _blob(_machine(b"", n=0) + _section(_device(b"a" * 8)), count=2),
        "empty machine section",
    ),
    "unknown-machine-input": (
        _blob(_machine(_str(b"cpus") + b"\x03" + struct.pack("<Q", 4))),
        "unknown machine input 'cpus'",
    ),
    "vcpus-at-its-default": (_blob(_vcpus(b"\x03" + struct.pack("<Q", 1))), "is its default"),
    "vcpus-zero": (_blob(_vcpus(b"\x03" + struct.pack("<Q", 0))), "not a count in 1..255"),
    "vcpus-over-the-machine": (
        _blob(_vcpus(b"\x03" + struct.pack("<Q", 256))),
        "not a count in 1..255",
    ),
    "vcpus-negative": (_blob(_vcpus(b"\x04" + struct.pack("<q", -4))), "not a count"),
    "vcpus-a-string": (_blob(_vcpus(b"\x05" + _str(b"4"))), "not a count"),
    "vcpus-a-boolean": (_blob(_vcpus(b"\x02")), "not a count"),
    "vcpus-twice": (
        _blob(_machine((_str(b"vcpus") + b"\x03" + struct.pack("<Q", 4)) * 2, n=2)),
        "appears twice",
    ),
    "negative-marked-positive": (
        _blob(_section(_device(props=_str(b"p") + b"\x04" + struct.pack("<q", 5), n=1))),
        "non-negative",
    ),
}


@pytest.mark.parametrize("blob,message", CRAFTED.values(), ids=CRAFTED.keys())
def test_crafted_bad_files_are_refused_with_an_offset(blob: bytes, message: str) -> None:
    with pytest.raises(HintsFormatError, match=message) as info:
        decode(blob)
    assert info.value.offset is not None
    assert 0 <= info.value.offset <= max(len(blob), MAX_SIZE)


def test_hints_with_one_vcpu_are_the_bytes_of_a_file_from_before_vcpus() -> None:
    """Files written before the machine section existed decode as one vCPU and
    re-encode to themselves; one vCPU writes no machine section."""
    old = _blob(_section(_device()))  # a format-1 file as compatlab wrote it before
    hints = decode(old)
    assert hints.vcpus == 1
    assert encode(hints) == old
    assert encode(Hints(Version(7, 2), hints.entries, vcpus=1)) == old


def test_more_vcpus_are_recorded_in_a_machine_section_first() -> None:
    hints = Hints(Version(7, 2), (HintEntry("a", "e1000"),), vcpus=4)
    blob = encode(hints)
    assert blob == _blob(_machine() + _section(_device()), count=2)
    assert decode(blob).vcpus == 4
    assert struct.unpack_from("<H", blob, 8)[0] == 1, "the format version stays 1"


def test_hints_refuse_a_vcpu_count_no_machine_takes() -> None:
    for bad in (0, 256, True):
        with pytest.raises(ValueError, match="vcpus"):
            Hints(Version(7, 2), vcpus=bad)


def test_oversized_file_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(HintsFormatError, match="limit"):
        decode(GOOD + bytes(MAX_SIZE))


def test_hostile_lengths_cost_no_time() -> None:
    start = time.perf_counter()
    for blob, _ in CRAFTED.values():
        with pytest.raises(HintsFormatError):
            decode(blob)
    assert time.perf_counter() - start < 1.0


@settings(max_examples=300)
@given(st.binary(max_size=200))
@example(MAGIC)
@example(GOOD[:-1])
def test_random_bytes_only_ever_raise_the_format_error(blob: bytes) -> None:
    try:
        hints = decode(blob)
    except HintsFormatError:
        return
    assert encode(hints) == blob


@settings(max_examples=300)
@given(mutated_blobs())
def test_mutated_blobs_only_ever_raise_the_format_error(blob: bytes) -> None:
    try:
        hints = decode(blob)
    except HintsFormatError:
        return
    assert encode(hints) == blob
