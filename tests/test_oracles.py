"""Oracle plumbing that needs no QEMU: capture records, backends, error text, verdicts,
how one-device configs are packed into starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from compatlab.errors import CorpusError
from compatlab.oracles.capture import (
    CaptureRecord,
    read_corpus,
    recorded_captures,
    write_records,
)
from compatlab.oracles.compare import byte_diff, check_record
from compatlab.oracles.qemu import BatchResult, QemuBinary, Slot, _error_lines, backend_args
from compatlab.versions import Version

PVPANIC = "361b1100000000000100800800000000" + "00" * 28 + "f41a0011" + "00" * 16 + "00" * 192


def test_capture_records_round_trip(tmp_path: Path) -> None:
    ok = CaptureRecord("7.2", "7.2.22", "5.0", ("e1000,addr=03.0",), ("00" * 256,))
    refused = CaptureRecord("10.0", "10.0.2", "2.4", ("e1000,addr=03.0,x=1",), None, "nope")
    path = tmp_path / "c.jsonl"
    assert write_records(path, [ok, refused]) == 2
    assert list(read_corpus(path)) == [ok, refused]
    assert CaptureRecord.from_json(ok.to_json()) == ok


def test_captures_record_their_vcpus_and_a_line_without_them_ran_one() -> None:
    four = CaptureRecord("11.1", "11.1.3", "11.1", ("e1000,addr=03.0",), ("00" * 256,), vcpus=4)
    assert four.to_json()["vcpus"] == 4
    assert CaptureRecord.from_json(four.to_json()) == four
    one = CaptureRecord("11.1", "11.1.3", "11.1", ("e1000,addr=03.0",), ("00" * 256,))
    assert "vcpus" not in one.to_json()  # lines written before vcpus read the same
    assert CaptureRecord.from_json(one.to_json()).vcpus == 1
    assert four.config().vcpus == 4


def test_the_oracle_starts_qemu_with_the_vcpus_asked_for() -> None:
    from compatlab.oracles.qemu import qemu_command

    binary = QemuBinary(Path("/q"), "11.1.3", Version(11, 1), (Version(11, 1),))
    args = qemu_command(binary, Version(11, 1), ["e1000,addr=03.0"], "/s", "/fw", 6)
    assert args[args.index("-smp") + 1] == "6"
    default = qemu_command(binary, Version(11, 1), [], "/s", "/fw")
    assert default[default.index("-smp") + 1] == "1"


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


def test_recorded_captures_of_a_machine_type_keep_what_a_probe_does_not_repeat(
    tmp_path: Path,
) -> None:
    """Every line for the machine type, from every binary's folder, with where it is;
    a plain line is left out only where a write-probe line of the same config by the
    same binary holds the same bytes."""
    space, other = "00" * 256, "01" + "00" * 255
    probe = (("ff" * 256, "00" * 256),)
    e1000 = ("e1000,addr=02.0",)
    probed = CaptureRecord("7.2", "7.2.22", "5.0", e1000, (space,), None, probe)
    repeated = CaptureRecord("7.2", "7.2.22", "5.0", e1000, (space,))
    differs = CaptureRecord("7.2", "7.2.22", "5.0", e1000, (other,))
    by_other_binary = CaptureRecord("10.0", "10.0.2", "5.0", e1000, (space,))
    refused = CaptureRecord("7.2", "7.2.22", "5.0", ("e1000,addr=02.0,x=1",), error="nope")
    elsewhere = CaptureRecord("7.2", "7.2.22", "5.1", e1000, (space,))
    write_records(tmp_path / "7.2" / "e1000.jsonl", [repeated, differs, refused, elsewhere])
    write_records(tmp_path / "7.2" / "writes" / "e1000.jsonl", [probed])
    write_records(tmp_path / "10.0" / "e1000.jsonl", [by_other_binary])
    found = recorded_captures(tmp_path, Version(5, 0))
    assert found == [
        ("10.0/e1000.jsonl:1", by_other_binary),
        ("7.2/e1000.jsonl:2", differs),
        ("7.2/e1000.jsonl:3", refused),
        ("7.2/writes/e1000.jsonl:1", probed),
    ]
    assert recorded_captures(tmp_path, Version(5, 1)) == [("7.2/e1000.jsonl:4", elsewhere)]
    assert recorded_captures(tmp_path, Version(7, 2)) == []


def test_a_malformed_recorded_capture_names_its_file_and_line(tmp_path: Path) -> None:
    good = CaptureRecord("7.2", "7.2.22", "5.0", ("e1000,addr=02.0",), ("00" * 256,))
    path = tmp_path / "7.2" / "e1000.jsonl"
    write_records(path, [good])
    with path.open("a") as fh:
        fh.write('{"binary": "7.2", "machine": "5.0", "devices": []}\n')
    with pytest.raises(CorpusError, match=rf"{path}:2: not a capture record \('devices'"):
        recorded_captures(tmp_path, Version(5, 0))


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
    """A QEMU 12.0 (and its machine types past 11.1) is not in the catalogue: no
    verdict, neither agreement nor failure, directly or through hints."""
    for binary, machine in (("12.0", "11.1"), ("12.0", "12.0")):
        record = CaptureRecord(binary, "12.0.0", machine, ("e1000,addr=03.0",), ("00" * 256,))
        for via_hints in (False, True):
            verdict = check_record(record, via_hints=via_hints)
            assert not verdict.applicable and verdict.unmodelled, verdict
            assert "12.0" in verdict.detail or machine in verdict.detail


def test_byte_diff_names_offsets() -> None:
    assert byte_diff(b"\x00\x01", b"\x00\x02") == "0x01: qemu 01 model 02"


# -- packing one-device configs into QEMU starts (capture_singles), with a stand-in
# for run_batch that refuses as QEMU does: naming the -device it refused.

BALLOONS = ["virtio-balloon-pci", "virtio-balloon-pci-transitional", "virtio-balloon-pci"]


def test_a_start_holds_no_more_of_a_kind_than_a_machine_may() -> None:
    from compatlab.catalogue import builtin_catalogue
    from compatlab.oracles.capture import _pack

    devices = ["e1000", *BALLOONS, "no-such-device", *(["pvpanic-pci"] * 40)]
    starts = _pack(devices, builtin_catalogue())
    balloons = [[t for _, t in s if "balloon" in t] for s in starts]
    assert [len(b) for b in balloons] == [1, 1, 1], "one balloon of any variant per start"
    assert all(len(s) <= 30 for s in starts)
    assert sorted(i for s in starts for i, _ in s) == list(range(len(devices)))
    # each device to the emptiest start that may take it; slots in order within a
    # start, from 02; an unknown driver is QEMU's to judge
    assert [t for _, t in starts[0][:2]] == ["e1000,addr=02.0", "virtio-balloon-pci,addr=03.0"]
    assert [t for _, t in starts[1][:2]] == [
        "virtio-balloon-pci,addr=02.0",
        "no-such-device,addr=03.0",
    ]
    assert starts[2][0][1] == "virtio-balloon-pci-transitional,addr=02.0"


def test_starts_are_as_few_as_first_fit_makes_and_even() -> None:
    from compatlab.catalogue import builtin_catalogue
    from compatlab.oracles.capture import _pack

    cat = builtin_catalogue()
    for count, sizes in [(30, [30]), (31, [16, 15]), (61, [21, 20, 20]), (0, [])]:
        assert [len(s) for s in _pack(["pvpanic-pci"] * count, cat)] == sizes
    # twelve balloons make twelve starts, whatever else comes: the rest spread evenly
    devices = ["e1000"] * 20 + [*BALLOONS, "virtio-balloon-pci-transitional"] * 3 + ["rtl8139"] * 84
    sizes = [len(s) for s in _pack(devices, cat)]
    assert len(sizes) == 12 and sum(sizes) == 116
    assert max(sizes) - min(sizes) <= 1, sizes


def test_even_filling_gives_way_to_first_fit_where_it_would_need_more_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import compatlab.oracles.capture as capture

    # made-up kinds: a machine holds two of kind a and one of b, and a "b" counts as both
    limits = {"x": [], "a": [("a", 2)], "b": [("a", 2), ("b", 1)], "d": [("d", 1)]}
    monkeypatch.setattr(capture, "_instance_limits", lambda _cat, driver: limits[driver])
    devices = ["x", "a", "b", "a", "x", "b", "d"]
    # filled evenly, x b x | a a, the second b finds a b in one start and two a in
    # the other, and would need a third start; first fit needs two
    starts = capture._pack(devices, capture.active_catalogue())
    assert [[t.split(",")[0] for _, t in s] for s in starts] == [
        ["x", "a", "b", "x", "d"],
        ["a", "b"],
    ]


class FakeQemu:
    """run_batch as QEMU answers it: a device string with ``bad`` is refused
    alone; two ``twin`` devices in one start refuse the second (they only clash);
    any other device reads as its slot number."""

    def __init__(self, refuse_unnamed: bool = False) -> None:
        self.starts: list[list[str]] = []
        self.refuse_unnamed = refuse_unnamed

    def __call__(
        self, binary: QemuBinary, machine: Version, devices: list[str], slots: list[Slot], **_: bool
    ) -> BatchResult:
        self.starts.append(list(devices))
        twins = [d for d in devices if d.startswith("twin")]
        for d in devices:
            if "bad" in d or (len(twins) > 1 and d == twins[1]):
                error = "backend trouble" if self.refuse_unnamed else f"-device {d}: refused"
                return BatchResult(None, error)
        return BatchResult(tuple(bytes([s.slot]) * 256 for s in slots), None)


def _capture(
    monkeypatch: pytest.MonkeyPatch, qemu: FakeQemu, devices: list[str]
) -> list[CaptureRecord]:
    import compatlab.oracles.capture as capture

    monkeypatch.setattr(capture, "run_batch", qemu)
    binary = QemuBinary(Path("qemu"), "7.2.0", Version(7, 2), (Version(7, 2),))
    return capture.capture_singles(binary, Version(7, 2), devices)


def test_a_refused_config_gets_a_start_of_its_own_and_the_rest_start_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    qemu = FakeQemu()
    devices = ["a", "bad1", "twin", "b", "twin", "c"]
    records = _capture(monkeypatch, qemu, devices)
    assert [r.devices[0].split(",")[0] for r in records] == devices, "records in input order"
    assert records[1].error == "-device bad1,addr=03.0: refused"
    assert records[4].config_space == ("06" * 256,), "a clash alone is no refusal"
    assert records[5].config_space == ("07" * 256,)
    # the start, again without bad1, bad1 alone, again without the second twin, that twin alone
    assert [len(s) for s in qemu.starts] == [6, 1, 5, 1, 4]


def test_a_refusal_that_names_no_config_is_run_one_config_per_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    qemu = FakeQemu(refuse_unnamed=True)
    records = _capture(monkeypatch, qemu, ["a", "bad", "b"])
    assert [len(s) for s in qemu.starts] == [3, 1, 1, 1]
    assert [r.error for r in records] == [None, "backend trouble", None]
