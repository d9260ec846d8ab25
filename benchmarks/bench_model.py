"""Throughput of the reference model and of the real-QEMU capture path.

    python3 benchmarks/bench_model.py [--seconds S] [--no-qemu] [--json]

Prints realize throughput (devices per second: resolve + build config space,
for every device type's example on the newest version, and across all
versions), compat-hints dump and load throughput, and, when QEMU is installed, capture throughput (one-device configs
per second, packed into shared QEMU starts). Compare runs by their JSON.
"""

from __future__ import annotations

import argparse
import json
import time

from compatlab.catalogue import builtin_catalogue
from compatlab.config import Config, parse_device_string
from compatlab.realize import realize
from compatlab.versions import ALL_VERSIONS, NEWEST


def _rate(fn: object, seconds: float) -> tuple[float, int]:
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += fn()  # type: ignore[operator]
    return done / (time.perf_counter() - start), done


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


def bench_capture() -> dict[str, float]:
    from compatlab.oracles.capture import capture_singles
    from compatlab.oracles.qemu import available_binaries

    cat = builtin_catalogue()
    out: dict[str, float] = {}
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
        start = time.perf_counter()
        records = capture_singles(binary, binary.machines[-1], devices)
        elapsed = time.perf_counter() - start
        out[f"capture_configs_per_s_qemu_{binary.version}"] = len(records) / elapsed
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--no-qemu", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = bench_realize(args.seconds)
    results.update(bench_hints(args.seconds))
    if not args.no_qemu:
        results.update(bench_capture())
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for k, v in results.items():
            print(f"{k:<45} {v:10.1f}")


if __name__ == "__main__":
    main()
