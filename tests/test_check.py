"""The version-matrix runner, results table, failure corpus and `compatlab check`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from compatlab.cli import main
from compatlab.config import Config, parse_device_string
from compatlab.invariants import Case, Failure, get, registered
from compatlab.invariants.runner import (
    Finding,
    Task,
    matrix,
    promote,
    replay_corpus,
    reproduce_command,
    run_task,
)
from compatlab.results import ResultRecord, append, read_records
from compatlab.versions import ALL_VERSIONS, Version

V = Version.parse


def test_the_matrix_covers_every_ordered_pair() -> None:
    # 38 versions: 38 single versions, 38·37/2 = 703 pairs U < V
    assert len(matrix(["same-version-round-trip"], ALL_VERSIONS, [None], 1)) == 38
    assert len(matrix(["upgrade-round-trip"], ALL_VERSIONS, [None], 1)) == 703
    chain = matrix(["upgrade-chain"], ALL_VERSIONS, [None], 1)
    assert len(chain) == 703
    assert all(u <= v <= w for _, (u, v, w), _ in chain)
    per_device = matrix(["upgrade-round-trip"], [V("7.2"), V("10.0")], ["e1000", "nvme"], 1)
    assert [(t[1], t[2]) for t in per_device] == [
        ((V("7.2"), V("10.0")), "e1000"),
        ((V("7.2"), V("10.0")), "nvme"),
    ]


def _task(name: str, versions: tuple[str, ...], device: str | None) -> Task:
    return Task(name, versions, device, 1234, "dev", "test-run")


def test_a_passing_run_records_its_examples() -> None:
    record = run_task(_task("upgrade-round-trip", ("7.2", "10.0"), "e1000"))
    assert record.status == "pass"
    assert record.examples >= 5  # the dev profile's budget
    assert record.failure is None
    assert record.reproduce == reproduce_command(
        "upgrade-round-trip", ("7.2", "10.0"), "e1000", 1234
    )


NVME_FINDING = Finding(("upgrade-round-trip",), "nvme", V("9.1"), "deverr enables became writable")


def test_a_real_compat_bug_fails_and_a_known_one_is_marked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # failures are promoted under ./corpora/failures
    failed = run_task(_task("upgrade-round-trip", ("7.2", "10.0"), "nvme"))
    assert failed.status == "fail"
    failure = Failure.from_json(json.loads(failed.failure or "{}"))
    assert failure.driver == "nvme" and failure.offset == 0x88
    assert failure.config == ("nvme,id=dev0,serial=deadbeef",)  # shrunk to the minimal config
    known = run_task(_task("upgrade-round-trip", ("7.2", "10.0"), "nvme"), [NVME_FINDING])
    assert known.status == "known" and known.note == NVME_FINDING.reason
    assert list((tmp_path / "corpora" / "failures" / "upgrade-round-trip").glob("*.json"))


def test_findings_explain_only_upgrades_across_their_window() -> None:
    def failure(*versions: str, driver: str = "nvme") -> Failure:
        return Failure("upgrade-round-trip", versions, "dev0", "x", driver=driver)

    assert NVME_FINDING.explains(failure("7.2", "10.0"))
    assert not NVME_FINDING.explains(failure("9.1", "10.0"))
    assert not NVME_FINDING.explains(failure("7.2", "10.0", driver="e1000"))
    fixed = Finding(("upgrade-round-trip",), "nvme", V("6.0"), "msix", V("7.2"))
    assert fixed.explains(failure("5.2", "6.1"))
    assert not fixed.explains(failure("5.2", "7.2"))


def test_the_failure_corpus_is_replayed_as_still_failing_or_fixed(tmp_path: Path) -> None:
    inv = get("upgrade-round-trip")
    nvme = Case((V("7.2"), V("10.0")), Config((parse_device_string("nvme,id=d,serial=x"),)))
    e1000 = Case((V("7.2"), V("10.0")), Config((parse_device_string("e1000,id=e"),)))
    stub = Failure(inv.name, ("7.2", "10.0"), "d", "seeded")
    promote(inv.name, nvme, stub, root=tmp_path)
    promote(inv.name, e1000, stub, root=tmp_path)  # this one holds: reported fixed
    entries = {r.path.read_text().count("nvme") > 0: r for r in replay_corpus(tmp_path)}
    assert entries[True].still_failing
    assert not entries[False].still_failing and entries[False].detail == "fixed"
    saved = json.loads(next(tmp_path.glob("*/*.json")).read_text())
    assert set(saved) == {"invariant", "versions", "config", "extra", "failure"}


def test_guest_writes_survive_the_corpus(tmp_path: Path) -> None:
    inv = get("guest-write-equivalence")
    case = Case(
        (V("7.2"), V("10.0")),
        Config((parse_device_string("nvme,id=d,serial=x"),)),
        {"writes": [(0x88, 1, 0x0F)]},
    )
    promote(inv.name, case, Failure(inv.name, ("7.2", "10.0"), "d", "seeded"), root=tmp_path)
    (replay,) = replay_corpus(tmp_path)
    assert replay.still_failing  # the deverr write sticks on 10.0 only


def test_records_of_a_killed_run_are_kept(tmp_path: Path) -> None:
    record = run_task(_task("same-version-round-trip", ("10.0",), None))
    append(tmp_path / "records-1.jsonl", record)
    with (tmp_path / "records-1.jsonl").open("a") as fh:
        fh.write('{"run_id": "torn')  # the process died mid-line
    assert list(read_records(tmp_path)) == [record]
    assert ResultRecord.from_json(record.to_json()) == record


def test_check_cli_writes_the_table_and_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    code = main(
        [
            "check",
            "--profile",
            "dev",
            "--versions",
            "9.0,10.0",
            "--invariant",
            "upgrade-round-trip",
            "--invariant",
            "same-version-round-trip",
            "--device",
            "e1000",
            "--seed",
            "5",
            "--out",
            str(out),
            "--no-replay",
            "-n",
            "2",
        ]
    )
    assert code == 0
    (run_dir,) = out.iterdir()
    table = pd.read_parquet(run_dir / "results.parquet")
    assert len(table) == 3  # one pair and two single versions
    assert set(table.status) == {"pass"}
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["seed"] == 5 and meta["runs_done"] == 3
    # the reports are written at the end of every run
    assert {"report.html", "summary.md", "junit.xml", "results.csv"} <= {
        p.name for p in run_dir.iterdir()
    }
    assert "upgrade-round-trip" in capsys.readouterr().out


def test_check_fails_on_a_real_finding_in_strict_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    args = [
        "check",
        "--profile",
        "dev",
        "--versions",
        "7.2,10.0",
        "--invariant",
        "upgrade-round-trip",
        "--device",
        "nvme",
        "--seed",
        "5",
        "--out",
        str(tmp_path),
        "--no-replay",
    ]
    monkeypatch.setenv("COMPATLAB_FAILURES_DIR", str(tmp_path / "failures"))
    assert main(args) == 0  # explained by corpora/findings.toml
    assert main([*args, "--strict"]) == 1


def test_bad_check_arguments_exit_2() -> None:
    assert main(["check", "--invariant", "upgrade-round-trp", "--versions", "9.0,10.0"]) == 2
    assert main(["check", "--profile", "nightlyy"]) == 2
    assert main(["check", "--device", "e1001"]) == 2


def test_every_design_invariant_is_registered() -> None:
    # DESIGN.md §3's core set, and the machine-type view the release gate needs.
    assert set(registered()) == {
        "machine-type-upgrade",
        "config-overrides-hints",
        "no-hint-means-default",
        "absent-device-hints-ignored",
        "same-version-round-trip",
        "upgrade-round-trip",
        "upgrade-chain",
        "hints-codec-round-trip",
        "config-space-well-formed",
        "migration-load-accepts",
        "explicit-default-is-neutral",
        "per-device-independence",
        "guest-write-equivalence",
        "model-matches-qemu",
    }
