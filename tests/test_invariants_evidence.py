"""What ``model-matches-qemu`` rests on, and that it sees masks.

A live QEMU runs each generated config with the guest write probe (all-ones, then
zeros, to every dword); without a binary for the machine type the captures recorded
under ``corpora/qemu/`` (plain and write probes) are checked instead, every one for
the version and device type. Either way what the probe reads back is compared with
the model's masks, so a model whose masks are wrong fails ``compatlab check`` itself,
not only the unit tests: two mutants, each invisible in reset bytes, must fail it
with QEMU hidden and with QEMU present, and the model as it is must pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from compatlab.catalogue.devices import e1000
from compatlab.cli import main
from compatlab.config import Config, parse_device_string
from compatlab.engine import run as engine
from compatlab.engine.corpus import replay_corpus
from compatlab.oracles import qemu
from compatlab.pci import regs
from compatlab.realize import realize
from compatlab.versions import Version
from tests.conftest import require_qemu

VERSION = "7.2"

Mutate = Callable[[pytest.MonkeyPatch], None]


def _function_mask_read_only(mp: pytest.MonkeyPatch) -> None:
    """MSI-X Message Control bit 14 (Function Mask, PCI Local Bus 3.0 §6.8.2.3) read
    only: QEMU's msix_init makes it guest-writable beside MSI-X Enable."""
    mp.setattr(regs, "MSIX_MASKALL", 0)


def _e1000_io_bar_halved(mp: pytest.MonkeyPatch) -> None:
    """e1000's I/O BAR (BAR 1) 32 bytes instead of QEMU's 64 (IOPORT_SIZE)."""
    mp.setattr(e1000, "IO_BAR_SIZE", e1000.IO_BAR_SIZE // 2)


MUTANTS = [
    pytest.param("virtio-net-pci", _function_mask_read_only, id="msix-function-mask-read-only"),
    pytest.param("e1000", _e1000_io_bar_halved, id="e1000-io-bar-32-bytes"),
]
DRIVERS = [pytest.param(p.values[0], id=p.values[0]) for p in MUTANTS]


def _forget_binaries() -> None:
    qemu.available_binaries.cache_clear()
    engine._qemu_binaries.cache_clear()


@pytest.fixture
def no_qemu(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As if no QEMU were installed: ``COMPATLAB_QEMU`` names a path with nothing
    there (the binaries found are kept per process: forgotten before and after)."""
    monkeypatch.setenv("COMPATLAB_QEMU", "/nonexistent/qemu-system-x86_64")
    _forget_binaries()
    yield
    _forget_binaries()


@pytest.fixture(autouse=True)
def _builtin_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPATLAB_CORPORA", raising=False)


def _check(tmp_path: Path, driver: str) -> tuple[int, pd.Series]:
    """``compatlab check --invariant model-matches-qemu`` on one version and device
    type, in this process (``-n 1``, so that a monkeypatched model is what runs): its
    exit code and its one result row."""
    out = tmp_path / "runs"
    code = main(
        ["check", "--invariant", "model-matches-qemu", "--versions", VERSION, "--device", driver,
         "--profile", "dev", "--seed", "1", "-n", "1", "--out", str(out),
         "--failures-dir", str(tmp_path / "failures"), "--no-report", "--no-replay"]
    )  # fmt: skip
    (run_dir,) = out.iterdir()
    (row,) = (r for _, r in pd.read_parquet(run_dir / "results.parquet").iterrows())
    return code, row


@pytest.mark.parametrize(("driver", "mutate"), MUTANTS)
def test_the_mutants_show_only_in_masks(driver: str, mutate: Mutate) -> None:
    """Reset bytes are the same: a comparison of bytes alone cannot see them."""
    config = Config((parse_device_string(f"{driver},id=dev0"),))
    (real,) = realize(config, VERSION).devices
    with pytest.MonkeyPatch.context() as mp:
        mutate(mp)
        (mutant,) = realize(config, VERSION).devices
    assert mutant.space.config == real.space.config
    assert mutant.space.wmask != real.space.wmask


@pytest.mark.parametrize("driver", DRIVERS)
def test_without_qemu_the_recorded_captures_are_the_evidence(
    tmp_path: Path, no_qemu: None, driver: str
) -> None:
    code, row = _check(tmp_path, driver)
    assert code == 0
    assert row.status == "pass"
    assert row.examples > 0  # every recorded line of the version and type, none generated
    assert row.note.startswith(f"recorded evidence: {row.examples} captures under ")
    assert row.note.endswith("(no QEMU binary answers)")


@pytest.mark.parametrize(("driver", "mutate"), MUTANTS)
def test_without_qemu_a_mask_mutant_fails_check(
    tmp_path: Path, no_qemu: None, driver: str, mutate: Mutate
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mutate(mp)
        code, row = _check(tmp_path, driver)
        assert code == 1
        assert row.status == "fail"
        failure = json.loads(row.failure)
        assert "as recorded (" in failure["detail"]
        assert "after writing ones" in failure["detail"]
        assert row.note.startswith("recorded evidence: ")
        # The recorded line that failed is kept, and replays without QEMU.
        (replay,) = replay_corpus(tmp_path / "failures", ["model-matches-qemu"])
        assert replay.still_failing
    (replay,) = replay_corpus(tmp_path / "failures", ["model-matches-qemu"])
    assert not replay.still_failing


def test_with_neither_qemu_nor_captures_nothing_passes(
    tmp_path: Path, no_qemu: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv("COMPATLAB_CORPORA", str(empty))
    code, row = _check(tmp_path, "e1000")
    assert row.status == "skip" and row.examples == 0
    assert f"no recorded capture under {empty / 'qemu'} covers it" in row.note
    assert code == 0  # a skip is not a failure; the summary counts it apart


@pytest.mark.qemu
@pytest.mark.parametrize("driver", DRIVERS)
def test_with_qemu_the_live_binary_is_the_evidence(tmp_path: Path, driver: str) -> None:
    binary = require_qemu(VERSION)
    code, row = _check(tmp_path, driver)
    assert code == 0
    assert row.status == "pass" and row.examples > 0
    assert row.note == f"live evidence: QEMU {binary.release}"


@pytest.mark.qemu
@pytest.mark.parametrize(("driver", "mutate"), MUTANTS)
def test_with_qemu_a_mask_mutant_fails_check(tmp_path: Path, driver: str, mutate: Mutate) -> None:
    binary = require_qemu(VERSION)
    assert Version.parse(VERSION) in binary.machines
    with pytest.MonkeyPatch.context() as mp:
        mutate(mp)
        code, row = _check(tmp_path, driver)
    assert code == 1
    assert row.status == "fail"
    failure = json.loads(row.failure)
    assert failure["detail"].startswith(f"QEMU {binary.release}: ")
    assert "after writing ones" in failure["detail"]
