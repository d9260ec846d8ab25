"""`compatlab check`: the run engine behind the CLI, its results table and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from compatlab.cli import main
from compatlab.engine import run as engine_run
from tests import broken


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


def test_strict_and_the_summary_agree_on_what_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    monkeypatch.setenv("COMPATLAB_FAILURES_DIR", str(tmp_path / "failures"))
    args = ["check", "--profile", "dev", "--versions", "7.2,10.0", "--invariant",
            "upgrade-round-trip", "--device", "nvme", "--seed", "5", "--out", str(tmp_path),
            "--no-report"]  # fmt: skip
    assert main(args) == 0
    assert "FAILED" not in capsys.readouterr().out
    assert main([*args, "--strict"]) == 1
    assert (
        "FAILED (--strict): known finding (1 runs: upgrade-round-trip)" in capsys.readouterr().out
    )


# Each way a resolver can get hint matching wrong, and what hint-matching's failure says.
WRONG_MATCHING = [
    pytest.param(
        broken.resolve_borrows_a_siblings_entry, "otherwise than with no hints", id="borrows"
    ),
    pytest.param(
        broken.resolve_accepts_another_driver, "otherwise than with no hints", id="other-driver"
    ),
    pytest.param(broken.resolve_uses_no_entry, "the device's own entry", id="no-entry-used"),
    pytest.param(broken.resolve_reports_nothing, "not reported as", id="reports-nothing"),
    pytest.param(
        broken.resolve_one_reason_for_all, "not reported as driver-differs", id="one-reason"
    ),
]


def _check_hint_matching(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, Any]:
    monkeypatch.setenv("COMPATLAB_FAILURES_DIR", str(tmp_path / "failures"))
    out = tmp_path / "runs"
    args = ["check", "--profile", "ci", "--versions", "2.4,7.2,10.0", "--invariant",
            "hint-matching", "--seed", "1", "-n", "1", "--out", str(out), "--no-report",
            "--no-replay"]  # fmt: skip
    code = main(args)
    (run_dir,) = out.iterdir()
    return code, pd.read_parquet(run_dir / "results.parquet")


def test_check_hint_matching_passes_on_the_real_resolver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, table = _check_hint_matching(tmp_path, monkeypatch)
    assert code == 0
    assert list(table.status) == ["pass"] * 3  # three pairs
    assert (table.examples > 0).all()


@pytest.mark.parametrize(("resolver", "detail"), WRONG_MATCHING)
def test_check_hint_matching_fails_on_a_wrong_resolver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resolver: Any, detail: str
) -> None:
    """``check --invariant hint-matching`` with the engine's system swapped for one whose
    resolver matches hints wrongly (``-n 1``: the run is in this process) exits 1, and
    the failure it records says what went wrong."""
    system = broken.with_resolver(resolver)
    monkeypatch.setattr(engine_run, "System", lambda: system)
    code, table = _check_hint_matching(tmp_path, monkeypatch)
    assert code == 1
    failed = table[table.status == "fail"]
    assert len(failed) > 0
    details = [json.loads(f)["detail"] for f in failed.failure]
    assert any(detail in d for d in details), details


PINNED = Path(__file__).resolve().parent / "data" / "check-dev-seed1.csv"


@pytest.mark.slow
def test_the_results_table_is_pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``check --profile dev --seed 1`` on four versions gives the recorded table (timings
    aside). Recorded when the run engine replaced the three runners, and compared then
    with the old runner's table on the same selection: every row the same but
    upgrade-chain's middle versions, which are now drawn per pair from the seed.
    Re-recorded, with the same command, when configs got a vCPU count (one more draw
    per config), when hint-matching was registered and when configs began to draw
    every settable property: rows changed only between pass and known (which of a
    run's five examples met a known finding) or in their example counts; nothing
    failed."""
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    monkeypatch.setenv("COMPATLAB_FAILURES_DIR", str(tmp_path / "failures"))
    args = ["check", "--profile", "dev", "--seed", "1", "--versions", "5.2,9.0,9.1,10.0",
            "-n", "2", "--out", str(tmp_path), "--no-report", "--no-replay"]  # fmt: skip
    assert main(args) == 0
    (run_dir,) = (p for p in tmp_path.iterdir() if p.name != "failures")
    table = pd.read_parquet(run_dir / "results.parquet")
    pinned = pd.read_csv(PINNED, dtype={"versions": str})
    order = ["invariant", "versions", "device"]  # workers finish in any order
    got = table[list(pinned.columns)].sort_values(order).reset_index(drop=True)
    want = pinned.sort_values(order).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_the_same_seed_gives_the_same_table_twice_with_two_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers finish in any order; the table (timings aside) is the seed's alone."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPATLAB_FAILURES_DIR", str(tmp_path / "failures"))
    args = ["check", "--profile", "dev", "--seed", "11", "--versions", "7.2,9.0,10.0",
            "--invariant", "upgrade-round-trip", "--invariant", "upgrade-chain",
            "--invariant", "same-version-round-trip", "--device", "e1000", "--device", "nvme",
            "-n", "2", "--no-report", "--no-replay"]  # fmt: skip
    tables = []
    for n in range(2):
        assert main([*args, "--out", str(tmp_path / f"runs{n}")]) == 0
        (run_dir,) = (tmp_path / f"runs{n}").iterdir()
        assert json.loads((run_dir / "meta.json").read_text())["workers"] == 2
        table = pd.read_parquet(run_dir / "results.parquet").drop(columns=["run_id", "seconds"])
        tables.append(table.sort_values(["invariant", "versions", "device"]).reset_index(drop=True))
    assert set(tables[0].status) == {"pass", "known"}  # the nvme finding, in the failure column
    pd.testing.assert_frame_equal(tables[0], tables[1])
