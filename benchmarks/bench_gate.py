"""Time the candidate gate on every seeded compat bug: first verdict and full report.

    python benchmarks/bench_gate.py [--profile ci] [-n 2] [--only NAME]... [--repo DIR]
                                    [--timeout S] [--json FILE]

Each seeded file in ``corpora/candidates/seeded/`` is gated three ways through the
command line, as a release pipeline runs it (``compatlab gate --candidate FILE
--profile P -n N``):

- ``full``: to completion, the whole report;
- ``fail-fast``: with ``--fail-fast``;
- ``passing``: the same gate on the same catalogue with nothing changed (a
  candidate of the same version and base that changes nothing, on the device
  types the seeded file touches, from the same baselines): the same tasks, each
  searching its whole budget; what a correct release costs.

Each correct candidate in ``corpora/candidates/good/`` is gated once, to its
passing verdict (``--skip good`` leaves them out).

For each it reports the wall time of the whole command and of the first verdict:
the moment the command says ``gate: FAIL (`` on stderr (a checkout that says
nothing before the end gives its end). Ratios stand beside the absolute figures:
the first verdict against a bare ``python -c pass`` start (how many interpreter
starts the wait is worth), and the totals against the passing gate on the same
catalogue (what finding a failure costs beyond proving a pass). The verdict
record (``--record``) gives runs, failing runs and counterexamples shrunk.

``--repo DIR`` measures another checkout (a worktree of an older commit, say) with
its own seeded files, for before/after figures; ``--timeout`` caps each command
(a capped figure is shown as ``>S``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

FIRST_VERDICT = "gate: FAIL ("


@dataclass
class Timing:
    """One gate command: wall seconds to its first verdict and to its end."""

    first: float | None
    total: float
    capped: bool
    exit_code: int | None
    #: From the verdict record: runs, failing runs and counterexamples shrunk
    #: (None where the checkout does not record it).
    runs: int | None = None
    failing_runs: int | None = None
    shrinks: int | None = None


def bare_start(repeat: int = 5) -> float:
    """Median wall time of ``python -c pass``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_gate(repo: Path, args: list[str], timeout: float) -> Timing:
    """Run ``compatlab gate ARGS`` in ``repo``; note when stderr first says FAIL."""
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "verdict.json"
        env = {**os.environ, "PYTHONPATH": str(repo)}
        command = [sys.executable, "-m", "compatlab", "gate", *args, "--record", str(record)]
        start = time.perf_counter()
        proc = subprocess.Popen(
            command,
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        first: list[float] = []

        def watch_stderr() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                if not first and line.startswith(FIRST_VERDICT):
                    first.append(time.perf_counter() - start)

        def drain_stdout() -> None:
            assert proc.stdout is not None
            for _ in proc.stdout:
                pass

        readers = [threading.Thread(target=f) for f in (watch_stderr, drain_stdout)]
        for reader in readers:
            reader.start()
        capped = False
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            code, capped = None, True
        total = time.perf_counter() - start
        for reader in readers:
            reader.join()
        data = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
        failures = data.get("failures")
        return Timing(
            first[0] if first else None,
            total,
            capped,
            code,
            runs=data.get("runs"),
            failing_runs=len(failures) if isinstance(failures, list) else None,
            shrinks=data.get("shrinks"),
        )


def passing_twin(path: Path, tmp: Path) -> tuple[Path, list[str]]:
    """A candidate of ``path``'s version and base that changes nothing, and the
    options that give it ``path``'s tasks (its touched device types and baselines)."""
    from compatlab.catalogue.candidate import apply_candidate, load_candidate

    cc = apply_candidate(load_candidate(path))
    lines = [f'version = "{cc.version}"', f'base = "{cc.base.versions[-1]}"']
    twin = tmp / f"{path.stem}-unchanged.toml"
    twin.write_text("\n".join(lines) + "\n", encoding="utf-8")
    drivers = [d for d in cc.touched() if d in cc.base.types]
    return twin, (["--drivers", ",".join(drivers)] if drivers else [])


def _fmt(seconds: float | None, capped: bool = False) -> str:
    if seconds is None:
        return "-"
    return f">{seconds:.0f}" if capped else f"{seconds:.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.1f}×"


def _verdict(timing: Timing) -> str:
    if timing.capped:
        return "timeout"
    code = -1 if timing.exit_code is None else timing.exit_code
    return {0: "PASS", 1: "FAIL"}.get(code, f"exit {code}")


def _count(value: object) -> str:
    return "-" if value is None else str(value)


@dataclass
class Row:
    """The figures of one seeded file."""

    seeded: str
    verdict: str
    first_verdict: float
    first_capped: bool
    full: Timing | None
    fail_fast: Timing
    passing: Timing | None

    @property
    def main(self) -> Timing:
        """The run the verdict is taken from: the full one, if it ran."""
        return self.full or self.fail_fast

    def cells(self, bare: float) -> list[str]:
        base = self.passing.total if self.passing and not self.passing.capped else None
        full = self.full.total if self.full else None
        return [
            self.seeded,
            self.verdict,
            _fmt(self.first_verdict, self.first_capped),
            _ratio(self.first_verdict, bare),
            _fmt(full, bool(self.full and self.full.capped)),
            _ratio(full, base),
            _fmt(self.fail_fast.total, self.fail_fast.capped),
            _ratio(self.fail_fast.total, base),
            _fmt(base),
            _count(self.main.runs),
            _count(self.main.failing_runs),
            _count(self.main.shrinks),
        ]


COLUMNS = [
    "seeded", "verdict", "first verdict s", "(× bare start)", "full s", "(× passing)",
    "fail-fast s", "(× passing)", "passing s", "runs", "failing", "shrunk",
]  # fmt: skip


def measure(path: Path, repo: Path, common: list[str], args: argparse.Namespace) -> Row:
    ff = run_gate(repo, ["--candidate", str(path), *common, "--fail-fast"], args.timeout)
    full = None
    if "full" not in args.skip:
        full = run_gate(repo, ["--candidate", str(path), *common], args.timeout)
    passing = None
    if "passing" not in args.skip:
        with tempfile.TemporaryDirectory() as tmp:
            twin, options = passing_twin(path, Path(tmp))
            passing = run_gate(repo, ["--candidate", str(twin), *common, *options], args.timeout)
    main = full or ff
    return Row(
        seeded=path.stem,
        verdict=_verdict(main),
        first_verdict=main.first if main.first is not None else main.total,
        first_capped=main.first is None and main.capped,
        full=full,
        fail_fast=ff,
        passing=passing,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci")
    parser.add_argument("-n", "--workers", type=int, default=2)
    parser.add_argument("--only", action="append", default=[], help="a seeded file's name")
    parser.add_argument("--repo", type=Path, default=HERE, help="the checkout to measure")
    parser.add_argument("--timeout", type=float, default=900.0, help="cap per command (s)")
    parser.add_argument("--skip", action="append", default=[], choices=["full", "passing", "good"])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    repo = args.repo.resolve()
    seeded = sorted((repo / "corpora" / "candidates" / "seeded").glob("*.toml"))
    if args.only:
        seeded = [p for p in seeded if p.stem in args.only]
    common = ["--profile", args.profile, "-n", str(args.workers)]
    bare = bare_start()
    print(f"repo {repo}; profile {args.profile}; -n {args.workers}; bare start {bare:.3f}s\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("| --- | --- |" + " ---: |" * (len(COLUMNS) - 2))
    rows = []
    for path in seeded:
        row = measure(path, repo, common, args)
        rows.append(row)
        print("| " + " | ".join(row.cells(bare)) + " |", flush=True)
    good = (
        []
        if "good" in args.skip
        else sorted((repo / "corpora" / "candidates" / "good").glob("*.toml"))
    )
    if args.only:
        good = [p for p in good if p.stem in args.only]
    if good:
        print("\n| good | verdict | s | runs |\n| --- | --- | ---: | ---: |")
    passes = {}
    for path in good:
        timing = run_gate(repo, ["--candidate", str(path), *common], args.timeout)
        passes[path.stem] = timing
        print(
            f"| {path.stem} | {_verdict(timing)} | {_fmt(timing.total, timing.capped)} "
            f"| {_count(timing.runs)} |",
            flush=True,
        )
    if args.json:
        data = {
            "repo": str(repo),
            "profile": args.profile,
            "workers": args.workers,
            "bare_start": bare,
            "rows": [asdict(r) for r in rows],
            "good": {name: asdict(t) for name, t in passes.items()},
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
