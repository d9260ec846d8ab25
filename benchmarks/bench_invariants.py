"""Examples per second of each invariant, side by side with its bare strategy.

    python3 benchmarks/bench_invariants.py [--seconds S] [--versions U,V] [--json]

For every registered invariant (model-matches-qemu excluded unless --qemu), one
run draws examples from the invariant's strategy and does nothing with them;
another draws the same examples and checks the invariant. The ratio says what
the checks cost beyond generating their inputs. Both use the same settings
(no database, no shrinking needed: the catalogue's known findings are avoided by
the default version pair).
"""

from __future__ import annotations

import argparse
import json
import time

from hypothesis import HealthCheck, given, settings

from compatlab.invariants import Case, Scope, registered
from compatlab.versions import Version


def _rate(strategy: object, check: object, seconds: float) -> float:
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        counter = [0]

        @settings(
            max_examples=50, database=None, deadline=None, suppress_health_check=list(HealthCheck)
        )
        @given(strategy)  # type: ignore[arg-type]
        def run(case: Case) -> None:
            counter[0] += 1  # noqa: B023 (run is called inside this iteration)
            check(case)  # type: ignore[operator]

        run()
        done += counter[0]
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument(
        "--versions", default="9.1,10.0", help="U,V[,W] (default avoids known findings)"
    )
    parser.add_argument("--qemu", action="store_true", help="include model-matches-qemu")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    given_versions = [Version.parse(v) for v in args.versions.split(",")]
    results = {}
    for name, inv in registered().items():
        if inv.needs_qemu and not args.qemu:
            continue
        versions = {
            1: (given_versions[-1],),
            2: (given_versions[0], given_versions[-1]),
            3: (given_versions[0], given_versions[len(given_versions) // 2], given_versions[-1]),
        }[inv.arity]
        strategy = inv.strategy(versions, Scope())
        bare = _rate(strategy, lambda case: None, args.seconds)
        checked = _rate(strategy, inv.run, args.seconds)
        results[name] = {
            "strategy_examples_per_s": round(bare, 1),
            "invariant_examples_per_s": round(checked, 1),
            "cost_ratio": round(bare / checked, 2) if checked else None,
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'invariant':<30} {'strategy ex/s':>14} {'invariant ex/s':>15} {'ratio':>6}")
    for name, r in results.items():
        print(
            f"{name:<30} {r['strategy_examples_per_s']:>14} {r['invariant_examples_per_s']:>15} "
            f"{r['cost_ratio']:>6}"
        )


if __name__ == "__main__":
    main()
