"""The catalogue snapshot: same catalogue as parsing, keyed by its sources, and a
cache that can only ever be missing, never wrong or in the way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compatlab.catalogue import snapshot
from compatlab.catalogue.builders import registered_builders
from compatlab.catalogue.loader import builtin_catalogue, builtin_roms, load_roms, parse_catalogue

ROOT = Path(__file__).resolve().parent.parent


def _snapshot() -> snapshot.Snapshot:
    return snapshot.Snapshot(
        key=snapshot.source_key(),
        catalogue=parse_catalogue(),
        roms=load_roms(),
        builder_homes={name: fn.__module__ for name, fn in registered_builders().items()},
    )


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMPATLAB_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_a_snapshot_reads_back_as_the_parsed_catalogue(cache: Path) -> None:
    written = _snapshot()
    snapshot.write(written)
    read = snapshot.read(written.key)
    assert read is not None
    assert dict(read.catalogue.types) == dict(written.catalogue.types)
    assert read.catalogue.compat == written.catalogue.compat
    assert read.catalogue.versions == written.catalogue.versions
    assert dict(read.roms) == dict(written.roms)
    assert dict(read.builder_homes) == dict(written.builder_homes)


def test_the_builtin_catalogue_is_the_parsed_one() -> None:
    parsed = parse_catalogue()
    assert dict(builtin_catalogue().types) == dict(parsed.types)
    assert builtin_catalogue().compat == parsed.compat
    assert dict(builtin_roms()) == load_roms()


@pytest.mark.parametrize(
    "content",
    [b"", b"not a pickle", b"\x80\x05garbage", b"\x80\x05K\x01."],
    ids=["empty", "text", "truncated", "another-object"],
)
def test_a_corrupt_snapshot_is_ignored(cache: Path, content: bytes) -> None:
    key = snapshot.source_key()
    (cache / f"catalogue-{key}.pickle").write_bytes(content)
    assert snapshot.read(key) is None


def test_a_snapshot_of_another_key_is_ignored(cache: Path) -> None:
    written = _snapshot()
    snapshot.write(written)
    os.replace(cache / f"catalogue-{written.key}.pickle", cache / "catalogue-other.pickle")
    assert snapshot.read("other") is None


def test_an_unwritable_cache_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("COMPATLAB_CACHE_DIR", str(blocker / "cache"))
    snapshot.write(_snapshot())
    assert snapshot.read(snapshot.source_key()) is None
    assert list(tmp_path.iterdir()) == [blocker]


def test_an_empty_cache_dir_turns_the_snapshot_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPATLAB_CACHE_DIR", "")
    assert snapshot.cache_dir() is None
    snapshot.write(_snapshot())
    assert snapshot.read(snapshot.source_key()) is None


def test_editing_a_source_changes_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    table = data / "types.toml"
    table.write_text("[e1000]\n")
    monkeypatch.setattr(snapshot, "_SOURCES", (str(data),))
    before = snapshot.source_key()
    assert snapshot.source_key() == before
    table.write_text("[e1000]\ndoc = 'x'\n")
    assert snapshot.source_key() != before
    (data / "notes.txt").write_text("not a source")
    after = snapshot.source_key()
    (data / "more.csv").write_text("machine_version,driver\n")
    assert snapshot.source_key() != after


def _cli(cache: Path, *code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COMPATLAB_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *code], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT
    )


REALIZE = ("-m", "compatlab", "realize", "--device", "e1000", "--format", "json")


def test_the_cli_rebuilds_a_corrupt_snapshot(cache: Path) -> None:
    first = _cli(cache, *REALIZE)
    assert first.returncode == 0, first.stderr
    (stored,) = cache.glob("catalogue-*.pickle")
    stored.write_bytes(b"\x80\x05corrupt")
    again = _cli(cache, *REALIZE)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    assert json.loads(again.stdout) == json.loads(first.stdout)
    assert snapshot.read(stored.name.removeprefix("catalogue-").removesuffix(".pickle"))


def test_a_warm_realize_imports_only_what_it_uses(cache: Path) -> None:
    code = (
        "import contextlib, io, sys\n"
        "from compatlab.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['realize', '--device', 'e1000', '--format', 'json']) == 0\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    assert _cli(cache, "-c", code).returncode == 0
    loaded = set(_cli(cache, "-c", code).stdout.split())
    unused = {
        "compatlab.catalogue.devices.virtio",
        "compatlab.hints.codec",
        "compatlab.invariants",
        "compatlab.oracles",
        "csv",
        "hypothesis",
        "pandas",
        "pytest",
        "qemu",
        "strategies",
        "tomllib",
    }
    assert "compatlab.catalogue.devices.e1000" in loaded
    assert not unused & loaded


def test_importing_the_package_imports_no_catalogue(cache: Path) -> None:
    code = "import sys, compatlab; print(sorted(m for m in sys.modules if 'compatlab' in m))"
    assert _cli(cache, "-c", code).stdout.split() == ["['compatlab']"]
    code = "from compatlab import realize, NEWEST; print(realize.__module__, NEWEST)"
    assert _cli(cache, "-c", code).stdout.split() == ["compatlab.realize", "11.1"]
    code = "import compatlab.resolve; from compatlab import resolve; print(type(resolve).__name__)"
    assert _cli(cache, "-c", code).stdout.split() == ["function"]


def test_writing_forgets_snapshots_a_month_old(cache: Path) -> None:
    old, recent = cache / "catalogue-old.pickle", cache / "catalogue-recent.pickle"
    for path in (old, recent):
        path.write_bytes(b"")
    month = 31 * 24 * 3600
    os.utime(old, (old.stat().st_atime - month, old.stat().st_mtime - month))
    written = _snapshot()
    snapshot.write(written)
    names = sorted(p.name for p in cache.iterdir())
    assert names == [f"catalogue-{written.key}.pickle", recent.name]
