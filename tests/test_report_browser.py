"""report.html as a person sees it: headless Chromium renders it, takes a
screenshot, and logs no errors (marked ``browser``; Debian's chromium)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from compatlab.invariants.registry import Failure
from compatlab.report import write_report
from compatlab.results import ResultRecord, append, merge, write_meta

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("COMPATLAB_REQUIRE_BROWSER") == "1":
            pytest.fail("headless Chromium is mandatory here but not installed")
        pytest.skip("needs Debian's chromium package for headless rendering")
    return path


def _seeded_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    failure = Failure(
        "upgrade-round-trip",
        ("2.4", "10.0"),
        "net0",
        "2.4 hints loaded on 10.0: config differs at 0x02",
        offset=0x02,
        expected="00",
        actual="41",
        config=("virtio-net-pci,id=net0",),
        driver="virtio-net-pci",
    )
    for versions, status in ((("2.4", "10.0"), "fail"), (("7.2", "10.0"), "pass")):
        append(
            run_dir / "records-1.jsonl",
            ResultRecord(
                run_id="seeded",
                invariant="upgrade-round-trip",
                device="*",
                versions="..".join(versions),
                version_from=versions[0],
                version_to=versions[1],
                status=status,
                examples=12,
                failures=int(status == "fail"),
                seconds=0.1,
                seed=1,
                profile="ci",
                failure=json.dumps(failure.to_json()) if status == "fail" else None,
                reproduce="compatlab check --invariant upgrade-round-trip --versions 2.4,10.0 --seed 1",
            ),
        )
    merge(run_dir)
    write_meta(
        run_dir,
        {
            "run_id": "seeded",
            "profile": "ci",
            "seed": 1,
            "versions": ["2.4", "7.2", "10.0"],
            "invariants": ["upgrade-round-trip"],
            "devices": ["*"],
            "workers": 1,
            "seconds": 0.2,
            "runs_planned": 2,
            "runs_done": 2,
            "examples": 24,
            "corpus_replayed": 0,
            "corpus_still_failing": [],
        },
    )
    write_report(run_dir)
    return run_dir / "report.html"


def test_report_renders_with_heatmap_and_failure_details(tmp_path: Path) -> None:
    chromium = _chromium()
    page = _seeded_run(tmp_path)
    profile = tempfile.mkdtemp(prefix="compatlab-chromium-")
    shot = tmp_path / "report.png"
    common = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert 'class="heat' in html and 'class="map' in html  # the heatmap grid rendered
    assert "config differs at 0x02" in html and "device_id" in html  # register-level diff
    assert "--versions 2.4,10.0" in html  # the reproduce command
    console_errors = [
        ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln and "ERROR" in ln.upper()
    ]
    assert console_errors == []
    subprocess.run(
        [*common, "--window-size=1280,1600", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1280, 1600)
    assert len(png) > 20_000  # a rendered page, not a blank one
