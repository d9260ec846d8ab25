"""The binary release gate: QEMU 7.2 against 10.0 on the machine types both offer.

Whatever the gate finds is a real finding; it is recorded, shrunk, in
corpora/gate/7.2-10.0.json, and this test asserts that the live verdict is still
the recorded one.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from compatlab.cli.main import main
from compatlab.engine import Outcome, Status, Task, reproduce_command
from compatlab.errors import ExitCode
from compatlab.gate import compare_records
from compatlab.invariants import Failure
from compatlab.oracles.capture import CaptureRecord
from compatlab.versions import Version
from tests.conftest import require_qemu

RECORDED = Path(__file__).resolve().parent.parent / "corpora" / "gate" / "7.2-10.0.json"


def _record(
    space: str, probe: tuple[str, str] | None = None, error: str | None = None
) -> CaptureRecord:
    return CaptureRecord(
        "7.2",
        "7.2.22",
        "5.0",
        ("e1000,addr=03.0",),
        None if error else (space,),
        error,
        None if probe is None else (probe,),
    )


def test_compare_records_finds_bytes_probes_and_refusals() -> None:
    same = "00" * 256
    assert compare_records(_record(same, (same, same)), _record(same, (same, same))) is None
    moved = "00" * 4 + "01" + "00" * 251
    assert compare_records(_record(same), _record(moved))["offset"] == 4  # type: ignore[index]
    probe = compare_records(_record(same, (same, same)), _record(same, (moved, same)))
    assert probe is not None and "all-ones" in probe["what"]
    refused = compare_records(_record(same), _record(same, error="nope"))
    assert refused is not None and "only the candidate refuses" in refused["what"]
    assert refused["refused_by"] == "candidate"
    newer = compare_records(_record(same, error="nope"), _record(same))
    assert newer is not None and newer["refused_by"] == "baseline"


#: Every recorded binary gate, ``BASELINE-CANDIDATE.json``.
VERDICTS = sorted(RECORDED.parent.glob("*-*.json"))


@pytest.mark.qemu
@pytest.mark.parametrize("recorded_file", VERDICTS, ids=[f.stem for f in VERDICTS])
def test_the_live_gate_gives_the_recorded_verdict(recorded_file: Path) -> None:
    from compatlab.gate import binary_gate, binary_tasks

    base_release, cand_release = recorded_file.stem.split("-")
    baseline, candidate = require_qemu(base_release), require_qemu(cand_release)
    recorded = json.loads(recorded_file.read_text())
    machines = [m for m in baseline.machines if m in candidate.machines]
    assert [str(m) for m in machines] == recorded["machines"]
    tasks = binary_tasks(baseline, candidate, machines, examples=recorded["per_type"])
    verdict = binary_gate(baseline, candidate, tasks, workers=2)
    assert verdict.to_json()["verdict"] == recorded["verdict"]
    live = {d["driver"]: d for d in verdict.differences}
    kept = {d["driver"]: d for d in recorded["differences"]}
    assert set(live) == set(kept)
    for driver, diff in kept.items():
        for key in ("machine", "config", "offset", "what", "reproduce"):
            assert live[driver].get(key) == diff.get(key), (driver, key)
    noted = {d["driver"] for d in verdict.newly_accepted}
    assert noted == {d["driver"] for d in recorded["newly_accepted"]}
    assert verdict.examples == recorded["examples"]


@pytest.mark.parametrize("recorded_file", VERDICTS, ids=[f.stem for f in VERDICTS])
def test_every_recorded_difference_is_a_known_finding(recorded_file: Path) -> None:
    """A difference between two releases on an old machine type is a compat break
    of QEMU's: the model must know it as a finding (a machine-type upgrade across
    the two releases that the finding explains), with its evidence."""
    from compatlab import paths
    from compatlab.engine.corpus import load_findings

    findings = load_findings(str(paths.findings_file()))
    recorded = json.loads(recorded_file.read_text())
    releases = tuple(recorded_file.stem.split("-"))
    for diff in recorded["differences"]:
        failure = Failure(
            "machine-type-upgrade", releases, diff.get("device"), diff["what"],
            driver=diff["driver"], machine=diff["machine"],
        )  # fmt: skip
        assert any(f.explains(failure) for f in findings), (
            f"{recorded_file.name}: {diff['driver']} differs ({diff['what']}) "
            "but no finding in corpora/findings.toml explains it"
        )


@pytest.mark.qemu
def test_a_binary_gate_failure_replays_from_its_reproduce_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    require_qemu("7.2")
    require_qemu("10.0")
    (diff, *_) = json.loads(RECORDED.read_text())["differences"]
    command = shlex.split(diff["reproduce"])
    assert command[:2] == ["compatlab", "gate"]
    assert main([*command[1:], "--format", "json"]) == ExitCode.FAILED
    (again,) = json.loads(capsys.readouterr().out)["differences"]
    assert again == diff


# -- the binary gate's plan and verdicts, without QEMU ----------------------------------


def _fake_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    from compatlab.oracles import qemu
    from compatlab.versions import ALL_VERSIONS

    def binary_for(release: str) -> qemu.QemuBinary:
        v = Version.parse(release)
        machines = tuple(m for m in ALL_VERSIONS if Version.parse("2.4") <= m <= v)
        return qemu.QemuBinary(Path(f"/fake/qemu-{release}"), f"{release}.1", v, machines)

    monkeypatch.setattr(qemu, "binary_for", binary_for)
    monkeypatch.setattr(qemu, "check_alive", lambda binary, machine: None)


def _fake_executor(monkeypatch: pytest.MonkeyPatch, status: Status, seen: list[Task]) -> None:
    """The gate's executor, replaced: it records the tasks and gives each ``status``."""
    import compatlab.gate.binary as binary

    def execute(tasks: list[Task], *, workers: int = 1) -> Iterator[Outcome]:
        for task in tasks:
            seen.append(task)
            failure = None
            if status is Status.FAIL:
                failure = Failure(
                    "binaries-agree", task.versions, None, "config byte 0x10: 00 vs 01",
                    offset=16, config=(f"{task.device},id=dev0",), driver=task.device,
                    machine="2.4",
                )  # fmt: skip
            note = "QemuError: lost its monitor" if status is Status.ERROR else None
            yield Outcome(task, status, 3, 0.1, failure=failure, note=note)

    monkeypatch.setattr(binary, "execute", execute)


