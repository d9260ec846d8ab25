"""Hostile input through the CLI: every kind of file a user hands compatlab, and
``-device`` strings, refused in one line (exit 2) and in bounded time.

Each case runs ``compatlab.cli.main.main([...])`` in this process and must give
exit code 2, exactly one stderr line starting ``compatlab: error:`` that names the
file (and the key, where there is one), no traceback, within its time budget.
``check`` prints its own progress lines before a findings file is read (``check:
1 runs …``, and a warning when the findings path is not a regular file); those are
the only other lines allowed, and only for the findings cases.

The kinds: configs (``--config``, JSON and TOML), ``-device`` strings, hints files,
candidate files (``gate --candidate``), findings files and failure-corpus entries
(``check``), capture corpora (``qemu verify``). The caps are compatlab.inputs'
(16 MiB, 32 levels of nesting) and compatlab.config's (240 devices, 65535-byte
names and values).

No case can hang the run, even if the code under test is wrong: every command runs
under a SIGALRM watchdog that interrupts a blocking ``open`` or ``read`` (of a FIFO,
say) and fails the case.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from compatlab.cli.main import main

BIG = 17 * 1024 * 1024  # one MiB past the 16 MiB cap; made as a sparse file
DEEP = 100_000
NINES = "9" * 5000
WATCHDOG_SECONDS = 60


@dataclass(frozen=True)
class Case:
    """A command built in a temporary folder, and what its one error line must say."""

    build: Callable[[Path], list[str]]
    says: tuple[str, ...]
    env: Callable[[Path], dict[str, str]] = field(default=lambda tmp: {})
    budget: float = 10.0
    progress: tuple[str, ...] = ()  # prefixes of other stderr lines the command may print


# -- building blocks -----------------------------------------------------------------------


def _write(tmp: Path, name: str, content: str | bytes) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _fifo(tmp: Path, name: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _sparse(tmp: Path, name: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.truncate(BIG)
    return path


def _loop(tmp: Path, name: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    other = path.with_name(path.name + ".other")
    path.symlink_to(other)
    other.symlink_to(path)
    return path


def _dir(tmp: Path, name: str) -> Path:
    path = tmp / name
    path.mkdir(parents=True)
    return path


def _hints(tmp: Path) -> bytes:
    from compatlab import dump_hints, encode, parse_device_string
    from compatlab.config import Config

    return encode(dump_hints(Config((parse_device_string("e1000,id=n"),)), "9.0"))


def _hints_with_vcpus(vcpus: int) -> bytes:
    """Hints with a machine section claiming ``vcpus`` (any u64), checksum kept valid."""
    import struct
    import zlib

    from compatlab.hints.codec import MAGIC, SECTION_MACHINE

    body = struct.pack("<H", 1) + struct.pack("<H", 5) + b"vcpus" + b"\x03"
    body += struct.pack("<Q", vcpus)
    data = (
        MAGIC
        + struct.pack("<HHHHI", 1, 0, 9, 0, 1)
        + struct.pack("<BI", SECTION_MACHINE, len(body))
    )
    data += body
    return data + struct.pack("<I", zlib.crc32(data))


def _entry(**changes: object) -> str:
    """A failure-corpus entry (as promote writes one) with ``changes``."""
    entry: dict[str, object] = {
        "invariant": "same-version-round-trip",
        "versions": ["7.2", "10.0"],
        "config": ["e1000,id=e"],
        "extra": {},
        "failure": {},
        "reproduce": None,
    }
    entry.update(changes)
    return json.dumps(entry)


def _capture(drop: tuple[str, ...] = (), **changes: object) -> str:
    """A capture record (as capture writes one) with ``changes``, without ``drop``."""
    record: dict[str, object] = {
        "binary": "7.2",
        "release": "7.2.22",
        "machine": "7.2",
        "devices": ["e1000,addr=03.0"],
        "config_space": ["00" * 256],
    }
    record.update(changes)
    return json.dumps({k: v for k, v in record.items() if k not in drop})


def _finding(drop: tuple[str, ...] = (), **changes: str) -> str:
    """One finding in TOML, its values as TOML text, with ``changes``, without ``drop``."""
    finding = {
        "invariants": '["upgrade-round-trip"]',
        "driver": '"nvme"',
        "changed_in": '"9.1"',
        "reason": '"x"',
    }
    finding.update(changes)
    return "[[finding]]\n" + "".join(f"{k} = {v}\n" for k, v in finding.items() if k not in drop)


def realize_config(make: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    return lambda tmp: ["realize", "--config", str(make(tmp))]


def realize_hints(make: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    return lambda tmp: ["realize", "--hints", str(make(tmp)), "--device", "e1000,id=n"]


def show_hints(make: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    return lambda tmp: ["hints", "show", str(make(tmp))]


def gate(make: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    return lambda tmp: ["gate", "--candidate", str(make(tmp))]


def verify(make: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    return lambda tmp: ["qemu", "verify", str(make(tmp))]


def _check(tmp: Path) -> list[str]:
    return [
        "check", "--versions", "10.0", "--invariant", "same-version-round-trip",
        "--seed", "1", "--out", str(tmp / "runs"), "--failures-dir", str(tmp / "failures"),
        "--no-report",
    ]  # fmt: skip


def check_findings(make: Callable[[Path], Path]) -> Case:
    """``check`` with $COMPATLAB_CORPORA's findings file made by ``make``."""
    return Case(
        lambda tmp: (make(tmp / "corpora"), [*_check(tmp), "--no-replay"])[1],
        ("corpora/findings.toml",),
        env=lambda tmp: {"COMPATLAB_CORPORA": str(tmp / "corpora")},
        budget=30.0,
        progress=("check: ", "compatlab: warning: "),
    )


