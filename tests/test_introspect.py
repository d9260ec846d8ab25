"""compatlab.oracles.introspect: what a binary says about itself over QMP.

How compat properties apply (QEMU's order, the backend's before the proxy's), how
the entries a machine type files are told apart, faults of a QEMU that cannot be
asked (fake binaries, as in test_oracle_faults), and, with real binaries, what each
of them reports and the per-binary cache.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import MappingProxyType

import pytest

from compatlab.oracles.introspect import (
    CompatProp,
    Introspection,
    QomProperty,
    QomType,
    introspect,
    machine_values,
)
from compatlab.oracles.learn import _filed, machine_versions
from compatlab.oracles.qemu import QemuFault, probe_binary
from compatlab.versions import Version
from tests.conftest import require_qemu
from tests.test_oracle_faults import fake, survivors

TYPES = [
    QomType("pci-device", "device", True),
    QomType("virtio-pci", "pci-device", True),
    QomType("virtio-net-pci-base", "virtio-pci", True),
    QomType("virtio-net-pci", "virtio-net-pci-base", False),
    QomType("virtio-device", "device", True),
    QomType("virtio-net-device", "virtio-device", False),
    QomType("virtio-mem-pci", "virtio-pci", False),
]


def intro(machines: dict[str, tuple[CompatProp, ...] | None]) -> Introspection:
    net = (
        QomProperty("vectors", "uint32", 4294967295, True),
        QomProperty("csum", "bool", True, True),
        QomProperty("mac", "str"),
        QomProperty("virtio-backend", "child<virtio-net-device>"),
        QomProperty("realized", "bool"),
    )
    backend = (QomProperty("csum", "bool", True, True), QomProperty("mac", "str"))
    return Introspection(
        path="/fake",
        release="10.0.0",
        types=MappingProxyType({t.name: t for t in TYPES}),
        properties=MappingProxyType({"virtio-net-pci": net, "virtio-net-device": backend}),
        machines=MappingProxyType(machines),
        compat_props=True,
    )


def test_ancestry_backend_and_settings() -> None:
    i = intro({})
    assert i.ancestry("virtio-net-pci") == (
        "virtio-net-pci",
        "virtio-net-pci-base",
        "virtio-pci",
        "pci-device",
    )
    assert i.backend("virtio-net-pci") == "virtio-net-device"
    assert set(i.props("virtio-net-pci")) == {"vectors", "csum", "mac"}


def test_compat_props_apply_in_order_backend_first() -> None:
    """Later entries win; an entry reaches subtypes; the proxy's own globals are set
    after the backend's; entries for other types (virtio-mem-pci) reach nothing."""
    i = intro(
        {
            "pc-i440fx-2.0": (
                CompatProp("virtio-pci", "vectors", "3"),
                CompatProp("virtio-net-pci-base", "vectors", "5"),
                CompatProp("virtio-net-pci", "csum", "on"),
                CompatProp("virtio-device", "csum", "off"),
                CompatProp("virtio-mem-pci", "vectors", "0"),
            ),
            "pc-i440fx-3.0": (CompatProp("virtio-net-device", "csum", "off"),),
        }
    )
    assert machine_values(i, "virtio-net-pci", None) == {"vectors": 4294967295, "csum": True}
    assert machine_values(i, "virtio-net-pci", "pc-i440fx-2.0") == {"vectors": "5", "csum": "on"}
    assert machine_values(i, "virtio-net-pci", "pc-i440fx-3.0") == {
        "vectors": 4294967295,
        "csum": "off",
    }


def test_entries_filed_per_machine_type() -> None:
    """A machine type's list is the next newer one's followed by its own arrays."""
    family = CompatProp("ramfb", "x", "1")
    a, b, c = (CompatProp("pci-device", p, "off") for p in ("a", "b", "c"))
    i = intro(
        {
            "pc-i440fx-9.2": (family,),
            "pc-i440fx-9.1": (family, a),
            "pc-i440fx-9.0": (family, a, b, c),
            "pc-q35-9.0": (family,),
        }
    )
    assert machine_versions(i) == (Version(9, 0), Version(9, 1), Version(9, 2))
    assert _filed(i) == {Version(9, 1): [a], Version(9, 0): [b, c]}


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(
    ("mode", "what"),
    [
        ("crash-start", "was killed by SIGSEGV before its monitor answered"),
        ("exit-zero", "exited with status 0 before its monitor answered"),
        ("hang-start", "did not open its monitor within 2s"),
        ("ok", "answered garbage on QMP: qom-list-types returned '{}'"),
        ("garbage", "broke off the QMP handshake"),
        ("refuse", "exited with status 1 before its monitor answered"),
        ("orphan-ok", "answered garbage on QMP"),
        ("flood", "flooded its standard error"),
    ],
)
def test_faults_are_oracle_errors_and_leave_nothing(tmp_path: Path, mode: str, what: str) -> None:
    binary = probe_binary(fake(tmp_path, "10.0", mode))
    with pytest.raises(QemuFault) as info:
        introspect(binary, ["e1000"], timeout=2, cache=False)
    assert what in str(info.value)
    assert survivors(tmp_path) == []


# -- real binaries ----------------------------------------------------------------------------


@pytest.mark.qemu
@pytest.mark.parametrize("release", ["5.2", "7.2", "10.0", "11.1"])
def test_real_binary_introspection(release: str) -> None:
    binary = require_qemu(release)
    i = introspect(binary, ["virtio-net-pci", "e1000"], cache=False)
    assert i.release == binary.release
    assert i.ancestry("virtio-net-pci")[1:] == ("virtio-net-pci-base", "virtio-pci", "pci-device")
    assert i.backend("virtio-net-pci") == "virtio-net-device"
    assert i.ancestry("virtio-net-device") == ("virtio-net-device", "virtio-device")
    assert "mac" in i.props("virtio-net-device") and "vectors" in i.props("virtio-net-pci")
    assert machine_versions(i) == binary.machines


@pytest.mark.qemu
def test_cache_per_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = require_qemu("7.2")
    monkeypatch.setenv("COMPATLAB_CACHE_DIR", str(tmp_path))
    first = introspect(binary, ["e1000"])
    (kept,) = tmp_path.glob("introspect-7.2*.json")

    def no_start(*args: object) -> None:
        raise AssertionError("the cache was not used")

    with monkeypatch.context() as m:
        m.setattr("compatlab.oracles.introspect._ask", no_start)
        again = introspect(binary, ["e1000"])
    assert again.properties == first.properties and again.machines == first.machines
    kept.write_text("damaged")
    assert introspect(binary, ["e1000"]).properties == first.properties