GATE_ARGS = ["gate", "--baseline-binary", "7.2", "--candidate-binary", "10.0",
             "--machines", "2.4..5.0", "--drivers", "e1000,nvme", "--examples", "3",
             "--seed", "9", "--format", "json"]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "code", "verdict"),
    [(Status.PASS, ExitCode.OK, "pass"), (Status.FAIL, ExitCode.FAILED, "fail"),
     (Status.ERROR, ExitCode.INTERNAL_ERROR, "error"),
     (Status.SKIP, ExitCode.INTERNAL_ERROR, "error")],
)  # fmt: skip
def test_the_binary_gate_verdict_follows_its_tasks(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    status: Status,
    code: ExitCode,
    verdict: str,
) -> None:
    """A type without evidence (an oracle error, or no binary to run) makes the gate
    say ``error`` and exit 3: never a pass."""
    _fake_binaries(monkeypatch)
    seen: list[Task] = []
    _fake_executor(monkeypatch, status, seen)
    assert main(GATE_ARGS) == code
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == verdict
    assert [t.device for t in seen] == ["e1000", "nvme"]
    assert out["machines"] == ["2.4", "2.5", "2.6", "2.7", "2.8", "2.9", "2.10", "2.11",
                               "2.12", "3.0", "3.1", "4.0", "4.1", "4.2", "5.0"]  # fmt: skip
    assert out["examples"] == 6
    assert len(out["differences"]) == (2 if status is Status.FAIL else 0)
    assert len(out["errors"]) == (2 if verdict == "error" else 0)


