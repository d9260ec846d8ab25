"""Oracle plumbing that needs no QEMU: capture records, backends, error text, verdicts."""

from __future__ import annotations

from pathlib import Path

from compatlab.oracles.capture import CaptureRecord, read_corpus, write_records
from compatlab.oracles.compare import byte_diff, check_record
from compatlab.oracles.qemu import _error_lines, backend_args

PVPANIC = "361b1100000000000100800800000000" + "00" * 28 + "f41a0011" + "00" * 16 + "00" * 192


def test_capture_records_round_trip(tmp_path: Path) -> None:
    ok = CaptureRecord("7.2", "7.2.22", "5.0", ("e1000,addr=03.0",), ("00" * 256,))
    refused = CaptureRecord("10.0", "10.0.2", "2.4", ("e1000,addr=03.0,x=1",), None, "nope")
    path = tmp_path / "c.jsonl"
    assert write_records(path, [ok, refused]) == 2
    assert list(read_corpus(path)) == [ok, refused]
    assert CaptureRecord.from_json(ok.to_json()) == ok


def test_write_probes_round_trip() -> None:
    rec = CaptureRecord(
        "7.2",
        "7.2.22",
        "7.2",
        ("e1000,addr=03.0",),
        ("00" * 256,),
        None,
        (("ff" * 256, "00" * 256),),
    )
    assert CaptureRecord.from_json(rec.to_json()) == rec


def test_model_write_probe_shows_bar_sizes() -> None:
    from compatlab.config import Config, parse_device_string
    from compatlab.oracles.compare import model_write_probe
    from compatlab.realize import realize

    space = realize(Config((parse_device_string("pvpanic-pci"),)), "10.0").devices[0].space
    ones, zeros = model_write_probe(space)
    # BAR 0 is a 2-byte memory BAR: only address bits 1..31 stick (PCI 3.0 §6.2.5.1)
    assert ones[0x10:0x14] == bytes.fromhex("feffffff")
    assert zeros[0x10:0x14] == bytes(4)
    # the vendor ID is read-only whatever is written
    assert ones[0:2] == zeros[0:2] == bytes.fromhex("361b")


def test_backends_are_made_once_per_name() -> None:
    args = backend_args(["virtio-blk-pci,drive=d0", "virtio-blk-pci,drive=d0", "e1000,netdev=n1"])
    assert args.count("-blockdev") == 1
    assert "hubport,id=n1,hubid=0" in args


def test_qemu_error_lines_lose_the_program_prefix_and_warnings() -> None:
    stderr = (
        "qemu-system-x86_64: warning: nic e1000.0 has no peer\n"
        "qemu-system-x86_64: -device e1000,bogus=1: Property 'e1000.bogus' not found\n"
    )
    assert _error_lines(stderr) == ["-device e1000,bogus=1: Property 'e1000.bogus' not found"]


def test_verdicts() -> None:
    good = CaptureRecord("10.0", "10.0.2", "9.0", ("pvpanic-pci,addr=03.0",), (PVPANIC,))
    assert check_record(good).agrees
    wrong = PVPANIC[:4] + "ff" + PVPANIC[6:]
    bad = check_record(CaptureRecord("10.0", "10.0.2", "9.0", ("pvpanic-pci,addr=03.0",), (wrong,)))
    assert not bad.agrees and "0x02" in bad.detail
    refused_by_qemu = CaptureRecord("10.0", "10.0.2", "9.0", ("pvpanic-pci,addr=03.0",), None, "x")
    assert not check_record(refused_by_qemu).agrees
    both_refuse = CaptureRecord(
        "7.2", "7.2.22", "5.0", ("pvpanic-pci,addr=03.0,bogus=1",), None, "x"
    )
    assert check_record(both_refuse).agrees


def test_a_capture_newer_than_the_catalogue_is_not_checked() -> None:
    """QEMU 11.1 (and its machine types past 10.0) are not in the catalogue yet: no
    verdict, neither agreement nor failure, directly or through hints."""
    for binary, machine in (("11.1", "10.0"), ("11.1", "11.1")):
        record = CaptureRecord(binary, "11.1.3", machine, ("e1000,addr=03.0",), ("00" * 256,))
        for via_hints in (False, True):
            verdict = check_record(record, via_hints=via_hints)
            assert not verdict.applicable and verdict.unmodelled, verdict
            assert "11.1" in verdict.detail or machine in verdict.detail


def test_byte_diff_names_offsets() -> None:
    assert byte_diff(b"\x00\x01", b"\x00\x02") == "0x01: qemu 01 model 02"
