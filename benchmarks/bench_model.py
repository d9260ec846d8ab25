"""Start-up and throughput of the reference model, and of the real-QEMU capture path.

    python3 benchmarks/bench_model.py [--seconds S] [--runs N] [--no-qemu | --qemu-only] [--json]

Prints, for the checkout it lives in:

- start-up: the median of N bare interpreter starts (``python -c pass``) and of N
  one-device ``compatlab realize --device e1000 --format json`` runs, and their
  ratio (the target is 150 ms beside a 39 ms bare start: 3.85); the same without
  the catalogue snapshot (every table parsed), and with bytecode cached as an
  installed wheel has it (when ``PYTHONDONTWRITEBYTECODE`` keeps it from being
  written, every start compiles compatlab's modules);
- realize throughput (devices per second: resolve + build config space, for every
  device type's example on the newest version, and across all versions), also as
  devices realized in the time of one bare start (the target, 20,000 devices/s
  beside a 39 ms start, is 780);
- compat-hints dump and load throughput, and, when QEMU is installed, capture
  throughput of every binary found (``COMPATLAB_QEMU`` names more): one-device
  configs (every catalogue example of the binary's version, four times) packed into
  shared QEMU starts on its newest machine type, 256-byte reads alone and with write
  probes, per wall second and per CPU second of this process and its QEMU children
  (the figure to compare on a shared machine; the target is 150 with probes), with
  the QEMU starts they took.

Compare runs by their JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure this checkout, not an installed compatlab

from compatlab.catalogue import builtin_catalogue  # noqa: E402
from compatlab.config import Config, parse_device_string  # noqa: E402
from compatlab.realize import realize  # noqa: E402
from compatlab.versions import ALL_VERSIONS, NEWEST  # noqa: E402

REALIZE_ONE = ("-m", "compatlab", "realize", "--device", "e1000", "--format", "json")
TARGET_CAPTURE_PER_CPU_S = 150
TARGET_START_RATIO = 150 / 39
TARGET_DEVICES_PER_BARE_START = 20_000 * 0.039


def _median_ms(argv: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    """Median wall and CPU (user + system) milliseconds of ``runs`` starts of ``argv``.

    CPU time is the figure to compare on a busy machine: waiting for a core
    stretches wall time, not CPU time.
    """
    subprocess.run(argv, env=env, cwd=ROOT, check=True, capture_output=True)  # warm up
    wall, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        wall.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def bench_startup(runs: int) -> dict[str, float]:
    """Medians of N starts, in ms, and ratios to a bare interpreter start."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    python = [sys.executable]
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cached = {**env, "COMPATLAB_CACHE_DIR": os.path.join(tmp, "cache")}
        bytecode = {**cached, "PYTHONPYCACHEPREFIX": os.path.join(tmp, "pycache")}
        bytecode.pop("PYTHONDONTWRITEBYTECODE", None)
        cases = {
            "bare_interpreter_start": ([*python, "-c", "pass"], env),
            "realize_one_device_cli": ([*python, *REALIZE_ONE], cached),
            "realize_one_device_cli_no_snapshot": (
                [*python, *REALIZE_ONE],
                {**env, "COMPATLAB_CACHE_DIR": ""},
            ),
            "realize_one_device_cli_bytecode_cached": ([*python, *REALIZE_ONE], bytecode),
        }
        for name, (argv, case_env) in cases.items():
            out[f"{name}_ms"], out[f"{name}_cpu_ms"] = _median_ms(argv, runs, case_env)
    for name in cases:
        if name != "bare_interpreter_start":
            out[f"{name}_ratio_to_bare"] = out[f"{name}_ms"] / out["bare_interpreter_start_ms"]
            out[f"{name}_cpu_ratio_to_bare"] = (
                out[f"{name}_cpu_ms"] / out["bare_interpreter_start_cpu_ms"]
            )
    out["realize_one_device_cli_ratio_target"] = TARGET_START_RATIO
    out["bytecode_written"] = float(not os.environ.get("PYTHONDONTWRITEBYTECODE"))
    return out


def _rate(fn: object, seconds: float, clock: object = time.perf_counter) -> tuple[float, int]:
    done = 0
    start = clock()  # type: ignore[operator]
    while clock() - start < seconds:  # type: ignore[operator]
        done += fn()  # type: ignore[operator]
    return done / (clock() - start), done  # type: ignore[operator]


