"""Killed and interrupted runs: ``compatlab check -n 2`` stopped by SIGTERM, SIGINT
(to the controller, or to its whole process group as Ctrl-C does) or SIGKILL
leaves no worker behind, no record written after its controller is gone, every
record line whole, a ``meta.json`` that says what finished (unless SIGKILL left no
time to write one), and a run folder ``compatlab report`` reads and calls
incomplete.

Processes are found through ``/proc`` (Linux only, as the workers' death signal).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from compatlab.cli import main
from compatlab.results import ResultRecord

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

ROOT = Path(__file__).resolve().parent.parent
#: Small but not instant: 72 runs, tens of seconds with two workers.
CHECK = ["check", "--profile", "dev", "--versions", "5.2,7.2,9.0,10.0", "--seed", "3",
         "--no-replay", "--no-report"]  # fmt: skip
#: Bounds, far above what is measured (tens of ms for the workers, a second or two
#: for the controller, which builds its table and writes meta.json first).
FIRST_RECORD_S = 120.0
WORKERS_GONE_S = 5.0
CONTROLLER_GONE_S = 30.0


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None when there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == pid:
                found.add(int(entry.name))
    return found


def _running(pids: set[int]) -> set[int]:
    """The processes of ``pids`` that still run (a zombie has ended)."""
    return {p for p in pids if (s := _stat(p)) is not None and s[0] != "Z"}


def _until(what: str, done: Callable[[], bool], seconds: float) -> float:
    """Poll ``done`` until it holds; how long that took."""
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"{what} not within {seconds}s")
        time.sleep(0.01)
    return time.monotonic() - start


def _sizes(run_dir: Path) -> dict[str, int]:
    return {f.name: f.stat().st_size for f in run_dir.glob("records-*.jsonl")}


def _lines(run_dir: Path) -> list[ResultRecord]:
    """Every record line of the run, each of which must be whole."""
    records = []
    for f in sorted(run_dir.glob("records-*.jsonl")):
        text = f.read_text(encoding="utf-8")
        assert text.endswith("\n"), f"{f.name}: a torn last line"
        records += [ResultRecord.from_json(json.loads(line)) for line in text.splitlines()]
    return records


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``compatlab check`` in a session of its own; whatever of it is left at the
    end is killed (by process group: only what this test started)."""
    started: list[subprocess.Popen[str]] = []

    def run(*extra: str) -> subprocess.Popen[str]:
        places = ["--out", str(tmp_path / "runs"), "--failures-dir", str(tmp_path / "failures")]
        proc = subprocess.Popen(
            [sys.executable, "-m", "compatlab", *CHECK, *extra, *places],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append(proc)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def _first_record(proc: subprocess.Popen[str], runs: Path) -> Path:
    """The run folder, once a worker has written a whole record line into it."""

    def written() -> bool:
        assert proc.poll() is None, proc.communicate()
        return any(f.read_text().count("\n") for f in runs.glob("*/records-*.jsonl"))

    _until("a first record", written, FIRST_RECORD_S)
    (run_dir,) = runs.iterdir()
    return run_dir


STOPS = {
    "SIGTERM": (signal.SIGTERM, False),
    "SIGINT": (signal.SIGINT, False),
    "ctrl-c-to-the-group": (signal.SIGINT, True),
    "SIGKILL": (signal.SIGKILL, False),
}


@pytest.mark.parametrize(("signum", "group"), STOPS.values(), ids=STOPS.keys())
def test_workers_die_with_their_controller(
    signum: int,
    group: bool,
    start: Callable[..., subprocess.Popen[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proc = start("-n", "2")
    run_dir = _first_record(proc, tmp_path / "runs")
    children = _children(proc.pid)  # the workers, and multiprocessing's resource tracker
    workers = {p for p in children if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()}
    assert len(workers) == 2
    writers = {int(f.stem.removeprefix("records-")) for f in run_dir.glob("records-*.jsonl")}
    assert writers and writers <= workers  # the records are the workers' own

    sent = time.monotonic()
    if group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    workers_gone = _until("workers gone", lambda: not _running(workers), WORKERS_GONE_S)
    proc.wait(timeout=CONTROLLER_GONE_S)
    controller_gone = time.monotonic() - sent
    at_exit = _sizes(run_dir)
    _until("no process left", lambda: not _running(children), WORKERS_GONE_S)
    all_gone = time.monotonic() - sent
    out, err = proc.communicate()
    with capsys.disabled():
        print(
            f"\n{signal.Signals(signum).name}{' (group)' if group else ''}: workers gone "
            f"{workers_gone:.2f}s, controller {controller_gone:.2f}s, every process "
            f"{all_gone:.2f}s after the signal; {len(_running(children))} processes left, "
            f"exit {proc.returncode}"
        )
    assert _sizes(run_dir) == at_exit  # nothing was written after the controller went
    records = _lines(run_dir)
    planned = int(re.search(r"check: (\d+) runs", err).group(1))  # type: ignore[union-attr]
    assert 0 < len(records) < planned

    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        assert not (run_dir / "meta.json").exists()
    else:
        assert proc.returncode == 128 + signum, err
        meta = json.loads((run_dir / "meta.json").read_text())
        assert meta["interrupted"] is True and meta["complete"] is False
        assert meta["signal"] == signal.Signals(signum).name
        table = pd.read_parquet(run_dir / "results.parquet")
        assert meta["runs_done"] == len(records) == len(table)
        assert meta["runs_planned"] == planned
        assert meta["examples"] == sum(r.examples for r in records)
        assert f"interrupted by {meta['signal']}: {len(records)} of {planned} runs" in err
        assert "INCOMPLETE" in out

    assert main(["report", str(run_dir)]) == 0
    report_err = capsys.readouterr().err
    assert "incomplete run" in report_err
    headline = (run_dir / "summary.md").read_text().splitlines()[0]
    assert "INCOMPLETE" in headline and "all invariants hold" not in headline
    if signum == signal.SIGKILL:
        assert "no readable meta.json" in headline
    assert f"{len(records)} runs" in (run_dir / "summary.md").read_text()


def test_a_run_in_one_process_is_interrupted_the_same_way(
    start: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    proc = start("-n", "1")
    run_dir = _first_record(proc, tmp_path / "runs")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=CONTROLLER_GONE_S)
    assert proc.returncode == 128 + signal.SIGTERM, err
    records = _lines(run_dir)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["interrupted"] is True and meta["signal"] == "SIGTERM"
    assert meta["runs_done"] == len(records) < meta["runs_planned"]


def test_a_worker_without_a_death_signal_watches_its_parent(tmp_path: Path) -> None:
    """Where Linux's death signal is not there, a thread ends an orphaned worker."""
    script = (
        "import os, sys, time\n"
        "from compatlab.engine.execute import watch_parent\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    watch_parent(os.getppid(), interval=0.02)\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "print(child, flush=True)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    orphan = int(proc.stdout)
    try:
        _until("the orphan gone", lambda: not _running({orphan}), WORKERS_GONE_S)
    finally:
        if _running({orphan}):
            os.kill(orphan, signal.SIGKILL)


def test_a_second_signal_ends_the_process_at_once() -> None:
    """The first SIGTERM stops the run (raised while armed, remembered after); the
    next ends the process as SIGTERM does by default; an ignored SIGINT stays ignored."""
    script = (
        "import os, signal, time\n"
        "from compatlab.engine.session import Interrupted, _StopOnSignals\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "stop = _StopOnSignals()\n"
        "with stop:\n"
        "    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(30)\n"
        "    except Interrupted as exc:\n"
        "        print('stopped by', exc.signum, 'remembered', stop.received, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(30)\n"
        "    print('survived', flush=True)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout == f"stopped by {signal.SIGTERM} remembered {signal.SIGTERM}\n"
    assert proc.returncode == -signal.SIGTERM, proc.stderr
