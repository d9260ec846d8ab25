"""compatlab report: a run with seeded failures in every format, history, the CLI."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from compatlab.cli.main import main
from compatlab.config import Config, parse_device_string
from compatlab.invariants.registry import Failure
from compatlab.realize import realize
from compatlab.report import classify, write_history, write_report
from compatlab.report.history import Key
from compatlab.report.registers import field_name
from compatlab.results import ResultRecord, append, write_meta
from compatlab.versions import Version

NVME = ("nvme,id=dev0,addr=04.0,serial=deadbeef", "usb-ehci,id=dev1,addr=08.0")
# The failing device's bytes, as a check puts them in its failure (the report walks
# their capability list; it realizes nothing itself).
NVME_SPACE = realize(Config((parse_device_string(NVME[0]),)), Version(10, 0)).devices[0].space
# A failure in the header (subsystem ID) and one in nvme's PCI Express capability.
HEADER_FAILURE = Failure(
    "upgrade-round-trip",
    ("3.1", "10.0"),
    "nic0",
    "3.1 hints loaded on 10.0: config differs at 0x2e",
    offset=0x2E,
    expected="1100",
    actual="0100",
    config=("e1000,id=nic0",),
    driver="e1000",
)
CAP_FAILURE = Failure(
    "upgrade-chain",
    ("4.0", "9.0", "10.0"),
    "dev0",
    "4.0 → 9.0 → 10.0: wmask differs at 0x88",
    offset=0x88,
    expected="00",
    actual="0f",
    config=NVME,
    driver="nvme",
    space=NVME_SPACE.config.hex(),
)


def _record(
    run_id: str,
    invariant: str,
    versions: str,
    status: str,
    *,
    failure: Failure | None = None,
    device: str = "*",
    note: str | None = None,
) -> ResultRecord:
    parts = versions.split("..")
    return ResultRecord(
        run_id=run_id,
        invariant=invariant,
        device=device,
        versions=versions,
        version_from=parts[0],
        version_to=parts[-1],
        status=status,
        examples=10,
        failures=int(status == "fail"),
        seconds=0.5,
        seed=7,
        profile="dev",
        failure=json.dumps(failure.to_json()) if failure else None,
        reproduce=(
            f"compatlab check --invariant {invariant} --versions {versions.replace('..', ',')} "
            "--seed 7 --profile gate"
            if status in ("fail", "known")
            else None
        ),
        note=note,
    )


def _write_run(root: Path, run_id: str, records: list[ResultRecord], seconds: float = 2.0) -> Path:
    run = root / run_id
    run.mkdir(parents=True)
    for r in records:
        append(run / "records-1.jsonl", r)
    write_meta(
        run,
        {
            "run_id": run_id,
            "profile": "dev",
            "seed": 7,
            "versions": ["3.1", "4.0", "9.0", "10.0"],
            "invariants": sorted({r.invariant for r in records}),
            "devices": ["*"],
            "workers": 1,
            "seconds": seconds,
            "runs_planned": len(records),
            "runs_done": len(records),
            "examples": sum(r.examples for r in records),
        },
    )
    return run


def _seeded(root: Path) -> tuple[Path, int, int]:
    rid = "20260101T000000Z-00000007"
    records = [
        _record(rid, inv, vs, "pass")
        for inv in ("upgrade-round-trip", "upgrade-chain", "config-space-well-formed")
        for vs in ("3.1..4.0", "4.0..9.0", "9.0..10.0")
    ]
    records += [
        _record(rid, "upgrade-round-trip", "3.1..10.0", "fail", failure=HEADER_FAILURE),
        _record(rid, "upgrade-chain", "4.0..9.0..10.0", "fail", failure=CAP_FAILURE),
        _record(rid, "upgrade-chain", "3.1..9.0..10.0", "fail", failure=CAP_FAILURE),
        _record(
            rid,
            "upgrade-round-trip",
            "9.0..10.0",
            "known",
            device="nvme",
            failure=CAP_FAILURE,
            note="QEMU 9.1 made nvme's DEVCTL writable",
        ),
    ]
    return _write_run(root, rid, records), len(records), 3


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, int, int]:
    run, n, failed = _seeded(tmp_path)
    write_report(run)
    return run, n, failed


def test_html_shows_every_failure(seeded: tuple[Path, int, int]) -> None:
    run, _, _ = seeded
    page = (run / "report.html").read_text()
    assert HEADER_FAILURE.detail in page
    assert "wmask differs at 0x88" in page
    assert "subsystem_id (byte 0)" in page  # the header field of 0x2e
    assert "PCI Express capability at 0x80 + 0x08" in page
    assert "compatlab check --invariant upgrade-chain --versions 4.0,9.0,10.0" in page
    assert "-device nvme,id=dev0,addr=04.0,serial=deadbeef" in page
    assert "bits 0-3" in page
    assert "2 runs failed this way" in page
    assert "examples/s" in page
    # self-contained: no scripts, stylesheets or images fetched from anywhere
    for fetch in ("<script", "<link", "src=", "http://", "https://", "@import"):
        assert fetch not in page


def test_summary_counts(seeded: tuple[Path, int, int]) -> None:
    run, n, failed = seeded
    text = (run / "summary.md").read_text()
    assert f"{n} runs:" in text
    assert f"**{failed} failed**" in text
    assert "1 known" in text
    assert "**2 distinct failures**" in text
    assert "`upgrade-chain` 4.0..9.0..10.0 ×2" in text
    assert len(text) < 4000


def test_junit_has_one_testcase_per_record(seeded: tuple[Path, int, int]) -> None:
    run, n, failed = seeded
    root = ET.parse(run / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == n == int(root.get("tests", "0"))
    assert len(root.findall(".//failure")) == failed == int(root.get("failures", "0"))
    skipped = root.findall(".//skipped")
    assert len(skipped) == 1 and "DEVCTL" in skipped[0].get("message", "")
    failure = root.find(".//testcase[@name='3.1..10.0']/failure")
    assert failure is not None and "reproduce: compatlab check" in (failure.text or "")


def test_junit_is_read_by_a_junit_parser(seeded: tuple[Path, int, int]) -> None:
    # junitparser reads JUnit XML as CI systems (Jenkins, GitLab) do.
    from junitparser import Failure as JFailure
    from junitparser import JUnitXml, Skipped

    run, n, failed = seeded
    xml = JUnitXml.fromfile(str(run / "junit.xml"))
    cases = [case for suite in xml for case in suite]
    assert len(cases) == n
    results = [type(r) for case in cases for r in case.result]
    assert results.count(JFailure) == failed
    assert results.count(Skipped) == 1
    assert all(case.classname and case.name for case in cases)


def test_csv_and_parquet(seeded: tuple[Path, int, int]) -> None:
    import pandas as pd

    run, n, _ = seeded
    with (run / "results.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == n
    assert len(pd.read_parquet(run / "results.parquet")) == n


def test_report_merges_a_run_without_parquet_or_meta(tmp_path: Path) -> None:
    run = tmp_path / "killed"
    run.mkdir()
    append(run / "records-9.jsonl", _record("killed", "upgrade-chain", "3.1..4.0", "pass"))
    write_report(run)
    assert "1 runs: 1 passed" in (run / "summary.md").read_text()


@pytest.mark.parametrize(
    ("offset", "name"),
    [
        (0x00, "vendor_id (byte 0)"),
        (0x10, "bar0 (byte 0)"),
        (0x3D, "interrupt_pin"),
        (0x38, "reserved (header)"),
        (0x88, "capability area"),
        (0x100, "extended configuration space"),
    ],
    ids=["vendor", "bar0", "pin", "reserved", "capability", "extended"],
)
def test_field_names(offset: int, name: str) -> None:
    assert field_name(offset) == name


def test_field_names_walk_the_capability_list_of_the_bytes_given() -> None:
    """The capability holding a byte comes from the config space the caller passes."""
    space = NVME_SPACE
    name = "capability area: PCI Express capability at 0x80 + 0x08"
    assert field_name(0x88, space) == name
    assert field_name(0x88, space.config) == name
    assert field_name(0x2E, space) == "subsystem_id (byte 0)"
    assert field_name(0x88, bytes(256)) == "capability area"  # no capability list


def _key(inv: str, versions: str = "3.1..4.0") -> Key:
    return (inv, versions, "*")


def test_history_of_two_runs(tmp_path: Path) -> None:
    old, new = "20260101T000000Z-1", "20260102T000000Z-2"
    f = HEADER_FAILURE
    _write_run(
        tmp_path,
        old,
        [
            _record(old, "a-new", "3.1..4.0", "pass"),
            _record(old, "b-fixed", "3.1..4.0", "fail", failure=f),
            _record(old, "c-flaky", "3.1..4.0", "pass"),
            _record(old, "d-still", "3.1..4.0", "fail", failure=f),
        ],
        seconds=2.0,
    )
    _write_run(
        tmp_path,
        new,
        [
            _record(new, "a-new", "3.1..4.0", "fail", failure=f),
            _record(new, "b-fixed", "3.1..4.0", "pass"),
            _record(new, "c-flaky", "3.1..4.0", "fail", failure=f),
            _record(new, "c-flaky", "3.1..4.0", "pass"),
            _record(new, "d-still", "3.1..4.0", "fail", failure=f),
        ],
        seconds=1.0,
    )
    html_path, md_path = write_history(tmp_path)
    md = md_path.read_text()
    assert "2 runs · 1 new, 1 fixed, 1 flaky, 1 still failing" in md
    for section, inv in (("new", "a-new"), ("fixed", "b-fixed"), ("flaky", "c-flaky")):
        assert f"**{section}** (1)\n- `{inv} 3.1..4.0`" in md
    page = html_path.read_text()
    assert "<svg" in page and "<polyline" in page and "<script" not in page
    assert "20 examples/s" in page and "50 examples/s" in page  # 40/2.0 → 50/1.0


def test_come_and_go_is_flaky() -> None:
    k = _key("x")
    assert classify([{k: "fail"}, {k: "ok"}, {k: "fail"}])["flaky"] == [k]
    assert classify([{k: "ok"}, {k: "ok"}, {k: "fail"}])["new"] == [k]
    assert classify([{k: "fail"}, {}, {k: "ok"}])["fixed"] == [k]
    assert not any(classify([{k: "ok"}, {k: "ok"}]).values())


def test_cli_report_writes_into_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, _, _ = _seeded(tmp_path)
    assert main(["report", str(run)]) == 0
    assert (run / "report.html").exists() and (run / "junit.xml").exists()
    assert main(["report", "--history", str(tmp_path), "--out", str(tmp_path / "h")]) == 0
    assert (tmp_path / "h" / "history.html").exists()
    capsys.readouterr()


def test_a_torn_or_damaged_line_loses_that_line_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "killed"
    run.mkdir()
    records = run / "records-9.jsonl"
    good = _record("killed", "upgrade-chain", "3.1..4.0", "pass")
    append(records, good)
    with records.open("ab") as fh:
        fh.write(b"\xff\xfe not text\n")  # line 2
        fh.write(b'{"run_id": "killed", "status": 5}\n')  # line 3: not a record
    append(records, _record("killed", "upgrade-chain", "4.0..9.0", "fail", failure=CAP_FAILURE))
    with records.open("a") as fh:
        fh.write('{"run_id": "killed", "inv')  # line 5: the writer died mid-line
    assert main(["report", str(run)]) == 0
    err = capsys.readouterr().err
    for line in (2, 3, 5):
        assert f"{records}:{line}: not a whole record" in err
    assert err.count("not a whole record") == 3
    text = (run / "summary.md").read_text()
    assert "2 runs: 1 passed, **1 failed**" in text
    assert text.startswith("### compatlab: INCOMPLETE run (no readable meta.json")


def test_an_interrupted_run_never_says_all_invariants_hold(tmp_path: Path) -> None:
    rid = "20260101T000000Z-00000007"
    run = _write_run(tmp_path, rid, [_record(rid, "upgrade-chain", "3.1..4.0", "pass")])
    meta = json.loads((run / "meta.json").read_text())
    meta.update(interrupted=True, complete=False, signal="SIGTERM", runs_planned=72)
    write_meta(run, meta)
    write_report(run)
    headline = (run / "summary.md").read_text().splitlines()[0]
    assert headline == (
        "### compatlab: INCOMPLETE run (interrupted by SIGTERM: 1 of 72 runs done); "
        "no invariant failed in the runs done"
    )
    page = (run / "report.html").read_text()
    assert "interrupted by SIGTERM: 1 of 72 runs done" in page
    assert "all invariants hold" not in page


def test_report_finds_the_newest_run_also_when_it_was_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _seeded(tmp_path)  # 20260101T…, finished
    killed = tmp_path / "20260102T000000Z-00000007"
    killed.mkdir()
    append(killed / "records-4.jsonl", _record(killed.name, "upgrade-chain", "3.1..4.0", "pass"))
    monkeypatch.setenv("COMPATLAB_RUNS_DIR", str(tmp_path))
    assert main(["report"]) == 0
    assert str(killed / "summary.md") in capsys.readouterr().out
    assert "INCOMPLETE" in (killed / "summary.md").read_text()


def test_unreadable_metadata_is_a_warning_and_the_records_still_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, n, _ = _seeded(tmp_path)
    (run / "meta.json").write_text('{"run_id": ')
    (run / "results.parquet").unlink(missing_ok=True)
    assert main(["report", str(run)]) == 0
    assert "meta.json: not valid JSON" in capsys.readouterr().err
    assert f"{n} runs:" in (run / "summary.md").read_text()