def test_a_binary_gate_reproduce_command_plans_exactly_its_task(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_binaries(monkeypatch)
    seen: list[Task] = []
    _fake_executor(monkeypatch, Status.FAIL, seen)
    main(GATE_ARGS)
    first, second = seen
    assert first.context.budget == 3 and first.context.oracles is not None
    diffs = json.loads(capsys.readouterr().out)["differences"]
    assert [d["reproduce"] for d in diffs] == [reproduce_command(t) for t in seen]
    seen.clear()
    main(shlex.split(reproduce_command(second))[1:])
    assert seen == [second]


def test_the_binary_gate_refuses_the_candidate_gates_options(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_binaries(monkeypatch)
    for extra in (["--profile", "ci"], ["--baseline", "5.0"], ["--invariant", "upgrade-round-trip"],
                  ["--examples", "-1"], ["--drivers", "nosuch"], ["--machines", "9.0..9.1"]):  # fmt: skip
        assert main([*GATE_ARGS[:5], *extra]) == ExitCode.USAGE_ERROR, extra
        assert capsys.readouterr().err.count("\n") == 1, extra


#: The candidate's mode, exit code, and what the gate must say.
UNKNOWN_RELEASE = [
    ("ok", ExitCode.OK, r"gate: PASS"),
    (
        "refuse-devices",
        ExitCode.FAILED,
        r"FAIL e1000 on pc-i440fx-7\.\d: only the candidate refuses",
    ),
]


@pytest.mark.parametrize(
    ("mode", "code", "says"), UNKNOWN_RELEASE, ids=[m for m, _, _ in UNKNOWN_RELEASE]
)
def test_the_binary_gate_takes_paths_and_a_release_the_catalogue_does_not_know(
    tmp_path: Path, mode: str, code: int, says: str
) -> None:
    """Binaries named by path, not found by discovery; the candidate is QEMU 12.0,
    which the catalogue has never seen: configs come from what the baseline takes,
    and a candidate that refuses them fails the gate."""
    import os
    import re
    import subprocess
    import sys

    from compatlab.versions import ALL_VERSIONS
    from tests.fake_qemu import fake, survivors

    assert Version(12, 0) not in ALL_VERSIONS
    base, cand = fake(tmp_path, "7.2", "ok"), fake(tmp_path, "12.0", mode)
    args = ["gate", "--baseline-binary", str(base), "--candidate-binary", str(cand),
            "--drivers", "e1000", "--examples", "1", "--record", str(tmp_path / "v.json")]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "COMPATLAB_QEMU"}
    run = subprocess.run(
        [sys.executable, "-m", "compatlab", *args],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == code, out
    assert re.search(says, out), out
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["baseline"] == "7.2.99" and verdict["candidate"] == "12.0.99"
    assert verdict["machines"] == ["7.0", "7.1", "7.2"]
    for diff in verdict["differences"]:
        # The reproduce command names the binaries as given: paths discovery does not know.
        assert f"--candidate-binary {cand}" in diff["reproduce"]
    assert survivors(tmp_path) == []


def test_the_binary_gate_refuses_a_downgrade(tmp_path: Path) -> None:
    from tests.fake_qemu import fake

    args = ["gate", "--baseline-binary", str(fake(tmp_path, "7.2", "ok")),
            "--candidate-binary", str(fake(tmp_path, "7.1", "ok"))]  # fmt: skip
    assert main(args) == ExitCode.USAGE_ERROR


def test_a_binary_path_that_is_not_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["gate", "--baseline-binary", str(tmp_path / "nothing"), "--candidate-binary", "10.0"]
    assert main(args) == ExitCode.USAGE_ERROR
    assert "not an executable file" in capsys.readouterr().err
