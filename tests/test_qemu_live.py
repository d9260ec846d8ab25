"""Live checks against real QEMU binaries (marked ``qemu``).

The differential test generates random configs (every modelled device, random
property values, 1–6 devices at random slots, a random machine type) and
compares the model with each binary: bytes where QEMU starts, a refusal where
QEMU refuses. QEMU 5.2 is the ground truth for machine types 1.4–5.2 (its own
releases' guests); 7.2, 10.0 and 11.1 on those machine types are the upgraded
view, and each is the ground truth for its own machine types after the one before.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compatlab.catalogue import Catalogue, builtin_catalogue
from compatlab.config import Config, parse_device_string
from compatlab.errors import CompatlabError
from compatlab.oracles.capture import CaptureRecord, capture_config
from compatlab.oracles.compare import Verdict, check_record
from compatlab.oracles.qemu import QemuBinary, QemuFault, Slot, run_batch
from compatlab.realize import realize
from compatlab.versions import Version
from strategies import configs
from tests.conftest import require_qemu

pytestmark = pytest.mark.qemu

EXAMPLES = int(os.environ.get("COMPATLAB_DIFFERENTIAL_EXAMPLES", "150"))


# Every binary has ich9-ahci (pvpanic-pci is new in 6.0), with only the generic
# PCI device properties.
DEVICE = "ich9-ahci"


def test_oracle_reads_config_space(qemu: QemuBinary) -> None:
    result = run_batch(qemu, qemu.machines[-1], [f"{DEVICE},addr=04.0"], [Slot(4)])
    assert result.spaces is not None, result.error
    space = result.spaces[0]
    assert len(space) == 256
    assert space[:4] == bytes.fromhex("86802229")  # Intel 82801IR (ICH9) AHCI


def test_oracle_reports_refusals(qemu: QemuBinary) -> None:
    result = run_batch(qemu, qemu.machines[-1], [f"{DEVICE},addr=04.0,bogus=1"], [Slot(4)])
    assert result.refused
    assert "bogus" in (result.error or "")


def test_oracle_binaries_offer_the_expected_machine_types(qemu: QemuBinary) -> None:
    expected_oldest = {
        Version(5, 2): Version(1, 4),
        Version(7, 2): Version(1, 4),
        Version(10, 0): Version(2, 4),
        Version(11, 1): Version(5, 2),
    }
    assert qemu.machines[0] == expected_oldest[qemu.version]
    assert qemu.machines[-1] == qemu.version


def _run_config(binary: QemuBinary, machine: Version, config: Config) -> CaptureRecord:
    """What QEMU did; a QEMU that aborts on the config (virtio-blk num-queues=1025,
    nvme cmb_size_mb=3, …) is kept as a fault capture, as a sweep keeps it."""
    try:
        return capture_config(binary, machine, config)
    except QemuFault as exc:
        return CaptureRecord(
            str(binary.version),
            binary.release,
            str(machine),
            tuple(config.device_strings()),
            fault=exc.what,
            stderr=exc.stderr,
            vcpus=config.vcpus or 1,
        )


def _verdict(record: CaptureRecord, cat: Catalogue, *, via_hints: bool = False) -> Verdict:
    """The model's verdict on a capture; for a QEMU that aborted, the model must refuse
    the config (it has no bytes to give, and QEMU ran no guest)."""
    if record.fault is None:
        return check_record(record, cat, via_hints=via_hints)
    try:
        realize(
            record.config(),
            record.binary,
            defaults_at=record.machine,
            catalogue=cat,
        )
    except CompatlabError:
        return Verdict(True)
    return Verdict(False, f"QEMU {record.fault}, but the model realized it")


@pytest.mark.parametrize("release", ["5.2", "7.2", "10.0", "11.1"])
def test_model_matches_live_qemu_on_random_configs(release: str) -> None:
    binary = require_qemu(release)
    cat = builtin_catalogue()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        machine = data.draw(st.sampled_from(binary.machines), label="machine")
        config = data.draw(configs(binary.version, catalogue=cat), label="config")
        record = _run_config(binary, machine, config)
        verdict = _verdict(record, cat)
        assert verdict.agrees, f"{config.device_strings()} on pc-i440fx-{machine}: {verdict.detail}"

    check()


@pytest.mark.parametrize("release", ["5.2", "7.2", "10.0", "11.1"])
def test_hints_upgrade_matches_live_qemu_machine_types(release: str) -> None:
    """realize(V, C, dump(U, C)) against QEMU V with machine type pc-i440fx-U."""
    binary = require_qemu(release)
    cat = builtin_catalogue()

    @settings(
        max_examples=max(EXAMPLES // 3, 10),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        machine = data.draw(st.sampled_from(binary.machines[:-1]), label="machine")
        config = data.draw(configs(machine, catalogue=cat), label="config")
        record = _run_config(binary, machine, config)
        verdict = _verdict(record, cat, via_hints=True)
        assert verdict.agrees, f"{config.device_strings()} from {machine}: {verdict.detail}"

    check()


QUEUED = (
    "virtio-blk-pci,id=blk,drive=d0,addr=03.0",
    "virtio-scsi-pci,id=scsi,addr=04.0",
    "virtio-blk-pci-non-transitional,id=blk1,drive=d1,addr=05.0",
    "virtio-scsi-pci,id=scsi1,num_queues=4294967295,addr=06.0",
    "virtio-net-pci,id=net,netdev=n0,addr=07.0",
)


@pytest.mark.parametrize("release", ["5.2", "7.2", "10.0", "11.1"])
def test_auto_queue_counts_follow_smp_as_the_model_says(release: str) -> None:
    """With -smp 4, QEMU gives virtio-blk and virtio-scsi one queue per vCPU (and MSI-X
    vectors to match) on its own machine type, and one queue on pc-i440fx-5.1
    (hw_compat_5_1; 11.1 has no 5.1 machine type, so its oldest, 5.2, auto too); the
    model agrees directly and through hints, and QEMU with -smp 1 shows other bytes."""
    binary = require_qemu(release)
    older = Version(5, 1) if Version(5, 1) in binary.machines else binary.machines[0]
    for machine in (older, binary.version):
        devices = tuple(parse_device_string(d) for d in QUEUED)
        four = capture_config(binary, machine, Config(devices, vcpus=4))
        one = capture_config(binary, machine, Config(devices))
        assert (four.vcpus, one.vcpus) == (4, 1)
        assert check_record(four).agrees, check_record(four).detail
        assert check_record(four, via_hints=True).agrees
        assert check_record(one).agrees
        assert four.config_space is not None and one.config_space is not None
        differs = [a != b for a, b in zip(four.config_space, one.config_space, strict=True)]
        # The explicit auto always follows -smp, defaults only where auto is the default,
        # virtio-net never (its queues come from its netdev).
        auto_default = machine >= Version(5, 2)
        assert differs == [auto_default, auto_default, auto_default, True, False]


def test_device_strings_parse_back() -> None:
    # The differential test sends config.device_strings() to QEMU; they must mean the same config.
    config = Config((parse_device_string("pvpanic-pci,id=a,addr=03.0,romsize=4096"),))
    assert Config(tuple(parse_device_string(s) for s in config.device_strings())) == config


def test_discover_finds_the_multifunction_bit(qemu: QemuBinary) -> None:
    from compatlab.oracles.discover import discover

    report = discover(qemu, qemu.machines[-1], DEVICE)
    rows = {row["name"]: row for row in report["properties"]}
    # The multi-function bit lives in the header type register (PCI 3.0 §6.2.1).
    assert rows["multifunction"]["changes"] == ["on -> 0x0e"]
    # With no ROM file there is no ROM BAR to switch off.
    assert rows["rombar"]["changes"] == []


def _processes_mentioning(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_a_start_that_times_out_leaves_no_process(qemu: QemuBinary) -> None:
    import uuid

    from compatlab.errors import OracleError

    marker = f"leak{uuid.uuid4().hex[:12]}"
    with pytest.raises(OracleError, match=r"did not open its monitor within 0\.001s"):
        run_batch(
            qemu,
            qemu.machines[-1],
            [f"{DEVICE},id={marker},addr=04.0"],
            [Slot(4)],
            timeout=0.001,
        )
    assert _processes_mentioning(marker) == []
    run_batch(qemu, qemu.machines[-1], [f"{DEVICE},id={marker},addr=04.0"], [Slot(4)])
    assert _processes_mentioning(marker) == []
