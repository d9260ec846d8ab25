"""The CLI contract (DESIGN.md §5): JSON shape, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


BAD = {
    "unknown-version": ("realize", "--version", "2.13", "--device", "pvpanic-pci"),
    "unknown-device": ("realize", "--device", "virtio-nett-pci"),
    "unknown-property": ("realize", "--device", "pvpanic-pci,bogus=1"),
    "bad-value": ("realize", "--device", "pvpanic-pci,romsize=3"),
    "no-devices": ("realize",),
    "missing-config": ("realize", "--config", "/nonexistent/vm.toml"),
    "bad-usage": ("realize", "--format", "xml"),
    "no-command": (),
    "not-yet-existing": ("realize", "--version", "5.0", "--device", "pvpanic-pci"),
    "bad-devices-version": ("devices", "--version", "0.1"),
}


@pytest.mark.parametrize("args", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("compatlab: error: ")
    assert "Traceback" not in proc.stderr


def test_versions_and_devices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["versions", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["versions"]) == 38
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
