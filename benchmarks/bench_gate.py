"""Time the candidate gate on every candidate in corpora/candidates/.

    python benchmarks/bench_gate.py [--profile ci] [--full]

For each seeded compat bug: how long the gate took to reject it (``--fail-fast``,
as a release pipeline would run it), by which check, and the first line of its
explanation. For each correct candidate: how long a complete, passing gate took.
``--full`` runs the seeded ones to completion as well and counts failing runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from compatlab.catalogue.candidate import apply_candidate, load_candidate
from compatlab.engine import Status
from compatlab.gate import candidate_gate

ROOT = Path(__file__).resolve().parent.parent / "corpora" / "candidates"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    print("| candidate | verdict | seconds | runs | caught by | first explanation |")
    print("| --- | --- | ---: | ---: | --- | --- |")
    for kind in ("seeded", "good"):
        for path in sorted((ROOT / kind).glob("*.toml")):
            start = time.perf_counter()
            cc = apply_candidate(load_candidate(path))
            verdict = candidate_gate(
                cc, profile=args.profile, fail_fast=kind == "seeded" and not args.full
            )
            seconds = time.perf_counter() - start
            fails = [f for f in verdict.failures if f.status is Status.FAIL]
            if verdict.problems:
                by, why = "data check", verdict.problems[0]["message"]
            elif fails:
                first = fails[0]
                by = f"{first.invariant} {' → '.join(dict.fromkeys(first.versions))}"
                why = (first.explanation or (first.failure["detail"],))[0]
            else:
                by, why = "", ""
            state = "PASS" if verdict.passed else "FAIL"
            print(
                f"| {kind}/{path.stem} | {state} | {seconds:.2f} | {verdict.runs} | {by} | "
                f"{why[:110]} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
