"""The CLI contract (DESIGN.md §5): JSON shape, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from compatlab.cli import main
from compatlab.versions import ALL_VERSIONS


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compatlab", *args], capture_output=True, text=True, timeout=60
    )


def test_realize_json_contract() -> None:
    proc = run("realize", "--device", "pvpanic-pci,id=p0,addr=05.0", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["version"] == str(ALL_VERSIONS[-1])
    assert doc["ignored_hints"] == []
    (dev,) = doc["devices"]
    assert (dev["id"], dev["driver"], dev["addr"]) == ("p0", "pvpanic-pci", "05.0")
    for key in ("config_space", "wmask", "w1cmask", "cmask"):
        assert len(dev[key]) == 512 and dev[key] == dev[key].lower()
        bytes.fromhex(dev[key])
    assert dev["properties"]["multifunction"] == {"value": False, "source": "default"}
    # vendor 1b36 / device 0011, as real QEMU reports for pvpanic-pci
    assert dev["config_space"].startswith("361b1100")


def test_realize_text_and_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "vm.toml"
    cfg.write_text('[[devices]]\ndriver = "pvpanic-pci"\nid = "p"\n')
    proc = run("realize", "--config", str(cfg), "--version", "8.0")
    assert proc.returncode == 0, proc.stderr
    assert "02.0 pvpanic-pci id=p" in proc.stdout
    assert "00: 36 1b 11 00" in proc.stdout


# Bad arguments and bad input, for every command: exit 2, one line naming the problem,
# and nothing written (each case runs in an empty folder, with a regular file
# {file} where a folder would be needed; no command may have started its work).
BAD: dict[str, tuple[tuple[str, ...], str]] = {
    # realize
    "realize-unknown-version": (("realize", "--version", "2.13", "--device", "pvpanic-pci"),
                                "unknown emulator version '2.13'"),
    "realize-empty-version": (("realize", "--version", "", "--device", "e1000"),
                              "unknown emulator version ''"),
    "realize-unknown-device": (("realize", "--device", "virtio-nett-pci"), "virtio-net-pci"),
    "realize-empty-device": (("realize", "--device", ""), "needs a driver name"),
    "realize-unknown-property": (("realize", "--device", "pvpanic-pci,bogus=1"), "bogus"),
    "realize-bad-value": (("realize", "--device", "pvpanic-pci,romsize=3"), "ROM size 3"),
    "realize-no-devices": (("realize",), "no devices"),
    "realize-missing-config": (("realize", "--config", "/nonexistent/vm.toml"), "vm.toml"),
    "realize-bad-format": (("realize", "--format", "xml"), "invalid choice: 'xml'"),
    "realize-not-yet-existing": (("realize", "--version", "5.0", "--device", "pvpanic-pci"),
                                 "pvpanic-pci"),
    "no-command": ((), "required: command"),
    # check
    "check-unknown-invariant": (("check", "--invariant", "upgrade-round-trp"),
                                "upgrade-round-trip"),
    "check-empty-invariant": (("check", "--invariant", ""), "names no invariant"),
    "check-unknown-profile": (("check", "--profile", "nightlyy"), "nightly"),
    "check-empty-profile": (("check", "--profile", ""), "names no profile"),
    "check-unknown-device": (("check", "--device", "e1001"), "e1000"),
    "check-empty-device": (("check", "--device", ""), "names no device type"),
    "check-reversed-range": (("check", "--versions", "10.0..1.4"), "did you mean 1.4..10.0?"),
    "check-empty-versions": (("check", "--versions", ""), "names no version"),
    "check-no-versions": (("check", "--versions", ",,,"), "names no version"),
    "check-unknown-version": (("check", "--versions", "9.0,9.9"), "unknown emulator version"),
    # vmxnet3 appeared after 1.4: the selection plans nothing at all.
    "check-nothing-to-run": (("check", "--versions", "1.4", "--invariant",
                              "same-version-round-trip", "--device", "vmxnet3"), "nothing to run"),
    # The binary gate's own invariant needs two binaries named: gate runs it.
    "check-gate-only": (("check", "--invariant", "binaries-agree"), "binaries-agree"),
    "check-zero-workers": (("check", "-n", "0"), "-n/--workers: 0: give 1 or more"),
    "check-negative-workers": (("check", "-n", "-3"), "-n/--workers: -3: give 1 or more"),
    "check-workers-not-a-number": (("check", "-n", "two"), "'two' is not a whole number"),
    "check-out-under-a-file": (("check", "--out", "{file}/runs"), "is not a folder"),
    "check-out-is-a-file": (("check", "--out", "{file}"), "is not a folder"),
    "check-failures-dir-under-a-file": (("check", "--failures-dir", "{file}/failures"),
                                        "is not a folder"),
    "check-out-under-proc": (("check", "--out", "/proc/1/x/runs"), "--out /proc/1/x/runs"),
    # gate
    "gate-nothing-to-gate": (("gate",), "gate needs --candidate FILE"),
    "gate-zero-workers": (("gate", "--release", "10.0", "-n", "0"), "give 1 or more"),
    "gate-no-drivers": (("gate", "--release", "10.0", "--drivers", ",,,"), "names no device type"),
    "gate-unknown-driver": (("gate", "--release", "10.0", "--drivers", "e1001"), "e1000"),
    "gate-reversed-baseline": (("gate", "--release", "10.0", "--baseline", "9.0..2.0"),
                               "did you mean 2.0..9.0?"),
    "gate-record-under-a-file": (("gate", "--release", "10.0", "--record", "{file}/v.json"),
                                 "is not a folder"),
    "gate-record-is-a-folder": (("gate", "--release", "10.0", "--record", "{tmp}"),
                                "is a folder, not a file"),
    "gate-negative-examples": (("gate", "--baseline-binary", "7.2", "--candidate-binary", "10.0",
                                "--examples", "-1"), "--examples: -1: give 0 or more"),
    "gate-reversed-machines": (("gate", "--baseline-binary", "7.2", "--candidate-binary", "10.0",
                                "--machines", "9.0..2.0"), "did you mean 2.0..9.0?"),
    # report
    "report-missing-run": (("report", "{tmp}/missing"), "no such run folder"),
    "report-not-a-run": (("report", "{tmp}"), "not a compatlab run folder"),
    "report-no-runs": (("report",), "no runs under"),
    "report-missing-history": (("report", "--history", "{tmp}/missing"), "no such folder of runs"),
    "report-out-under-a-file": (("report", "--out", "{file}/out"), "is not a folder"),
    "report-runs-and-history": (("report", "{tmp}", "--history", "{tmp}"), "not both"),
    "report-empty-out": (("report", "--out", ""), "--out: '' names no folder"),
    "report-empty-history": (("report", "--history", ""), "--history: '' names no folder"),
    # hints
    "hints-dump-output-under-a-file": (("hints", "dump", "--version", "7.2", "--device", "e1000",
                                        "-o", "{file}/x.hints"), "is not a folder"),
    "hints-dump-unknown-version": (("hints", "dump", "--version", "0.1", "--device", "e1000",
                                    "-o", "{tmp}/x.hints"), "unknown emulator version '0.1'"),
    "hints-show-a-folder": (("hints", "show", "{tmp}"), "is a directory"),
    "hints-dump-zero-vcpus": (("hints", "dump", "--version", "7.2", "--device", "e1000",
                               "--vcpus", "0", "-o", "{tmp}/x.hints"), "vcpus=0 is out of range"),
    "realize-vcpus-over-i440fx": (("realize", "--device", "e1000", "-smp", "256"),
                                  "vcpus=256 is out of range (1..255"),
    "realize-negative-vcpus": (("realize", "--device", "e1000", "--vcpus=-1"),
                               "vcpus=-1 is out of range"),
    "realize-vcpus-not-an-integer": (("realize", "--device", "e1000", "--vcpus", "2.5"),
                                     "'2.5' is not an integer"),
    "qemu-capture-vcpus-zero": (("qemu", "capture", "--binary", "7.2", "--sweep", "e1000",
                                 "--vcpus", "0", "-o", "{tmp}/x.jsonl"), "out of range"),
    # devices
    "devices-unknown-version": (("devices", "--version", "0.1"), "unknown emulator version"),
    "devices-empty-driver": (("devices", ""), "names no device type"),
    "devices-unknown-driver": (("devices", "e1001"), "e1000"),
    # qemu
    "qemu-capture-output-under-a-file": (("qemu", "capture", "--binary", "7.2", "--sweep", "e1000",
                                          "-o", "{file}/x.jsonl"), "is not a folder"),
    "qemu-capture-empty-sweep": (("qemu", "capture", "--binary", "7.2", "--sweep", "",
                                  "-o", "{tmp}/x.jsonl"), "names no device type"),
    "qemu-verify-negative-show": (("qemu", "verify", "--show", "-1"), "--show: -1: give 0 or more"),
    "qemu-verify-missing-corpus": (("qemu", "verify", "{tmp}/missing.jsonl"), "no such corpus"),
    "qemu-discover-empty-driver": (("qemu", "discover", ""), "names no device type"),
}  # fmt: skip


def _tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.mark.parametrize(("args", "says"), BAD.values(), ids=BAD.keys())
def test_bad_arguments_exit_2_with_one_line_before_any_work(
    args: tuple[str, ...],
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in ("COMPATLAB_RUNS_DIR", "COMPATLAB_FAILURES_DIR"):
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "file").write_text("a regular file\n")
    before = _tree(tmp_path)
    argv = [
        a.replace("{file}", str(tmp_path / "file")).replace("{tmp}", str(tmp_path)) for a in args
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("compatlab: error: ") and err.count("\n") == 1, err
    assert says in err
    assert _tree(tmp_path) == before  # nothing written: no work started


def test_the_real_entry_point_gives_one_line_and_exit_2() -> None:
    proc = run("check", "-n", "0")
    assert proc.returncode == 2
    assert proc.stderr.startswith("compatlab: error: ") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_versions_and_devices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["versions", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["versions"]) == 42
    assert main(["devices", "--version", "9.0", "--format", "json"]) == 0
    assert "pvpanic-pci" in json.loads(capsys.readouterr().out)["devices"]
    assert main(["devices", "--version", "5.0", "--format", "json"]) == 0
    assert "pvpanic-pci" not in json.loads(capsys.readouterr().out)["devices"]
    assert main(["devices", "pvpanic-pci"]) == 0
    assert "multifunction" in capsys.readouterr().out


def test_internal_errors_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from compatlab.cli import commands

    def boom(args: object) -> int:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(commands, "cmd_versions", boom)
    assert main(["versions"]) == 3
    err = capsys.readouterr().err
    assert "internal error" in err and "kaboom" in err and "Traceback" not in err


def test_hints_dump_show_and_realize(tmp_path: Path) -> None:
    hints = tmp_path / "vm.hints"
    proc = run(
        "hints",
        "dump",
        "--version",
        "2.4",
        "--device",
        "virtio-net-pci,id=net0,netdev=n",
        "--device",
        "e1000,id=gone",
        "-o",
        str(hints),
    )
    assert proc.returncode == 0, proc.stderr
    assert hints.read_bytes().startswith(b"CLHINTS\x1a")

    shown = json.loads(run("hints", "show", str(hints), "--format", "json").stdout)
    assert shown["version"] == "2.4"
    assert [d["identity"] for d in shown["devices"]] == ["gone", "net0"]
    assert "2.4" in run("hints", "show", str(hints)).stdout

    proc = run(
        "realize",
        "--version",
        "10.0",
        "--hints",
        str(hints),
        "--format",
        "json",
        "--device",
        "virtio-net-pci,id=net0,netdev=n",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    props = doc["devices"][0]["properties"]
    assert props["disable-modern"] == {"value": True, "source": "hint"}
    assert props["netdev"]["source"] == "config"
    assert doc["ignored_hints"] == [
        {
            "identity": "gone",
            "driver": "e1000",
            "kind": "not-in-config",
            "reason": "no device with this identity in the config",
        }
    ]
    # legacy-only virtio-net (device 0x1000) as on 2.4, not the modern default
    assert doc["devices"][0]["config_space"].startswith("f41a0010")


def _hints_file(tmp_path: Path) -> bytes:
    out = tmp_path / "good.hints"
    run("hints", "dump", "--version", "7.2", "--device", "e1000,id=n", "-o", str(out))
    return out.read_bytes()


BAD_HINTS = {
    "empty": lambda good: b"",
    "truncated": lambda good: good[: len(good) // 2],
    "bit-flip": lambda good: good[:30] + bytes([good[30] ^ 1]) + good[31:],
    "foreign": lambda good: b"\x89PNG\r\n\x1a\n" + bytes(40),
    "future-format": lambda good: good[:8] + b"\x09\x00" + good[10:],
}


@pytest.mark.parametrize("make", BAD_HINTS.values(), ids=BAD_HINTS.keys())
def test_bad_hints_files_exit_2_with_one_line(tmp_path: Path, make: object) -> None:
    bad = tmp_path / "bad.hints"
    bad.write_bytes(make(_hints_file(tmp_path)))  # type: ignore[operator]
    for args in (
        ("hints", "show", str(bad)),
        ("realize", "--hints", str(bad), "--device", "e1000,id=n"),
    ):
        proc = run(*args)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("compatlab: error: bad compat hints")
        assert "Traceback" not in proc.stderr


def test_hints_from_a_directory_missing_file_or_newer_version(tmp_path: Path) -> None:
    for path in (str(tmp_path), str(tmp_path / "missing.hints")):
        proc = run("hints", "show", path)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    newer = tmp_path / "new.hints"
    run("hints", "dump", "--version", "10.0", "--device", "e1000,id=n", "-o", str(newer))
    proc = run("realize", "--version", "7.2", "--hints", str(newer), "--device", "e1000,id=n")
    assert proc.returncode == 2
    assert "no downgrades" in proc.stderr


def _read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``folder`` read-only; as root, whom permissions do not stop, make it look
    so to ``os.access``, which is what the checks ask."""
    folder.chmod(0o555)
    if os.geteuid() == 0:
        real = os.access

        def access(path: Any, mode: int, **kw: Any) -> bool:
            inside = Path(os.path.abspath(path)).is_relative_to(folder)
            return False if inside and mode & os.W_OK else real(path, mode, **kw)

        monkeypatch.setattr(os, "access", access)


