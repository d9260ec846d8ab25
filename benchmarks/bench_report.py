"""Time ``compatlab report`` on a synthetic run of N result rows (default 1,000,000).

    python benchmarks/bench_report.py [N] [--failures FRACTION] [--keep DIR]

Rows cycle through every invariant, version pair and device of the catalogue;
a fraction of them (default 0.1%) fail with a capability-area counterexample and
another 0.5% are known findings. Prints the time per report file.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from compatlab.invariants import registered
from compatlab.report import Report, load_run
from compatlab.report.writers import _WRITERS
from compatlab.results import ResultRecord, write_meta
from compatlab.versions import ALL_VERSIONS

DEVICES = ("*", "e1000", "nvme", "virtio-net-pci", "virtio-blk-pci", "ich9-ahci")


def synthetic_table(n: int, fail_fraction: float, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    versions = [str(v) for v in ALL_VERSIONS]
    pairs = [(a, b) for i, a in enumerate(versions) for b in versions[i:]]
    combos = list(
        itertools.islice(itertools.cycle(itertools.product(registered(), pairs, DEVICES)), n)
    )
    inv = [c[0] for c in combos]
    vf = [c[1][0] for c in combos]
    vt = [c[1][1] for c in combos]
    dev = [c[2] for c in combos]
    roll = rng.random(n)
    status = np.where(
        roll < fail_fraction, "fail", np.where(roll < fail_fraction + 0.005, "known", "pass")
    )
    failure = [None] * n
    reproduce: list[str | None] = [None] * n
    for i in np.flatnonzero(status != "pass"):
        offset = int(0x80 + rng.integers(0, 16)) if rng.random() < 0.5 else int(rng.integers(0, 64))
        failure[i] = json.dumps(
            {
                "invariant": inv[i],
                "versions": [vf[i], vt[i]],
                "device": "dev0",
                "driver": "nvme",
                "detail": f"{vf[i]} hints loaded on {vt[i]}: config differs at {offset:#x}",
                "offset": offset,
                "expected": "00",
                "actual": f"{rng.integers(1, 256):02x}",
                "config": ["nvme,id=dev0,serial=deadbeef"],
            }
        )
        reproduce[i] = (
            f"compatlab check --invariant {inv[i]} --versions {vf[i]},{vt[i]} "
            f"--seed {i} --profile gate"
        )
    return pd.DataFrame(
        {
            "run_id": "bench",
            "invariant": inv,
            "device": dev,
            "versions": [f"{a}..{b}" for a, b in zip(vf, vt, strict=True)],
            "version_from": vf,
            "version_to": vt,
            "status": status,
            "examples": rng.integers(1, 50, n),
            "failures": (status == "fail").astype(int),
            "seconds": rng.random(n) / 10,
            "seed": rng.integers(0, 2**32, n),
            "profile": "ci",
            "failure": failure,
            "reproduce": reproduce,
            "note": np.where(status == "known", "a known finding", None),
        },
        columns=list(ResultRecord.__dataclass_fields__),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--failures", type=float, default=0.001)
    ap.add_argument("--keep", metavar="DIR", help="write the run here and keep it")
    args = ap.parse_args()
    run_dir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp()) / "bench-run"
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    table = synthetic_table(args.n, args.failures)
    table.to_parquet(run_dir / "results.parquet", index=False)
    write_meta(
        run_dir,
        {
            "run_id": "20260101T000000Z-bench",
            "profile": "ci",
            "seed": 1,
            "examples": int(table["examples"].sum()),
            "seconds": 3600.0,
        },
    )
    print(f"synthetic table: {len(table):,} rows in {time.perf_counter() - t0:.1f}s")
    started = time.perf_counter()
    report = Report(load_run(run_dir))
    print(f"  load          {time.perf_counter() - started:6.2f}s")
    for name, fn in _WRITERS.items():
        t = time.perf_counter()
        path = fn(report, run_dir)
        size = path.stat().st_size / 1e6
        print(f"  {name:<13} {time.perf_counter() - t:6.2f}s  {size:8.1f} MB")
    print(f"report total    {time.perf_counter() - started:6.2f}s")
    if not args.keep:
        shutil.rmtree(run_dir.parent)


if __name__ == "__main__":
    main()
