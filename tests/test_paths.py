"""Where compatlab reads its data and writes its state (``compatlab.paths``).

The resolvers are pure given ``environ``; the CLI honours the options and
variables; and (marker ``slow``) a built wheel, installed into a fresh virtual
environment, runs ``compatlab check`` and ``compatlab report`` from an empty
folder with the data it carries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from compatlab import paths
from compatlab.cli import main

ROOT = Path(__file__).resolve().parent.parent

# QEMU 9.1 made nvme's error-reporting enables writable: a failure across 7.2 -> 10.0
# that the built-in findings explain (exit 0) and that fails without them (exit 1).
NVME_CHECK = (
    "check", "--profile", "dev", "--versions", "7.2,10.0", "--invariant", "upgrade-round-trip",
    "--device", "nvme", "--seed", "5", "--no-report",
)  # fmt: skip


@pytest.mark.parametrize(
    ("resolve", "variable", "default"),
    [
        (paths.runs_dir, "COMPATLAB_RUNS_DIR", Path("reports/runs")),
        (paths.failures_dir, "COMPATLAB_FAILURES_DIR", Path("corpora/failures")),
        (paths.corpora_dir, "COMPATLAB_CORPORA", paths.builtin_corpora()),
    ],
    ids=["runs", "failures", "corpora"],
)
def test_option_beats_variable_beats_default(
    resolve: Callable[..., Path], variable: str, default: Path
) -> None:
    assert resolve(environ={}) == default
    assert resolve(environ={variable: ""}) == default  # an empty variable is unset
    assert resolve(environ={variable: "/from/env"}) == Path("/from/env")
    assert resolve("/from/option", environ={variable: "/from/env"}) == Path("/from/option")


def test_a_checkout_reads_the_repositorys_data() -> None:
    assert paths.builtin_corpora() == ROOT / "corpora"
    assert paths.templates_dir() == ROOT / "reports" / "templates"
    assert paths.findings_file(paths.builtin_corpora()).is_file()
    assert paths.captures_dir(Path("x")) == Path("x/qemu")


def test_check_writes_where_the_options_and_variables_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPATLAB_CORPORA", str(tmp_path / "no-data"))  # no findings: it fails
    monkeypatch.setenv("COMPATLAB_RUNS_DIR", str(tmp_path / "runs-env"))
    monkeypatch.delenv("COMPATLAB_FAILURES_DIR", raising=False)
    assert main([*NVME_CHECK, "--failures-dir", "mine"]) == 1
    assert "known findings are not used" in capsys.readouterr().err
    assert list((tmp_path / "mine" / "upgrade-round-trip").glob("*.json"))
    assert len(list((tmp_path / "runs-env").glob("*/results.parquet"))) == 1

    monkeypatch.setenv("COMPATLAB_FAILURES_DIR", "mine")
    assert main([*NVME_CHECK, "--out", "runs-opt"]) == 1
    assert "1 saved failures replayed, 1 still failing" in capsys.readouterr().err
    assert len(list((tmp_path / "runs-opt").glob("*/meta.json"))) == 1
    assert not (tmp_path / "reports").exists() and not (tmp_path / "corpora").exists()

    assert main(["report"]) == 0  # the latest run under $COMPATLAB_RUNS_DIR
    assert str(tmp_path / "runs-env") in capsys.readouterr().out


# -- the installed tool --------------------------------------------------------------


def _run(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COMPATLAB_", "PYTHON", "HYPOTHESIS_", "PYTEST_"))
    }
    return subprocess.run(
        cmd, cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin/`` of a fresh virtual environment holding compatlab's built wheel
    (its dependencies come from this interpreter's site-packages)."""
    work = tmp_path_factory.mktemp("wheel")
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work), str(ROOT)],
        work,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = work.glob("compatlab-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], work)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    done = _run([*pip, "--no-deps", "--no-index", "--ignore-installed", str(wheel)], work)
    assert done.returncode == 0, done.stderr
    return venv / "bin"


@pytest.mark.slow
def test_the_wheel_carries_its_data(installed: Path, tmp_path: Path) -> None:
    probe = _run(
        [
            str(installed / "python"),
            "-c",
            "import json, compatlab, compatlab.paths as p, compatlab.report.templates as t;"
            "print(json.dumps([compatlab.__file__, str(p.builtin_corpora()), str(t.TEMPLATES_DIR)]))",
        ],
        tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    module, corpora, templates = map(Path, json.loads(probe.stdout))
    site = installed.parent / "lib"
    assert site in module.parents  # the wheel's compatlab, not the checkout's
    assert corpora == module.parent / "corpora" and templates.parent.parent == module.parent
    assert (corpora / "findings.toml").is_file() and (templates / "report.html").is_file()
    assert list((corpora / "qemu" / "10.0").glob("*.jsonl"))
    assert list((corpora / "candidates" / "seeded").iterdir())
    assert (corpora / "gate" / "7.2-10.0.json").is_file()
    assert not (corpora / "failures").exists()


@pytest.mark.slow
def test_check_and_report_from_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    compatlab = str(installed / "compatlab")
    check = _run([compatlab, *NVME_CHECK[:-1]], tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr  # explained by a known finding
    assert "known finding" in check.stdout and "warning" not in check.stderr
    (run,) = (tmp_path / "reports" / "runs").iterdir()
    assert {"meta.json", "results.parquet", "report.html", "summary.md"} <= {
        p.name for p in run.iterdir()
    }
    report = _run([compatlab, "report"], tmp_path)
    assert report.returncode == 0, report.stderr
    assert str(Path("reports") / "runs" / run.name / "report.html") in report.stdout

    failing = _run(
        [compatlab, *NVME_CHECK, "--failures-dir", "found"],
        tmp_path,
        COMPATLAB_CORPORA=str(tmp_path / "empty"),
        COMPATLAB_RUNS_DIR="elsewhere",
    )
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert list((tmp_path / "found" / "upgrade-round-trip").glob("*.json"))
    assert list((tmp_path / "elsewhere").glob("*/results.parquet"))
    assert len(list((tmp_path / "reports" / "runs").iterdir())) == 1