READ_ONLY = {
    "check-out": ("check", "--out", "{ro}/runs"),
    "check-failures-dir": ("check", "--failures-dir", "{ro}"),
    "gate-record": ("gate", "--release", "10.0", "--record", "{ro}/verdict.json"),
    "report-into-the-run": ("report", "{ro}/run"),
    "report-out": ("report", "{run}", "--out", "{ro}"),
    "hints-dump": ("hints", "dump", "--version", "7.2", "--device", "e1000", "-o", "{ro}/x.hints"),
}


@pytest.mark.parametrize("args", READ_ONLY.values(), ids=READ_ONLY.keys())
def test_a_read_only_folder_is_refused_before_any_work(
    args: tuple[str, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from compatlab.results import append
    from tests.test_report import _record

    ro, run_dir = tmp_path / "ro", tmp_path / "run"
    for folder in (ro / "run", run_dir):
        folder.mkdir(parents=True)
        append(folder / "records-1.jsonl", _record("r", "upgrade-chain", "3.1..4.0", "pass"))
    _read_only(ro / "run", monkeypatch)
    _read_only(ro, monkeypatch)
    try:
        argv = [a.replace("{ro}", str(ro)).replace("{run}", str(run_dir)) for a in args]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("compatlab: error: ") and err.count("\n") == 1, err
        assert "not writable" in err
        assert sorted(p.name for p in ro.rglob("*")) == ["records-1.jsonl", "run"]
    finally:
        ro.chmod(0o755)
        (ro / "run").chmod(0o755)


def test_more_workers_than_the_cpus_take_are_capped_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from compatlab.engine.execute import worker_limit

    args = ["check", "-n", "10000", "--versions", "9.0,10.0", "--invariant",
            "same-version-round-trip", "--seed", "1", "--no-report", "--no-replay",
            "--out", str(tmp_path), "--failures-dir", str(tmp_path / "failures")]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "compatlab: warning: -n 10000: " in err and f"using {worker_limit()}" in err
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "meta.json").read_text())["workers"] == 2  # one per task
