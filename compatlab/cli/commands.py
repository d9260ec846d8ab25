"""The subcommands. Each returns an exit code; this module and reports print."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from compatlab import paths
from compatlab.errors import CompatlabError, ConfigError, ExitCode
from compatlab.versions import ALL_VERSIONS, NEWEST, Version, active_versions, known_version


def _version(text: str | None) -> Version:
    return NEWEST if text is None else known_version(text)


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _progress(msg: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{msg}")
        sys.stderr.flush()


def _progress_done() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")


def _warn(message: str) -> None:
    print(f"compatlab: warning: {message}", file=sys.stderr)


def _writable(option: str, path: str | Path, *, folder: bool = True) -> Path:
    """``path``, which the command will write (a folder, or a file): refused before
    any work starts when it cannot be."""
    why = paths.unwritable(path, folder=folder)
    if why is not None:
        raise ConfigError(f"{option} {path}: {why}")
    return Path(path)


def _place(option: str, explicit: str | None, variable: str) -> str:
    """How the user named a place: its option, its environment variable, or neither."""
    if explicit:
        return option
    return f"{option} (${variable})" if os.environ.get(variable) else f"{option} (default)"


def _workers(n: int) -> int:
    """``-n``, at most the engine's :func:`~compatlab.engine.execute.worker_limit`
    (with a warning): more processes only compete for the CPUs."""
    from compatlab.engine.execute import WORKERS_PER_CPU, usable_cpus, worker_limit

    limit = worker_limit()
    if n > limit:
        _warn(
            f"-n {n}: {usable_cpus()} usable CPUs take at most {limit} worker processes "
            f"({WORKERS_PER_CPU} each); using {limit}"
        )
        return limit
    return n


# -- realize ------------------------------------------------------------------


def cmd_realize(args: argparse.Namespace) -> int:
    from compatlab.config import build_config
    from compatlab.realize import realize

    hints = _read_hints(args.hints) if args.hints else None
    config = build_config(args.config, args.device, args.vcpus)
    if not config.devices:
        raise ConfigError("no devices: give --config FILE or --device SPEC")
    realized = realize(config, _version(args.version), hints=hints)
    doc = realized_to_json(realized)
    if args.format == "json":
        _print_json(doc)
    else:
        _print_realized_text(doc)
    return ExitCode.OK


def realized_to_json(realized: Any) -> dict[str, Any]:
    devices = []
    for rd in realized.devices:
        dev = rd.device
        devices.append(
            {
                "id": dev.id,
                "driver": dev.driver,
                "addr": str(dev.addr),
                "config_space": rd.space.config.hex(),
                "wmask": rd.space.wmask.hex(),
                "w1cmask": rd.space.w1cmask.hex(),
                "cmask": rd.space.cmask.hex(),
                "properties": {
                    name: {"value": r.value, "source": str(r.source)}
                    for name, r in sorted(dev.properties.items())
                },
            }
        )
    return {
        "version": str(realized.version),
        "machine": {"vcpus": {"value": realized.vcpus.value, "source": str(realized.vcpus.source)}},
        "devices": devices,
        "ignored_hints": [h.to_json() for h in realized.ignored_hints],
    }


def _hexdump(data: bytes) -> list[str]:
    return [
        f"  {row:02x}: " + " ".join(f"{b:02x}" for b in data[row : row + 16])
        for row in range(0, len(data), 16)
    ]


def _print_realized_text(doc: dict[str, Any]) -> None:
    vcpus = doc["machine"]["vcpus"]
    print(f"version {doc['version']}, {vcpus['value']} vCPUs ({vcpus['source']})")
    for dev in doc["devices"]:
        ident = f" id={dev['id']}" if dev["id"] else ""
        print(f"\n{dev['addr']} {dev['driver']}{ident}")
        for line in _hexdump(bytes.fromhex(dev["config_space"])):
            print(line)
        explicit = {n: p for n, p in dev["properties"].items() if p["source"] != "default"}
        if explicit:
            print("  properties not at their default:")
            for name, p in explicit.items():
                print(f"    {name} = {p['value']} ({p['source']})")
    for ignored in doc["ignored_hints"]:
        print(
            f"\nignored hint {ignored['identity']} ({ignored['driver']}, {ignored['kind']}): "
            f"{ignored['reason']}"
        )


# -- hints ----------------------------------------------------------------------------


def _read_hints(path: str) -> Any:
    """Decode the hints file ``path``: a regular file of at most the format's 16 MiB."""
    from compatlab.errors import HintsFormatError
    from compatlab.hints import MAX_SIZE, decode
    from compatlab.inputs import read_bytes

    data = read_bytes(path, what="hints file", limit=MAX_SIZE, error=HintsFormatError)
    try:
        return decode(data)
    except HintsFormatError as exc:
        raise HintsFormatError(f"{path}: {exc.reason}", offset=exc.offset, raw=exc.raw) from None