def findings(text: str, *says: str) -> Case:
    case = check_findings(lambda corpora: _write(corpora, "findings.toml", text))
    return Case(case.build, (*case.says, *says), case.env, case.budget, case.progress)


def replay(make: Callable[[Path], Path], *says: str) -> Case:
    """``check`` replaying a failure corpus whose one entry ``make`` makes."""
    return Case(
        lambda tmp: (make(tmp / "failures" / "same-version-round-trip"), _check(tmp))[1],
        ("same-version-round-trip/x.json", *says),
        budget=30.0,
    )


def corpus_entry(text: str, *says: str) -> Case:
    return replay(lambda folder: _write(folder, "x.json", text), *says)


# -- the table -------------------------------------------------------------------------------

CASES: dict[str, Case] = {
    # configs: --config FILE, JSON and TOML
    "config-fifo": Case(realize_config(lambda t: _fifo(t, "vm.toml")), ("vm.toml", "is a FIFO")),
    "config-dev-zero": Case(
        realize_config(lambda t: Path("/dev/zero")), ("/dev/zero", "is a character device")
    ),
    "config-directory": Case(realize_config(lambda t: _dir(t, "vm")), ("vm", "is a directory")),
    "config-symlink-loop": Case(
        realize_config(lambda t: _loop(t, "vm.toml")), ("vm.toml", "a symlink loop")
    ),
    "config-missing": Case(
        realize_config(lambda t: t / "none.toml"), ("none.toml", "No such file")
    ),
    "config-too-large": Case(
        realize_config(lambda t: _sparse(t, "vm.toml")), ("vm.toml", "more than the 16 MiB")
    ),
    "config-not-utf8": Case(
        realize_config(lambda t: _write(t, "vm.toml", b"devices = ['\xff']")),
        ("vm.toml", "not UTF-8"),
    ),
    "config-nested-1e5": Case(
        realize_config(lambda t: _write(t, "vm.json", "[" * DEEP + "]" * DEEP)),
        ("vm.json", "nests deeper than 32 levels"),
    ),
    "config-toml-nested-1e5": Case(
        realize_config(lambda t: _write(t, "vm.toml", "devices = " + "[" * DEEP)),
        ("vm.toml", "nests deeper than 32 levels"),
    ),
    "config-toml-dotted-keys-5e4": Case(
        realize_config(lambda t: _write(t, "vm.toml", "a" + ".a" * 50_000 + " = 1\n")),
        ("vm.toml", "nests deeper than 32 levels"),
    ),
    "config-malformed-json": Case(
        realize_config(lambda t: _write(t, "vm.json", '{"devices": [')),
        ("vm.json", "not valid JSON: line 1 column 14"),
    ),
    "config-integer-5000-digits": Case(
        realize_config(
            lambda t: _write(
                t, "vm.json", f'[{{"driver": "e1000", "properties": {{"x": {NINES}}}}}]'
            )
        ),
        ("vm.json", "an integer of more than 4300 digits"),
    ),
    "config-integer-4000-digits": Case(
        realize_config(
            lambda t: _write(
                t,
                "vm.json",
                json.dumps([{"driver": "virtio-net-pci", "properties": {"vectors": 10**3999}}]),
            )
        ),
        ("vectors=1000", "(4000 characters)", "out of range (0..4294967295)"),
    ),
    "config-vcpus-zero": Case(
        realize_config(lambda t: _write(t, "vm.json", '{"machine": {"vcpus": 0}, "devices": []}')),
        ("vm.json", "vcpus=0 is out of range (1..255"),
    ),
    "config-vcpus-5000-digits": Case(
        realize_config(
            lambda t: _write(t, "vm.toml", f"devices = []\n[machine]\nvcpus = {NINES}\n")
        ),
        ("vm.toml",),
    ),
    "config-vcpus-float": Case(
        realize_config(lambda t: _write(t, "vm.toml", "devices = []\n[machine]\nvcpus = 1e9\n")),
        ("vm.toml", "vcpus must be an integer, not a number"),
    ),
    "config-number-for-table": Case(
        realize_config(lambda t: _write(t, "vm.json", '{"devices": [3]}')),
        ("vm.json", "device 0", "not an integer"),
    ),
    "config-number-for-top-level": Case(
        realize_config(lambda t: _write(t, "vm.json", "3")), ("vm.json", "not an integer")
    ),
    "config-string-for-list": Case(
        realize_config(lambda t: _write(t, "vm.json", '{"devices": "e1000"}')),
        ("vm.json", "'devices' must be a list, not a string"),
    ),
    "config-list-for-string": Case(
        realize_config(lambda t: _write(t, "vm.json", '{"devices": [{"driver": ["e1000"]}]}')),
        ("vm.json", "device 0", "'driver' must be a string, not a list"),
    ),
    "config-number-for-properties": Case(
        realize_config(
            lambda t: _write(t, "vm.toml", '[[devices]]\ndriver = "e1000"\nproperties = 3\n')
        ),
        ("vm.toml", "'properties' must be a table, not an integer"),
    ),
    "config-table-for-value": Case(
        realize_config(
            lambda t: _write(
                t, "vm.toml", '[[devices]]\ndriver = "e1000"\n[devices.properties.mac]\na = 1\n'
            )
        ),
        ("vm.toml", "property 'mac' must be a string, integer or boolean, not a table"),
    ),
    "config-number-for-addr": Case(
        realize_config(lambda t: _write(t, "vm.json", '[{"driver": "e1000", "addr": 3}]')),
        ("vm.json", "'addr' must be a string, not an integer"),
    ),
    "config-241-devices": Case(
        realize_config(lambda t: _write(t, "vm.json", json.dumps(["e1000"] * 241))),
        ("vm.json", "241 devices is more than the 240 devices a config may hold"),
    ),
    "config-lone-surrogate": Case(
        realize_config(
            lambda t: _write(
                t, "vm.json", '[{"driver": "e1000", "properties": {"romfile": "\\ud800"}}]'
            )
        ),
        ("vm.json", "lone surrogate"),
    ),
    "config-files-241": Case(
        lambda t: ["realize", *["--config", str(_write(t, "vm.toml", ""))] * 241],
        ("--config", "given more than 240 times"),
    ),
    # -device strings
    "device-args-5000": Case(
        lambda t: ["realize", *["--device", "e1000"] * 5000],
        ("--device", "given more than 240 times"),
    ),
    "device-args-100000": Case(
        lambda t: ["realize", *["--device", "e1000"] * 100_000],
        ("--device", "given more than 240 times"),
    ),
    "device-digit-separator": Case(
        lambda t: ["realize", "--device", "virtio-net-pci,vectors=1_0"],
        ("vectors=1_0 is invalid for virtio-net-pci: not an integer",),
    ),
    "device-double-sign": Case(
        lambda t: ["realize", "--device", "virtio-net-pci,vectors=--5"], ("vectors=--5",)
    ),
    "device-arabic-indic-digit": Case(
        lambda t: ["realize", "--device", "virtio-net-pci,vectors=\u0663"], ("not an integer",)
    ),
    "device-5000-digits": Case(
        lambda t: ["realize", "--device", f"virtio-net-pci,vectors={NINES}"],
        ("vectors=", "(5000 characters)", "out of range (0..4294967295)"),
    ),
    "device-props-5000": Case(
        lambda t: ["realize", "--device", "e1000," + ",".join(f"p{i}=1" for i in range(5000))],
        ("'e1000' has no property 'p0'",),
    ),
    "device-value-70000-bytes": Case(
        lambda t: [
            "hints",
            "dump",
            "--version",
            "10.0",
            "-o",
            str(t / "h"),
            "--device",
            "e1000,romfile=" + "x" * 70_000,
        ],
        ("the value of 'romfile' is 70000 bytes", "65535"),
    ),
    "device-not-utf8": Case(
        lambda t: [
            "hints",
            "dump",
            "--version",
            "10.0",
            "-o",
            str(t / "h"),
            "--device",
            "e1000,romfile=\udcff.rom",
        ],
        ("'romfile'", "lone surrogate"),
    ),
    # hints files: realize --hints FILE, hints show FILE
    "hints-fifo": Case(realize_hints(lambda t: _fifo(t, "vm.hints")), ("vm.hints", "is a FIFO")),
    "hints-dev-zero": Case(show_hints(lambda t: Path("/dev/zero")), ("/dev/zero", "character")),
    "hints-directory": Case(show_hints(lambda t: _dir(t, "h")), ("h", "is a directory")),
    "hints-symlink-loop": Case(
        realize_hints(lambda t: _loop(t, "vm.hints")), ("vm.hints", "a symlink loop")
    ),
    "hints-too-large": Case(
        show_hints(lambda t: _sparse(t, "vm.hints")), ("vm.hints", "more than the 16 MiB")
    ),
    "hints-empty": Case(show_hints(lambda t: _write(t, "vm.hints", b"")), ("vm.hints", "empty")),
    "hints-truncated": Case(
        realize_hints(lambda t: _write(t, "vm.hints", _hints(t)[:40])),
        ("bad compat hints", "vm.hints"),
    ),
    "hints-vcpus-zero": Case(
        realize_hints(lambda t: _write(t, "vm.hints", _hints_with_vcpus(0))),
        ("vm.hints", "vcpus=0 is not a count in 1..255"),
    ),
    "hints-vcpus-2-to-the-64": Case(
        show_hints(lambda t: _write(t, "vm.hints", _hints_with_vcpus(2**64 - 1))),
        ("vm.hints", "not a count in 1..255"),
    ),
    # candidate files: gate --candidate FILE
    "candidate-fifo": Case(gate(lambda t: _fifo(t, "c.toml")), ("c.toml", "is a FIFO")),
    "candidate-dev-zero": Case(gate(lambda t: Path("/dev/zero")), ("/dev/zero", "character")),
    "candidate-directory": Case(gate(lambda t: _dir(t, "c")), ("c", "is a directory")),
    "candidate-too-large": Case(
        gate(lambda t: _sparse(t, "c.toml")), ("c.toml", "more than the 16 MiB")
    ),
    "candidate-nested-1e5": Case(
        gate(lambda t: _write(t, "c.toml", 'version = "11.2"\ndoc = ' + "[" * DEEP)),
        ("c.toml", "nests deeper than 32 levels"),
    ),
    "candidate-number-for-table": Case(
        gate(lambda t: _write(t, "c.toml", 'version = "11.2"\ntypes = 3\n')),
        ("c.toml", "types must be a table of device type tables, not an integer"),
    ),
    "candidate-number-for-type-table": Case(
        gate(lambda t: _write(t, "c.toml", 'version = "11.2"\n[types]\ne1000 = 3\n')),
        ("c.toml", "types.e1000 must be a table, not an integer"),
    ),
    "candidate-number-for-properties": Case(
        gate(lambda t: _write(t, "c.toml", 'version = "11.2"\n[types.e1000]\nproperties = 3\n')),
        ("c.toml", "types.e1000.properties must be a table of property tables"),
    ),
    "candidate-string-for-list": Case(
        gate(
            lambda t: _write(
                t,
                "c.toml",
                'version = "11.2"\n[types.virtio-pci.properties.page-per-vq]\nsweep = "on"\n',
            )
        ),
        ("c.toml", "types.virtio-pci.properties.page-per-vq.sweep must be a list, not a string"),
    ),
    "candidate-list-for-string": Case(
        gate(lambda t: _write(t, "c.toml", 'version = ["11.2"]\n')),
        ("c.toml", "version must be a string, not a list"),
    ),
    "candidate-number-for-version": Case(
        gate(lambda t: _write(t, "c.toml", "version = 11.2\n")),
        ("c.toml", "version must be a string, not a number"),
    ),
    "candidate-list-for-compat-value": Case(
        gate(
            lambda t: _write(
                t,
                "c.toml",
                'version = "11.2"\n[[compat]]\nmachine_version = "11.1"\ndriver = "e1000"\n'
                'property = "mac"\nvalue = [1]\n',
            )
        ),
        ("c.toml", "compat[0].value must be", "not a list"),
    ),
    "candidate-string-for-bool": Case(
        gate(
            lambda t: _write(
                t,
                "c.toml",
                'version = "11.2"\n[types.pci-device.properties.x-new]\ntype = "bool"\n'
                'guest_visible = "yes"\n',
            )
        ),
        (
            "c.toml",
            "types.pci-device.properties.x-new.guest_visible must be a boolean, not a string",
        ),
    ),
    "candidate-bad-until": Case(
        gate(lambda t: _write(t, "c.toml", 'version = "11.2"\n[types.e1000]\nuntil = "x.y"\n')),
        ("c.toml", "types.e1000.until", "unknown emulator version 'x.y'"),
    ),
    # findings files: check, with $COMPATLAB_CORPORA/findings.toml
    "findings-fifo": check_findings(lambda c: _fifo(c, "findings.toml")),
    "findings-directory": check_findings(lambda c: _dir(c, "findings.toml")),
    "findings-symlink-loop": check_findings(lambda c: _loop(c, "findings.toml")),
    "findings-nested-1e5": findings("finding = " + "[" * DEEP, "nests deeper than 32 levels"),
    "findings-not-toml": findings("[[finding]\n", "not valid TOML"),
    "findings-string-for-list": findings(
        _finding(invariants='"upgrade-round-trip"'),
        "finding[0].invariants must be a list, not a string",
    ),
    "findings-number-for-table": findings(
        "finding = 3\n", "finding must be a list, not an integer"
    ),
    "findings-number-for-finding": findings(
        "finding = [3]\n", "finding[0] must be a table, not an integer"
    ),
    "findings-list-for-string": findings(
        _finding(driver='["nvme"]'), "finding[0].driver must be a string, not a list"
    ),
    "findings-missing-key": findings(_finding(drop=("reason",)), "finding[0]: missing 'reason'"),
    "findings-bad-version": findings(
        _finding(changed_in='"nine"'), "finding[0].changed_in", "unknown emulator version 'nine'"
    ),
    # failure-corpus entries: check --failures-dir DIR replays DIR/*/*.json first
    "corpus-fifo": replay(lambda f: _fifo(f, "x.json"), "is a FIFO"),
    "corpus-directory": replay(lambda f: _dir(f, "x.json"), "is a directory"),
    "corpus-too-large": replay(lambda f: _sparse(f, "x.json"), "more than the 16 MiB"),
    "corpus-nested-1e5": corpus_entry("[" * DEEP + "]" * DEEP, "nests deeper than 32 levels"),
    "corpus-truncated": corpus_entry(_entry()[:50], "not valid JSON"),
    "corpus-number-for-table": corpus_entry("3", "expected a table, not an integer"),
    "corpus-string-for-list": corpus_entry(
        _entry(config="e1000,id=e"), "config must be a list, not a string"
    ),
    "corpus-list-for-table": corpus_entry(_entry(extra=[]), "extra must be a table, not a list"),
    "corpus-number-for-string": corpus_entry(
        _entry(invariant=3), "invariant must be a string, not an integer"
    ),
    "corpus-number-for-writes": corpus_entry(
        _entry(extra={"writes": 3}), "extra.writes must be a list, not an integer"
    ),
    "corpus-bad-hints": corpus_entry(
        _entry(extra={"hints": {"hints": "zz"}}), "extra.hints.hints is not hex"
    ),
    "corpus-bad-device": corpus_entry(
        _entry(config=["e1000,addr=zz"]), "malformed PCI address 'zz'"
    ),
    # capture corpora: qemu verify PATH
    "capture-fifo": Case(verify(lambda t: _fifo(t, "c.jsonl")), ("c.jsonl", "is a FIFO")),
    "capture-fifo-in-folder": Case(
        verify(lambda t: (_fifo(t / "captures", "e1000.jsonl"), t / "captures")[1]),
        ("captures/e1000.jsonl", "is a FIFO"),
    ),
    "capture-dev-zero": Case(verify(lambda t: Path("/dev/zero")), ("/dev/zero", "character")),
    "capture-too-large": Case(
        verify(lambda t: _sparse(t, "c.jsonl")), ("c.jsonl", "more than the 16 MiB")
    ),
    "capture-nested-1e5": Case(
        verify(lambda t: _write(t, "c.jsonl", "[" * DEEP + "]" * DEEP + "\n")),
        ("c.jsonl:1", "nests deeper than 32 levels"),
    ),
    "capture-not-json": Case(
        verify(lambda t: _write(t, "c.jsonl", _capture() + "\nnope\n")),
        ("c.jsonl:2", "not valid JSON"),
    ),
    "capture-number-for-table": Case(
        verify(lambda t: _write(t, "c.jsonl", "3\n")), ("c.jsonl:1", "expected a table")
    ),
    "capture-string-for-list": Case(
        verify(lambda t: _write(t, "c.jsonl", _capture(devices="e1000,addr=03.0") + "\n")),
        ("c.jsonl:1", "'devices' must be a list of device strings, not a string"),
    ),
    "capture-number-for-string": Case(
        verify(lambda t: _write(t, "c.jsonl", _capture(binary=7.2) + "\n")),
        ("c.jsonl:1", "'binary' must be a string, not a number"),
    ),
    "capture-list-for-string": Case(
        verify(
            lambda t: _write(t, "c.jsonl", _capture(drop=("config_space",), error=["x"]) + "\n")
        ),
        ("c.jsonl:1", "'error' must be a string, not a list"),
    ),
    "capture-vcpus-zero": Case(
        verify(lambda t: _write(t, "c.jsonl", _capture(vcpus=0) + "\n")),
        ("c.jsonl:1", "vcpus=0 is out of range"),
    ),
    "capture-vcpus-string": Case(
        verify(lambda t: _write(t, "c.jsonl", _capture(vcpus="4") + "\n")),
        ("c.jsonl:1", "vcpus must be an integer, not a string"),
    ),
    "corpus-entry-vcpus-over-i440fx": corpus_entry(_entry(vcpus=300), "vcpus=300 is out of range"),
    "capture-short-config-space": Case(
        verify(lambda t: _write(t, "c.jsonl", _capture(config_space=["00"]) + "\n")),
        ("c.jsonl:1", "config_space[0] must be 512 hex digits"),
    ),
    "capture-bad-device": Case(
        verify(
            lambda t: _write(t, "c.jsonl", _capture(devices=["e1000,vectors=1,vectors=2"]) + "\n")
        ),
        ("c.jsonl:1", "devices[0]", "given twice"),
    ),
}


