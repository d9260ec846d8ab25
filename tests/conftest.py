"""Shared fixtures. Real-QEMU tests skip without a binary, unless
COMPATLAB_REQUIRE_QEMU=1 (set by .ci/run), where a missing binary fails them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compatlab.errors import QemuNotFoundError
from compatlab.oracles.qemu import QemuBinary, binary_for

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"


def require_qemu(version: str) -> QemuBinary:
    """The QEMU binary of release ``version``; skip (or fail under CI) without one."""
    try:
        return binary_for(version)
    except QemuNotFoundError as exc:
        if os.environ.get("COMPATLAB_REQUIRE_QEMU") == "1":
            pytest.fail(f"real QEMU is mandatory here: {exc}")
        pytest.skip(f"needs real QEMU {version}: {exc}")


@pytest.fixture(params=["5.2", "7.2", "10.0", "11.1"], ids=lambda v: f"qemu-{v}")
def qemu(request: pytest.FixtureRequest) -> QemuBinary:
    """Each installed release, for tests of the oracle itself (no model involved:
    11.1 is newer than the catalogue)."""
    return require_qemu(request.param)
