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
