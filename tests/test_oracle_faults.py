"""Oracle faults are oracle errors: a QEMU that crashes, hangs, floods its output or
speaks garbage gives no evidence, so it is never a refusal, never a model failure
and never a pass.

Fake binaries (``tests/fake_qemu/fake-qemu``, one mode per file name) misbehave on
purpose; the oracle, the binary gate and ``model-matches-qemu`` run them. Each
fault must be told apart from a real refusal, say which binary failed how, be
noticed at once when the process is already dead (not after a connect timeout),
and leave no process behind, grandchildren included.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compatlab.oracles.capture import CaptureRecord, capture_one, read_corpus, write_records
from compatlab.oracles.compare import check_record
from compatlab.oracles.qemu import EXIT_GRACE, QemuFault, Slot, probe_binary, run_batch
from compatlab.versions import Version
from tests.fake_qemu import fake, survivors

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

DEVICE = "e1000,addr=03.0"
#: A timeout short enough for the hang cases; the faults of a dead process must be
#: seen long before it.
TIMEOUT = 6.0
#: Slack for starting a fake under a loaded test run (a start takes ~0.1 s).
SLACK = 2.5


#: mode, what the fault must say, and how long the oracle must wait to know: a
#: dead process is noticed at once; a live one that broke its monitor connection
#: gets the grace a refusing QEMU has to exit; a silent one, the timeout.
FAULTS = [
    ("crash-start", r"was killed by SIGSEGV before its monitor answered", 0),
    ("exit-silent", r"exited with status 1 before its monitor answered$", 0),
    ("exit-zero", r"exited with status 0 before its monitor answered", 0),
    (
        "warn-only",
        r"exited with status 1 before its monitor answered; its last words: .*warning",
        0,
    ),
    ("crash-mid", r"was killed by SIGKILL while its config space was read", 0),
    ("orphan-crash-mid", r"was killed by SIGKILL while its config space was read", 0),
    ("garbage-reply", r"answered garbage on its monitor: 'the cake is a lie", 0),
    ("flood", r"flooded its standard error \(over 16 MiB\)", 0),
    ("garbage", r"broke off the QMP handshake .* but kept running", EXIT_GRACE),
    ("unfinished", r"stopped before its guest program finished \(no done marker", 0),
    ("hang-start", rf"did not open its monitor within {TIMEOUT:.0f}s", TIMEOUT),
    ("hang-mid", rf"stopped answering its monitor within {TIMEOUT:.0f}s", TIMEOUT),
    ("hang-guest", rf"did not finish its guest program within {TIMEOUT:.0f}s", TIMEOUT),
]


@pytest.mark.parametrize(("mode", "says", "wait"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_fault_is_an_oracle_error_never_a_refusal(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], mode: str, says: str, wait: float
) -> None:
    binary = probe_binary(fake(tmp_path, "7.2", mode))
    started = time.perf_counter()
    with pytest.raises(QemuFault, match=says) as caught:
        run_batch(binary, Version(7, 2), [DEVICE], [Slot(3)], timeout=TIMEOUT, probe=True)
    elapsed = time.perf_counter() - started
    assert str(binary.path) in str(caught.value), "the fault names the binary"
    assert wait <= elapsed < wait + SLACK, f"{mode} took {elapsed:.1f}s to notice"
    assert survivors(tmp_path) == []
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("mode", ["refuse", "orphan-refuse"])
def test_a_refusal_is_a_refusal_and_leaves_no_process(tmp_path: Path, mode: str) -> None:
    binary = probe_binary(fake(tmp_path, "7.2", mode))
    result = run_batch(binary, Version(7, 2), [DEVICE], [Slot(3)], timeout=TIMEOUT)
    assert result.spaces is None
    assert result.error == "-device e1000: a fake refusal"
    assert survivors(tmp_path) == []


@pytest.mark.parametrize("mode", ["ok", "orphan-probe"])
def test_a_working_binary_is_read_and_leaves_no_process(tmp_path: Path, mode: str) -> None:
    binary = probe_binary(fake(tmp_path, "7.2", mode))
    assert survivors(tmp_path) == [], "probing (--version, -machine help) left a process"
    assert binary.release == "7.2.99" and binary.machines[-1] == Version(7, 2)
    result = run_batch(binary, Version(7, 2), [DEVICE], [Slot(3)], timeout=TIMEOUT, probe=True)
    assert result.spaces == (b"\xff" * 256,)
    assert result.probes == ((b"\xff" * 256, b"\xff" * 256),)
    assert survivors(tmp_path) == []


@pytest.mark.parametrize(
    ("mode", "says", "wait"),
    [f for f in FAULTS if f[0] in ("crash-start", "crash-mid", "flood", "hang-mid")],
    ids=["crash-start", "crash-mid", "flood", "hang-mid"],
)
def test_without_pidfds_an_exit_is_awaited_by_a_thread_as_soon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, says: str, wait: float
) -> None:
    def no_pidfd(pid: int) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    binary = probe_binary(fake(tmp_path, "7.2", mode))
    started = time.perf_counter()
    with pytest.raises(QemuFault, match=says):
        run_batch(binary, Version(7, 2), [DEVICE], [Slot(3)], timeout=TIMEOUT, probe=True)
    elapsed = time.perf_counter() - started
    assert wait <= elapsed < wait + SLACK, f"{mode} took {elapsed:.1f}s to notice"
    assert survivors(tmp_path) == []
    ok = probe_binary(fake(tmp_path, "7.2", "ok"))
    assert run_batch(ok, Version(7, 2), [DEVICE], [Slot(3)], timeout=TIMEOUT).spaces


def test_the_output_limit_is_on_qemu_not_on_the_oracle(tmp_path: Path) -> None:
    import resource

    before = resource.getrlimit(resource.RLIMIT_FSIZE)
    binary = probe_binary(fake(tmp_path, "7.2", "flood"))
    with pytest.raises(QemuFault, match="flooded its standard error"):
        run_batch(binary, Version(7, 2), [DEVICE], [Slot(3)], timeout=TIMEOUT)
    assert resource.getrlimit(resource.RLIMIT_FSIZE) == before


def test_a_sweep_keeps_a_crash_as_a_fault_not_a_refusal(tmp_path: Path) -> None:
    binary = probe_binary(fake(tmp_path, "7.2", "crash-mid"))
    record = capture_one(binary, Version(7, 2), [DEVICE])
    assert record.error is None and record.config_space is None
    assert record.fault is not None and "SIGKILL" in record.fault
    path = tmp_path / "captures.jsonl"
    write_records(path, [record])
    (back,) = read_corpus(path)
    assert back == record
    verdict = check_record(back)
    assert not verdict.applicable and "crashed" in verdict.detail
    assert survivors(tmp_path) == []


def test_a_binary_broken_for_every_config_is_no_finding(tmp_path: Path) -> None:
    binary = probe_binary(fake(tmp_path, "7.2", "crash-start"))
    with pytest.raises(QemuFault, match="SIGSEGV"):
        capture_one(binary, Version(7, 2), [DEVICE])


def _compatlab(
    args: list[str], binaries: list[Path], cwd: Path
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COMPATLAB_QEMU": os.pathsep.join(map(str, binaries))}
    env.pop("COMPATLAB_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "compatlab", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
    )  # fmt: skip


GATE = ["gate", "--baseline-binary", "7.1", "--candidate-binary", "7.2", "--drivers", "e1000",
        "--examples", "1"]  # fmt: skip

#: baseline mode, candidate mode, exit code, what stderr or stdout must say.
GATE_CASES = [
    ("ok", "ok", 0, r"gate: PASS"),
    ("crash-mid", "ok", 3, r"ERROR e1000: .*qemu-7\.1-crash-mid\) was killed by SIGKILL"),
    ("ok", "crash-mid", 3, r"ERROR e1000: .*qemu-7\.2-crash-mid\) was killed by SIGKILL"),
    ("ok", "garbage-reply", 3, r"qemu-7\.2-garbage-reply\) answered garbage"),
    ("exit-silent", "ok", 3, r"oracle error: .*qemu-7\.1-exit-silent\) exited with status 1"),
    ("crash-start", "ok", 3, r"oracle error: .*qemu-7\.1-crash-start\) was killed by SIGSEGV"),
]


@pytest.mark.parametrize(
    ("base", "cand", "code", "says"), GATE_CASES, ids=[f"{b}-vs-{c}" for b, c, _, _ in GATE_CASES]
)
def test_the_binary_gate_never_passes_on_a_fault(
    tmp_path: Path, base: str, cand: str, code: int, says: str
) -> None:
    verdict_file = tmp_path / "verdict.json"
    binaries = [fake(tmp_path, "7.1", base), fake(tmp_path, "7.2", cand)]
    started = time.perf_counter()
    run = _compatlab([*GATE, "--record", str(verdict_file)], binaries, tmp_path)
    elapsed = time.perf_counter() - started
    out = run.stdout + run.stderr
    assert run.returncode == code, out
    assert "Traceback" not in out
    assert re.search(says, out), out
    if verdict_file.exists():
        verdict = json.loads(verdict_file.read_text())["verdict"]
        assert verdict == ("pass" if code == 0 else "error")
    else:
        assert code == 3, "only a binary broken from the start gives no verdict"
    assert elapsed < 120
    assert survivors(tmp_path) == []


CHECK = ["check", "--invariant", "model-matches-qemu", "--versions", "7.2", "--device", "e1000",
         "--profile", "dev", "--seed", "1", "--no-report"]  # fmt: skip


def test_model_matches_qemu_against_a_crashing_qemu_is_an_error_not_a_failure(
    tmp_path: Path,
) -> None:
    failures = tmp_path / "failures"
    args = [*CHECK, "--out", str(tmp_path / "runs"), "--failures-dir", str(failures)]
    run = _compatlab(args, [fake(tmp_path, "7.2", "crash-mid")], tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 3, out
    assert "killed by SIGKILL" in out and "qemu-7.2-crash-mid" in out
    assert not failures.exists() or not any(failures.rglob("*.*")), "a crash was promoted"
    assert survivors(tmp_path) == []


def test_model_matches_qemu_against_a_wrong_qemu_is_a_failure(tmp_path: Path) -> None:
    """The same run against a fake that answers (all-ones, unlike any device) fails
    the model and promotes the failure: the test above could fail."""
    failures = tmp_path / "failures"
    args = [*CHECK, "--out", str(tmp_path / "runs"), "--failures-dir", str(failures)]
    run = _compatlab(args, [fake(tmp_path, "7.2", "ok")], tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert any(failures.rglob("*.*")), "the failure was not promoted"
    assert survivors(tmp_path) == []


def test_a_fault_record_is_not_mistaken_for_a_refusal() -> None:
    record = CaptureRecord("7.2", "7.2.99", "7.2", (DEVICE,), fault="was killed by SIGSEGV")
    assert json.loads(json.dumps(record.to_json()))["fault"] == "was killed by SIGSEGV"
    assert "error" not in record.to_json() and "config_space" not in record.to_json()


# -- a release newer than the catalogue --------------------------------------------------
# Not a fault, but a binary the model cannot answer for (QEMU 12.0, say): a sweep,
# which draws its configs from the catalogue, refuses it at once. (The binary gate
# takes it as a candidate: tests/test_gate.py.)


def test_a_sweep_of_a_release_newer_than_the_catalogue_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "captures.jsonl"
    args = ["qemu", "capture", "--binary", "12.0", "--sweep", "e1000", "-o", str(out)]
    run = _compatlab(args, [fake(tmp_path, "12.0", "ok")], tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.startswith("compatlab: error: --sweep draws its configs from the catalogue")
    assert "12.0" in run.stderr and not out.exists()
    assert survivors(tmp_path) == []