def cmd_hints(args: argparse.Namespace) -> int:
    from compatlab.config import build_config
    from compatlab.hints import encode
    from compatlab.resolve import dump_hints

    if args.hints_command == "dump":
        _writable("-o", args.output, folder=False)
        config = build_config(args.config, args.device, args.vcpus)
        if not config.devices:
            raise ConfigError("no devices: give --config FILE or --device SPEC")
        blob = encode(dump_hints(config, known_version(args.version)))
        try:
            Path(args.output).write_bytes(blob)
        except OSError as exc:
            raise ConfigError(f"cannot write {args.output}: {exc.strerror}") from None
        print(
            f"{len(config.devices)} devices, {len(blob)} bytes written to {args.output}",
            file=sys.stderr,
        )
        return ExitCode.OK
    hints = _read_hints(args.file)
    if args.format == "json":
        _print_json(hints.to_json())
    else:
        print(
            f"compat hints dumped by {hints.version} with {hints.vcpus} vCPUs, "
            f"{len(hints.entries)} devices"
        )
        for entry in hints.entries:
            print(f"\n{entry.identity} {entry.driver}")
            for name, value in entry.properties:
                print(f"  {name} = {value!r}")
    return ExitCode.OK


# -- versions / devices -------------------------------------------------------------


def cmd_versions(args: argparse.Namespace) -> int:
    names = [str(v) for v in ALL_VERSIONS]
    if args.format == "json":
        _print_json({"versions": names, "newest": str(NEWEST)})
    else:
        print("\n".join(names))
    return ExitCode.OK


def cmd_devices(args: argparse.Namespace) -> int:
    from compatlab.catalogue import builtin_catalogue

    cat = builtin_catalogue()
    version = _version(args.version)
    if args.driver is not None:
        cat.device(args.driver, version)
        props = cat.properties(args.driver, version)
        rows = [
            {
                "name": p.name,
                "type": p.type.describe(),
                "default": cat.default(args.driver, p.name, version),
                "guest_visible": p.guest_visible,
                "since": str(p.since),
            }
            for p in sorted(props.values(), key=lambda p: p.name)
        ]
        if args.format == "json":
            _print_json({"version": str(version), "driver": args.driver, "properties": rows})
        else:
            for r in rows:
                mark = "*" if r["guest_visible"] else " "
                print(f"{mark} {r['name']:<32} {r['type']:<20} default {r['default']!r}")
            print("\n* changes guest-visible config space")
        return ExitCode.OK
    names = cat.devices(version)
    if args.format == "json":
        _print_json({"version": str(version), "devices": list(names)})
    else:
        print("\n".join(names))
    return ExitCode.OK


# -- qemu -------------------------------------------------------------------------------


def cmd_qemu(args: argparse.Namespace) -> int:
    handler = {
        "binaries": _qemu_binaries,
        "capture": _qemu_capture,
        "verify": _qemu_verify,
        "discover": _qemu_discover,
        "learn": _qemu_learn,
    }[args.qemu_command]
    return handler(args)


def _qemu_binaries(args: argparse.Namespace) -> int:
    from compatlab.oracles.qemu import available_binaries

    binaries = available_binaries()
    if not binaries:
        print("no QEMU binaries found (run .ci/install-qemu or set COMPATLAB_QEMU)")
        return ExitCode.FAILED
    for b in binaries:
        machines = f"{b.machines[0]}..{b.machines[-1]}" if b.machines else "none"
        print(f"{b.version}\t{b.release}\t{b.path}\tpc-i440fx {machines}")
    return ExitCode.OK