class _Hung(BaseException):
    """Raised by the watchdog; a BaseException, so that main() cannot turn it into an
    exit code."""


@pytest.fixture
def watchdog() -> Iterator[None]:
    def fire(signum: int, frame: object) -> None:
        raise _Hung(f"the command ran for {WATCHDOG_SECONDS}s: it blocks or loops")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(WATCHDOG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_one_line_and_exit_2(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    watchdog: None,
) -> None:
    case = CASES[name]
    for variable in ("COMPATLAB_CORPORA", "COMPATLAB_RUNS_DIR", "COMPATLAB_FAILURES_DIR"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in case.env(tmp_path).items():
        monkeypatch.setenv(variable, value)
    monkeypatch.chdir(tmp_path)
    argv = case.build(tmp_path)
    capsys.readouterr()
    started = time.perf_counter()
    code = main(argv)
    elapsed = time.perf_counter() - started
    err = capsys.readouterr().err
    print(f"{name}: exit {code} in {elapsed:.3f}s: {err.strip()[-160:]}")
    assert code == 2, err
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("compatlab: error: ")]
    assert len(errors) == 1, err
    others = [line for line in lines if line not in errors]
    assert all(line.startswith(case.progress) for line in others) if case.progress else not others
    assert "Traceback" not in err
    (line,) = errors
    for said in case.says:
        assert said in line, line
    assert len(line) < 400, line
    assert elapsed < case.budget, f"{elapsed:.2f}s"


def test_an_unreadable_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mode 000 does not stop root, so the refusal the kernel would give is made here."""
    path = _write(tmp_path, "vm.toml", '[[devices]]\ndriver = "e1000"\n')
    path.chmod(0)
    real_open = os.open

    def guarded(file: str | os.PathLike[str], flags: int, *args: int) -> int:
        if Path(file) == path:
            raise PermissionError(13, "Permission denied")
        return real_open(file, flags, *args)

    monkeypatch.setattr(os, "open", guarded)
    assert main(["realize", "--config", str(path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == f"compatlab: error: {path}: cannot read config file: Permission denied"