def bench_realize(seconds: float) -> dict[str, float]:
    cat = builtin_catalogue()
    newest = [
        Config((parse_device_string(cat.types[d].example or d),)) for d in cat.devices(NEWEST)
    ]
    six = Config(tuple(c.devices[0] for c in newest[:6]))

    def one_each() -> int:
        for c in newest:
            realize(c, NEWEST)
        return len(newest)

    def across_versions() -> int:
        n = 0
        for v in ALL_VERSIONS:
            for d in cat.devices(v):
                realize(Config((parse_device_string(cat.types[d].example or d),)), v)
                n += 1
        return n

    def six_device_config() -> int:
        realize(six, NEWEST)
        return len(six.devices)

    return {
        "realize_devices_per_s_newest": _rate(one_each, seconds)[0],
        "realize_devices_per_cpu_s_newest": _rate(one_each, seconds, time.process_time)[0],
        "realize_devices_per_s_all_versions": _rate(across_versions, seconds)[0],
        "realize_devices_per_s_6_device_config": _rate(six_device_config, seconds)[0],
    }


def bench_hints(seconds: float) -> dict[str, float]:
    """Dump (resolve on the old version + encode) and load (decode + resolve +
    realize on the new version) of a six-device config's hints."""
    from compatlab.hints import decode, encode
    from compatlab.resolve import dump_hints
    from compatlab.versions import Version

    cat = builtin_catalogue()
    old = Version(6, 0)
    config = Config(
        tuple(
            parse_device_string((cat.types[d].example or d) + f",id=d{i}")
            for i, d in enumerate(cat.devices(old)[:6])
        )
    )
    blob = encode(dump_hints(config, old))

    def dump() -> int:
        encode(dump_hints(config, old))
        return 1

    def load() -> int:
        realize(config, NEWEST, hints=decode(blob))
        return 1

    def decode_only() -> int:
        decode(blob)
        return 1

    return {
        "hints_dumps_per_s_6_devices": _rate(dump, seconds)[0],
        "hints_loads_per_s_6_devices": _rate(load, seconds)[0],
        "hints_decodes_per_s_6_devices": _rate(decode_only, seconds)[0],
        "hints_blob_bytes_6_devices": float(len(blob)),
    }


def _cpu_seconds() -> float:
    """CPU time of this process and of its children that have exited."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bench_capture() -> dict[str, float]:
    import compatlab.oracles.capture as capture
    from compatlab.oracles.qemu import available_binaries

    cat = builtin_catalogue()
    # QEMU starts are counted: how configs share them decides the rate more than
    # the cost of any one start.
    starts = 0
    run_batch = capture.run_batch

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal starts
        starts += 1
        return run_batch(*args, **kwargs)  # type: ignore[arg-type]

    out: dict[str, float] = {"capture_configs_per_cpu_s_target": TARGET_CAPTURE_PER_CPU_S}
    capture.run_batch = counted  # type: ignore[assignment]
    try:
        for binary in available_binaries():
            devices = [cat.types[d].example or d for d in cat.devices(binary.version)] * 4
            devices = [
                ",".join(
                    p
                    if "=" not in p or p.split("=")[0] not in ("drive", "netdev", "chardev")
                    else f"{p}{i}"
                    for p in s.split(",")
                )
                for i, s in enumerate(devices)
            ]
            for probe in (False, True):
                tag = f"qemu_{binary.version}" + ("_probe" if probe else "")
                starts = 0
                cpu, start = _cpu_seconds(), time.perf_counter()
                records = capture.capture_singles(
                    binary, binary.machines[-1], devices, probe=probe, catalogue=cat
                )
                elapsed = time.perf_counter() - start
                cpu = _cpu_seconds() - cpu
                out[f"capture_configs_per_s_{tag}"] = len(records) / elapsed
                out[f"capture_configs_per_cpu_s_{tag}"] = len(records) / cpu
                out[f"capture_configs_{tag}"] = len(records)
                out[f"capture_starts_{tag}"] = starts
                out[f"capture_refused_{tag}"] = sum(r.config_space is None for r in records)
    finally:
        capture.run_batch = run_batch
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=20, help="starts per start-up figure")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--no-qemu", action="store_true")
    which.add_argument("--qemu-only", action="store_true", help="only capture throughput")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.qemu_only:
        _print(bench_capture(), as_json=args.json)
        return
    results = bench_startup(args.runs)
    results.update(bench_realize(args.seconds))
    per_start = (
        results["realize_devices_per_s_newest"] * results["bare_interpreter_start_ms"] / 1000
    )
    results["realize_devices_per_bare_start_newest"] = per_start
    results["realize_devices_per_bare_start_target"] = TARGET_DEVICES_PER_BARE_START
    results.update(bench_hints(args.seconds))
    if not args.no_qemu:
        results.update(bench_capture())
    _print(results, as_json=args.json)


def _print(results: dict[str, float], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        for k, v in results.items():
            print(f"{k:<55} {v:10.2f}")


if __name__ == "__main__":
    main()