def _qemu_capture(args: argparse.Namespace) -> int:
    from compatlab.catalogue import builtin_catalogue
    from compatlab.config import DEFAULT_VCPUS, build_config
    from compatlab.oracles.capture import capture_one, capture_singles, write_records
    from compatlab.oracles.qemu import binary_for
    from compatlab.oracles.sweep import sweep, uniquify_links

    _writable("-o", args.output, folder=False)
    binary = binary_for(args.binary)
    if args.sweep and binary.version not in active_versions():
        raise ConfigError(
            f"--sweep draws its configs from the catalogue, which does not cover "
            f"{binary.describe()} ({active_versions()[0]}..{active_versions()[-1]}); "
            "capture --device SPEC... instead"
        )
    machines = [known_version(m) for m in args.machine] or list(binary.machines)
    for m in machines:
        if m not in binary.machines:
            raise ConfigError(f"{binary.describe()} has no machine type pc-i440fx-{m}")
    cat = builtin_catalogue()
    started = time.perf_counter()
    total = 0
    drivers = cat.devices(binary.version) if "all" in args.sweep else args.sweep
    for driver in drivers:
        items = uniquify_links(
            cat, list(sweep(cat, driver, binary.version, machines)), binary.version
        )
        by_machine: dict[Version, list[str]] = {}
        for item in items:
            by_machine.setdefault(item.machine, []).append(item.device)
        done = 0
        for machine, devices in by_machine.items():

            def tick(n: int, driver: str = driver, size: int = len(items)) -> None:
                nonlocal done
                done += n
                _progress(f"{driver}: {done}/{size} configs")

            total += write_records(
                args.output,
                capture_singles(
                    binary,
                    machine,
                    devices,
                    progress=tick,
                    probe=args.probe,
                    vcpus=args.vcpus or DEFAULT_VCPUS,
                ),
            )
        _progress_done()
        print(f"{driver}: {len(items)} captures", file=sys.stderr)
    config = build_config(args.config, args.device, args.vcpus)
    if config.devices:
        from compatlab.resolve import assign_addresses

        addrs = assign_addresses(config)
        strings = [
            d.to_device_string() if d.addr else f"{d.to_device_string()},addr={a}"
            for d, a in zip(config.devices, addrs, strict=True)
        ]
        for machine in machines:
            total += write_records(
                args.output,
                [
                    capture_one(
                        binary,
                        machine,
                        strings,
                        probe=args.probe,
                        vcpus=config.vcpus or DEFAULT_VCPUS,
                    )
                ],
            )
    elapsed = time.perf_counter() - started
    rate = total / elapsed if elapsed else 0.0
    print(
        f"{total} captures written to {args.output} in {elapsed:.1f}s ({rate:.1f} configs/s)",
        file=sys.stderr,
    )
    return ExitCode.OK


def _corpus_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for text in paths:
        p = Path(text)
        if p.is_dir():
            files.extend(sorted(p.rglob("*.jsonl")))
        elif p.exists():
            files.append(p)
        else:
            raise ConfigError(f"{p}: no such corpus file or folder")
    return files


def _qemu_verify(args: argparse.Namespace) -> int:
    from compatlab.oracles.capture import read_corpus
    from compatlab.oracles.compare import check_record

    files = _corpus_files(args.paths or [str(paths.captures_dir())])
    total = bad = skipped = crashed = unmodelled = 0
    shown = 0
    for f in files:
        for rec in read_corpus(f):
            verdict = check_record(rec, via_hints=args.via_hints)
            if rec.fault is not None:
                crashed += 1
                continue
            if verdict.unmodelled:
                unmodelled += 1
                continue
            if not verdict.applicable:
                skipped += 1
                continue
            total += 1
            if not verdict.agrees:
                bad += 1
                if shown < args.show:
                    shown += 1
                    print(f"{f.name}: QEMU {rec.binary} pc-i440fx-{rec.machine}: {verdict.detail}")
    pct = 100.0 * (total - bad) / total if total else 0.0
    how = " through compat hints" if args.via_hints else ""
    print(f"{total - bad}/{total} captures agree{how} ({pct:.2f}%) across {len(files)} files")
    if skipped:
        print(
            f"{skipped} captures not checked: their config did not exist on the machine "
            "type's version, so that version could not have dumped hints for it"
        )
    if crashed:
        print(f"{crashed} captures not checked: QEMU crashed on them (a finding about QEMU)")
    if unmodelled:
        known = active_versions()
        print(
            f"{unmodelled} captures not checked: their binary or machine type is newer than "
            f"the catalogue ({known[0]}..{known[-1]})"
        )
    return ExitCode.OK if bad == 0 and total else ExitCode.FAILED


def _qemu_discover(args: argparse.Namespace) -> int:
    from compatlab.oracles.discover import discover
    from compatlab.oracles.qemu import available_binaries, binary_for

    binaries = available_binaries()
    if args.binary is None and not binaries:
        raise CompatlabError("no QEMU binaries found (run .ci/install-qemu or set COMPATLAB_QEMU)")
    binary = binary_for(args.binary) if args.binary else binaries[-1]
    machine = known_version(args.machine) if args.machine else binary.machines[-1]
    report = discover(binary, machine, args.driver, base=args.base, progress=_progress)
    _progress_done()
    if args.format == "json":
        _print_json(report)
    else:
        print(f"{args.driver} on {binary.describe()}, pc-i440fx-{machine}")
        for row in report["properties"]:
            if row["changes"]:
                print(f"  {row['name']:<32} changes config space: {', '.join(row['changes'])}")
        quiet = [r["name"] for r in report["properties"] if not r["changes"]]
        print(f"  no config-space effect seen: {', '.join(quiet) or 'none'}")
    return ExitCode.OK


def _qemu_learn(args: argparse.Namespace) -> int:
    import re

    from compatlab.catalogue.candidate import as_of
    from compatlab.catalogue.loader import builtin_catalogue
    from compatlab.errors import InputError, OracleError
    from compatlab.oracles.introspect import introspect
    from compatlab.oracles.learn import candidate_toml, learn
    from compatlab.oracles.qemu import binary_for, probe_binary
    from compatlab.versions import Version

    if args.output and (why := paths.unwritable(args.output, folder=False)):
        raise InputError(f"-o {args.output}: {why}")
    given = args.binary
    if re.fullmatch(r"\s*\d{1,3}\.\d{1,3}\s*", given):
        binary = binary_for(given)
    else:
        path = Path(given)
        if not path.is_file() or not os.access(path, os.X_OK):
            raise InputError(f"{given}: not an executable file (give a version or a QEMU binary)")
        try:
            binary = probe_binary(path)
        except OracleError as exc:
            raise InputError(f"{given}: not a QEMU binary ({exc})") from None
    catalogue = builtin_catalogue()
    if args.base is not None:
        base = Version.parse(args.base)
        if base not in catalogue.versions:
            raise InputError(f"--base {args.base}: the catalogue has no version {base}")
        if base >= binary.version:
            raise InputError(
                f"--base {base} must be older than the binary's release {binary.version}"
            )
        catalogue = as_of(catalogue, base)
    intro = introspect(binary, catalogue.types)
    text = candidate_toml(learn(catalogue, intro, binary.version))
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return ExitCode.OK


# -- check --------------------------------------------------------------------------------


def _drivers(names: list[str]) -> tuple[str, ...]:
    """Device types named on the command line, each checked against the catalogue."""
    from compatlab.catalogue import active_catalogue
    from compatlab.errors import UnknownDeviceError

    cat = active_catalogue()
    for driver in names:
        if driver not in cat.concrete:
            raise UnknownDeviceError(driver, cat.concrete)
    return tuple(dict.fromkeys(names))


def cmd_check(args: argparse.Namespace) -> int:
    import random

    from compatlab import profiles
    from compatlab.engine.outcome import Status
    from compatlab.engine.session import new_run_id, run_check, signal_name
    from compatlab.engine.tasks import Context, Request
    from compatlab.invariants import in_suite, registered
    from compatlab.versions import version_range

    profile = profiles.choose(args.profile)
    names = tuple(dict.fromkeys(in_suite(n).name for n in args.invariant)) or tuple(registered())
    versions = version_range(args.versions) if args.versions is not None else ALL_VERSIONS
    if not versions:
        raise ConfigError(f"--versions {args.versions}: selects no version")
    devices = _drivers(args.device)
    workers = _workers(args.workers)
    runs = _writable(_place("--out", args.out, paths.RUNS_ENV), paths.runs_dir(args.out))
    failures = _writable(
        _place("--failures-dir", args.failures_dir, paths.FAILURES_ENV),
        paths.failures_dir(args.failures_dir),
    )
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    run_id = new_run_id(seed)
    findings = paths.findings_file()
    if not findings.is_file():
        _warn(
            f"no {findings}: known findings are not used "
            f"(${paths.CORPORA_ENV} names the data folder)"
        )
    request = Request(
        invariants=names,
        versions=versions,
        context=Context(
            profile=profile,
            seed=seed,
            # Absolute, not resolved: a symlink loop is the reader's to refuse.
            findings=os.path.abspath(findings),
            captures=os.path.abspath(paths.captures_dir()),
            failures_dir=os.path.abspath(failures),
            database=os.path.abspath(profiles.DATABASE_DIR),
            run_id=run_id,
        ),
        devices=devices or (None,),
    )
    progress = _Progress("check")

    def replayed(replays: list[Any]) -> None:
        still = [r for r in replays if r.still_failing]
        print(
            f"corpus: {len(replays)} saved failures replayed, {len(still)} still failing, "
            f"{len(replays) - len(still)} fixed",
            file=sys.stderr,
        )
        for r in still:
            print(f"  still failing: {r.path} ({r.invariant}): {r.detail}", file=sys.stderr)

    def started(run: Any) -> None:
        n = run.workers
        print(
            f"check: {len(run.tasks)} runs ({len(names)} invariants, {len(versions)} versions, "
            f"profile {profile}, seed {seed}, {n} worker{'s' if n > 1 else ''})",
            file=sys.stderr,
        )

    def finished(run: Any, outcome: Any) -> None:
        progress(len(run.outcomes), len(run.tasks), len(run.failing()))

    try:
        run = run_check(
            request,
            runs / run_id,
            workers=workers,
            replay=not args.no_replay,
            on_replays=replayed,
            on_start=started,
            on_outcome=finished,
        )
    finally:
        _progress_done()
    for line in run.skipped:
        _warn(line)
    _print_check_summary(run, strict=args.strict)
    print(f"results: {run.run_dir}/results.parquet ({run.table_rows} rows)", file=sys.stderr)
    if not args.no_report:
        from compatlab.report import write_report

        written = write_report(run.run_dir)
        html = next((p for p in written if p.name == "report.html"), None)
        print(f"report: {html or run.run_dir}", file=sys.stderr)
    if run.interrupted:
        assert run.signal is not None
        print(
            f"compatlab: interrupted by {signal_name(run.signal)}: {run.table_rows} of "
            f"{len(run.tasks)} runs done (the run folder holds them)",
            file=sys.stderr,
        )
        return 128 + run.signal  # as shells expect of a process a signal stopped
    if any(o.status is Status.ERROR for o in run.outcomes):
        # A run that could not get its evidence (an oracle that failed, a defect in a
        # check) gives no verdict: not a pass, not a failure.
        return ExitCode.INTERNAL_ERROR
    return ExitCode.FAILED if run.failing(strict=args.strict) else ExitCode.OK


class _Progress:
    """Progress of a long run on stderr: a live line on a terminal, else a line
    every 15 seconds and one at the end."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.started = time.perf_counter()
        self.last = 0.0

    def __call__(self, done: int, total: int, failed: int) -> None:
        now = time.perf_counter() - self.started
        msg = f"{self.what}: {done}/{total} runs, {failed} failed, {now:.0f}s"
        if sys.stderr.isatty():
            _progress(msg)
        elif now - self.last > 15 or done == total:
            self.last = now
            print(msg, file=sys.stderr)


def _print_check_summary(run: Any, *, strict: bool) -> None:
    from compatlab.engine.outcome import Status
    from compatlab.engine.session import signal_name
    from compatlab.results import summarize

    # Counted from the records the run folder holds (an interrupted run's workers may
    # have finished more than the controller received), in the order planned.
    found = summarize(run.records)
    counts = {n: found[n] for n in run.request.invariants if n in found}
    print(
        f"{'invariant':<30} {'runs':>6} {'pass':>6} {'fail':>6} {'known':>6} {'skip':>5} {'error':>6} {'examples':>9}"
    )
    for name, row in counts.items():
        runs = sum(row[str(k)] for k in Status)
        print(
            f"{name:<30} {runs:>6} {row['pass']:>6} {row['fail']:>6} {row['known']:>6} "
            f"{row['skip']:>5} {row['error']:>6} {row['examples']:>9}"
        )
    elapsed = run.seconds
    rate = run.examples / elapsed if elapsed else 0.0
    done = "" if run.complete else f" of {len(run.tasks)} planned"
    if run.interrupted:
        done += f" (INCOMPLETE: interrupted by {signal_name(run.signal)})"
    print(
        f"{run.table_rows} runs{done}, {run.examples} examples in {elapsed:.1f}s "
        f"({rate:.0f} examples/s)"
    )
    known: dict[str, list[Any]] = {}
    for o in run.outcomes:
        if o.status is Status.KNOWN:
            known.setdefault(o.note or "", []).append(o)
    for reason, explained in known.items():
        invariants = sorted({o.task.invariant for o in explained})
        label = "FAILED (--strict): known finding" if strict else "known finding"
        print(f"\n{label} ({len(explained)} runs: {', '.join(invariants)}):")
        print("  " + reason.splitlines()[0] + (" …" if "\n" in reason else ""))
    shown: set[tuple[str, str]] = set()
    for o in run.outcomes:
        if not o.failed(strict=strict):
            continue
        detail = o.failure.detail if o.failure else (o.note or "")
        key = (o.task.invariant, detail)
        if key in shown:
            continue
        shown.add(key)
        label = "ERROR" if o.status is Status.ERROR else "FAILED"
        device = (o.failure.device if o.failure else None) or o.task.device
        print(f"\n{label}: {o.task.invariant} {'..'.join(o.task.versions)} (device {device})")
        print(f"  {detail}")
        if o.failure and o.failure.config:
            print("  minimal config: " + " ".join(o.failure.options()))
        print(f"  reproduce: {o.reproduce_command(strict=strict)}")


# -- report -------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from compatlab.report import Report, default_run, load_run, write_history
    from compatlab.report.writers import write_all

    out = _writable("--out", args.out) if args.out is not None else None
    if args.history is not None:
        if args.run_dirs:
            raise ConfigError("give either RUN_DIR... or --history DIR, not both")
        history = Path(args.history)
        if out is None and history.is_dir():
            _writable("--history", history)
        for path in write_history(history, out):
            print(path)
        return ExitCode.OK
    run_dirs = [Path(d) for d in args.run_dirs] or [default_run(paths.runs_dir())]
    if out is None:
        for run_dir in run_dirs:
            if run_dir.is_dir():
                _writable("RUN_DIR (the report is written into it; --out says elsewhere)", run_dir)
    for run_dir in run_dirs:
        run = load_run(run_dir)
        for line in run.warnings:
            _warn(line)
        if run.incomplete is not None:
            print(f"compatlab: {run_dir}: incomplete run: {run.incomplete}", file=sys.stderr)
        target = out / run_dir.name if out is not None and len(run_dirs) > 1 else out
        for path in write_all(Report(run), target if target is not None else run_dir):
            print(path)
    return ExitCode.OK


# -- gate ---------------------------------------------------------------------------------


def cmd_gate(args: argparse.Namespace) -> int:
    if args.record is not None:
        _writable("--record", args.record, folder=False)
    args.workers = _workers(args.workers)
    binaries = args.baseline_binary is not None or args.candidate_binary is not None
    if args.candidate is not None or args.release is not None:
        if binaries or (args.candidate is not None and args.release is not None):
            raise ConfigError(
                "give one of --candidate, --release or the two --*-binary options, not several"
            )
        return _candidate_gate(args)
    if args.baseline_binary is None or args.candidate_binary is None:
        raise ConfigError(
            "gate needs --candidate FILE, or both --baseline-binary and --candidate-binary"
        )
    return _binary_gate(args)


def _candidate_gate(args: argparse.Namespace) -> int:
    from compatlab import profiles
    from compatlab.catalogue import builtin_catalogue, using_catalogue
    from compatlab.catalogue.candidate import apply_candidate, load_candidate, release_candidate
    from compatlab.gate import candidate_gate, gate_problems
    from compatlab.versions import version_range

    if args.release is not None:
        builtin = builtin_catalogue()
        cc = apply_candidate(release_candidate(builtin, known_version(args.release)), builtin)
        source = f"release {args.release} of the built-in catalogue"
    else:
        cc = apply_candidate(load_candidate(args.candidate))
        source = args.candidate
    cat, n = cc.catalogue, cc.version
    baselines = None
    if args.baseline:
        with using_catalogue(cat):
            baselines = [v for v in version_range(args.baseline) if v < n]
        if not baselines:
            raise ConfigError(f"--baseline {args.baseline}: no version older than {n}")
    drivers = None
    if args.drivers is not None:
        drivers = tuple(d.strip() for d in args.drivers.split(",") if d.strip())
        if not drivers:
            raise ConfigError(f"--drivers {args.drivers!r} names no device type")
        with using_catalogue(cat):
            drivers = _drivers(list(drivers))
    invariants = None
    if args.invariant:
        from compatlab.gate import CANDIDATE_INVARIANTS, GATE_INVARIANTS
        from compatlab.invariants import get

        gated = (*GATE_INVARIANTS, *CANDIDATE_INVARIANTS)
        invariants = tuple(dict.fromkeys(get(n).name for n in args.invariant))
        for name in invariants:
            if name not in gated:
                raise ConfigError(f"the gate does not run {name!r}; it runs {', '.join(gated)}")
    profile = profiles.choose(args.profile or "gate")
    chosen = drivers if drivers is not None else cc.touched()
    olds = baselines or [v for v in cat.versions if v < n]
    problems = gate_problems(cc, baselines=olds, drivers=chosen)
    print(
        f"gate: candidate {n} on base {cc.base.versions[-1]} ({source}); "
        f"{len(problems)} data problem(s); upgrades from {olds[0]}..{olds[-1]} "
        f"({len(olds)} versions) on {', '.join(chosen) or 'no device type'}; profile {profile}",
        file=sys.stderr,
    )
    if problems:
        # A data problem fails the gate whatever the runs find.
        first = problems[0]
        print(
            f"gate: FAIL (data problem; the report follows): ({first.kind}) {first.message}",
            file=sys.stderr,
        )
    progress = _Progress("gate")

    def first_failure(f: Any) -> None:
        # The verdict is known now; the report (shrunk, with every cause) follows.
        _progress_done()
        span = " → ".join(dict.fromkeys(f.versions))
        print(
            f"gate: FAIL (first failing run, after {f.seconds:.1f}s; the report follows): "
            f"{f.invariant} {span}: {f.driver}: {f.failure.detail}",
            file=sys.stderr,
        )
        for line in f.explanation.lines:
            print(f"  missing: {line}", file=sys.stderr)

    def shrinking(counterexamples: int, failing: int) -> None:
        _progress_done()
        print(
            f"gate: shrinking {counterexamples} counterexample(s), one per cause, "
            f"for {failing} failing run(s)",
            file=sys.stderr,
        )

    verdict = candidate_gate(
        cc,
        baselines=baselines,
        profile=profile,
        drivers=drivers,
        invariants=invariants,
        seed=args.seed,
        fail_fast=args.fail_fast,
        workers=max(1, args.workers),
        progress=progress,
        first_failure=first_failure,
        shrinking=shrinking,
    )
    _progress_done()
    if args.record:
        path = Path(args.record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(verdict.to_json(), indent=2) + "\n", encoding="utf-8")
    if args.format == "json":
        _print_json(verdict.to_json())
    else:
        _print_candidate_verdict(verdict)
    return ExitCode.OK if verdict.passed else ExitCode.FAILED


def _print_candidate_verdict(verdict: Any) -> None:
    for problem in verdict.problems:
        print(f"problem ({problem['kind']}): {problem['message']}")
    # One block per distinct failure; the runs that share its counterexample are
    # counted, not repeated.
    blocks: dict[tuple[str, str | None, tuple[str, ...]], list[Any]] = {}
    for f in verdict.failures:
        blocks.setdefault((f.invariant, f.driver, f.explanation.lines), []).append(f)
    for same in blocks.values():
        f = same[0]
        span = " → ".join(dict.fromkeys(f.versions))
        print(f"FAIL {f.invariant} {span}: {f.driver}: {f.failure.detail}")
        for line in f.explanation.lines:
            print(f"  missing: {line}")
        print("  minimal config: " + " ".join(f.failure.options()))
        if f.shared_from is not None:
            print(f"  counterexample found and shrunk by {f.shared_from}")
        if len(same) > 1:
            spans = ", ".join(g.versions[0] for g in same[1:])
            print(f"  also fails from {spans} (same explanation)")
        registers = f.explanation.registers
        for r in registers[:8]:
            print(
                f"  {r['image']:7} {r['offset']:#04x} {r['field']}: "
                f"{r['expected']} (guests of {f.versions[0]}) vs {r['actual']} ({f.versions[-1]})"
            )
        if len(registers) > 8:
            print(f"  … {len(registers) - 8} more differing bytes (--format json lists them)")
        print(f"  reproduce: {f.reproduce}")
    fails = verdict.failures
    state = "PASS" if verdict.passed else "FAIL"
    rest = "" if verdict.complete else " (stopped at the first failure)"
    shrunk = f", {verdict.shrinks} shrunk" if fails else ""
    print(
        f"gate: {state}: candidate {verdict.candidate}, {verdict.runs} runs, "
        f"{verdict.examples} examples, {len(fails)} failing run(s){shrunk}, "
        f"{len(verdict.problems)} data problem(s) in {verdict.seconds:.1f}s{rest}"
    )


def _binary_gate(args: argparse.Namespace) -> int:
    from compatlab.gate import binary_gate, binary_tasks, save_verdict
    from compatlab.oracles.qemu import binary_for
    from compatlab.versions import version_range

    for option, given in (("--profile", args.profile), ("--baseline", args.baseline)):
        if given is not None:
            raise ConfigError(f"{option} is the candidate gate's; the binary gate takes --examples")
    if args.invariant:
        raise ConfigError(
            "--invariant is the candidate gate's; the binary gate runs binaries-agree"
        )
    baseline = binary_for(args.baseline_binary)
    candidate = binary_for(args.candidate_binary)
    if candidate.version < baseline.version:
        raise ConfigError(
            f"the candidate ({candidate.describe()}) is older than the baseline "
            f"({baseline.describe()}): the gate checks upgrades"
        )
    common = [m for m in baseline.machines if m in candidate.machines]
    machines = [m for m in version_range(args.machines) if m in common] if args.machines else common
    if not machines:
        raise ConfigError(
            f"{baseline.describe()} and {candidate.describe()} share no machine type there"
        )
    drivers = None
    if args.drivers is not None:
        drivers = _drivers([d.strip() for d in args.drivers.split(",") if d.strip()])
        if not drivers:
            raise ConfigError(f"--drivers {args.drivers!r} names no device type")
    print(
        f"gate: {baseline.describe()} against {candidate.describe()} on pc-i440fx-"
        f"{machines[0]}..{machines[-1]}: every device type alone, then {args.examples} "
        "generated configs of each",
        file=sys.stderr,
    )
    started = time.perf_counter()
    tty = sys.stderr.isatty()

    def progress(outcome: Any, done: int, total: int) -> None:
        msg = (
            f"gate: {done}/{total} device types ({outcome.task.device}: {outcome.status}), "
            f"{time.perf_counter() - started:.0f}s"
        )
        if tty:
            _progress(msg)
        else:
            print(msg, file=sys.stderr)

    tasks = binary_tasks(
        baseline,
        candidate,
        machines,
        examples=args.examples,
        drivers=drivers,
        seed=args.seed,
        machines_spec=args.machines,
    )
    verdict = binary_gate(
        baseline, candidate, tasks, workers=max(1, args.workers), progress=progress
    )
    _progress_done()
    if args.record:
        save_verdict(verdict, Path(args.record))
    if args.format == "json":
        _print_json(verdict.to_json())
    else:
        _print_binary_verdict(verdict)
    if verdict.errors:
        return ExitCode.INTERNAL_ERROR
    return ExitCode.OK if verdict.passed else ExitCode.FAILED


def _print_binary_verdict(verdict: Any) -> None:
    for note in verdict.newly_accepted:
        print(
            f"note: {note['driver']} on pc-i440fx-{note['machine']}: {note['what']} "
            "(no guest to keep; not a failure)"
        )
    for diff in verdict.differences:
        print(f"FAIL {diff['driver']} on pc-i440fx-{diff['machine']}: {diff['what']}")
        print("  minimal config: " + " ".join(f"-device {d}" for d in diff["config"]))
        print(f"  reproduce: {diff['reproduce']}")
    for error in verdict.errors:
        print(f"ERROR {error['driver']}: no verdict ({error['status']}): {error['what']}")
    state = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}[verdict.verdict]
    print(
        f"gate: {state} ({verdict.examples} configs, {len(verdict.differences)} device type(s) "
        f"differ, {len(verdict.errors)} without a verdict)"
    )
