"""Argument parsing, dispatch and the error → exit code contract (DESIGN.md §5).

Exit codes: 0 all good; 1 an invariant or gate failed; 2 bad usage or bad input
(one line on stderr, ``compatlab: error: …``); 3 internal error.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence

from compatlab.errors import CompatlabError, ExitCode, OracleError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


class _UsageError(Exception):
    pass


# -- option values checked as they are parsed (before any work starts) ----------------


def _count(minimum: int, fix: str) -> Callable[[str], int]:
    """A whole number of at least ``minimum`` (``fix`` says what to give instead)."""

    def count(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"{n}: {fix}")
        return n

    return count


def _name(what: str) -> Callable[[str], str]:
    """A name that is not empty."""

    def name(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{text!r} names no {what}")
        return text

    return name


def _names(what: str) -> Callable[[str], str]:
    """A comma-separated list that names at least one thing."""

    def names(text: str) -> str:
        if not any(part.strip() for part in text.split(",")):
            raise argparse.ArgumentTypeError(f"{text!r} names no {what}")
        return text

    return names


def _span(text: str) -> str:
    """Versions as ``A..B`` (either end may be left out) or ``A,B,C``: not empty, and
    a range not reversed. Whether the versions exist is the command's to say."""
    from compatlab.errors import UnknownVersionError
    from compatlab.versions import Version

    if ".." in text:
        low, _, high = (part.strip() for part in text.partition(".."))
        try:
            reversed_ = bool(low and high) and Version.parse(high) < Version.parse(low)
        except UnknownVersionError:
            return text
        if reversed_:
            raise argparse.ArgumentTypeError(
                f"{text} is a reversed range (selects no version): did you mean {high}..{low}?"
            )
    elif not any(part.strip() for part in text.split(",")):
        raise argparse.ArgumentTypeError(f"{text!r} names no version")
    return text


_WORKERS = _count(1, "give 1 or more worker processes (1 runs the tasks in this process)")
_DEVICE = _name("device type")

# --config and --device: each may be given at most as often as a config holds
# devices (compatlab.config.MAX_DEVICES). argparse looks through every remaining
# option each time it takes one, so N options cost it N² steps; the bound keeps a
# hostile command line linear in its length, counted twice over: in one pass over
# the command line before argparse for the spelled-out options (_count_devices), and
# by the action for any spelling (--dev), which stops argparse at the 241st.
_DEVICE_OPTIONS = ("--config", "--device")
_CONFIG_COMMANDS = ("realize", "hints", "qemu")  # those with _add_config_args


def _too_many() -> str:
    from compatlab.config import FIRST_SLOT, FUNCTIONS, LAST_SLOT, MAX_DEVICES

    return (
        f"given more than {MAX_DEVICES} times; a config holds at most {MAX_DEVICES} devices "
        f"(slots {FIRST_SLOT:02x}..{LAST_SLOT:02x} of bus 0, {FUNCTIONS} functions each)"
    )


def _count_devices(args: Sequence[str]) -> None:
    from compatlab.config import MAX_DEVICES

    for option in _DEVICE_OPTIONS:
        given = sum(1 for a in args if a == option or a.startswith(f"{option}="))
        if given > MAX_DEVICES:
            raise _UsageError(f"argument {option}: {_too_many()}")


class _AppendDevices(argparse.Action):
    """``append`` for at most MAX_DEVICES values (see _DEVICE_OPTIONS), in place
    (``append`` copies the list each time)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from compatlab.config import MAX_DEVICES

        items = getattr(namespace, self.dest, None)
        if items is None or items is self.default:
            items = []
            setattr(namespace, self.dest, items)
        if len(items) == MAX_DEVICES:
            raise argparse.ArgumentError(self, _too_many())
        items.append(values)


def _vcpus(text: str) -> int:
    """A vCPU count (1..255), as ``-smp`` takes it."""
    from compatlab.config import parse_vcpus
    from compatlab.errors import ConfigError

    try:
        return parse_vcpus(text, "vcpus")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("vcpus: ")) from None


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--vcpus",
        "-smp",
        type=_vcpus,
        metavar="N",
        help="the machine's vCPU count, 1..255 (default: the config file's, else the "
        "hints', else 1); auto queue counts follow it",
    )
    p.add_argument(
        "--config",
        action=_AppendDevices,
        default=[],
        metavar="FILE",
        help="JSON or TOML config file (repeatable)",
    )
    p.add_argument(
        "--device",
        action=_AppendDevices,
        default=[],
        metavar="SPEC",
        help="a QEMU -device string, e.g. e1000,id=nic0,addr=04.0 (repeatable)",
    )


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with ``only`` one subcommand's options (all a run
    of that subcommand parses: building every subcommand's costs a quick command
    a good part of its start)."""
    parser = _Parser(
        prog="compatlab",
        description="Check that guests see the same PCI hardware across emulator versions.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    if only in (None, "realize"):
        p = sub.add_parser(
            "realize", help="resolve a config on a version and show its config space"
        )
        p.add_argument("--version", help="emulator version (default: the newest)")
        p.add_argument("--hints", metavar="FILE", help="compat hints dumped by an older version")
        _add_config_args(p)
        p.add_argument("--format", choices=("text", "json"), default="text")

    if only in (None, "check"):
        p = sub.add_parser(
            "check",
            help="run the invariant suite across the version matrix",
            description="Run the invariant suite across the version matrix. The known findings "
            "and recorded QEMU captures come with the package ($COMPATLAB_CORPORA names another "
            "data folder); the run and any new failure are written under the working directory "
            "unless --out and --failures-dir (or their environment variables) say elsewhere.",
        )
        p.add_argument(
            "--profile",
            type=_name("profile"),
            help="Hypothesis profile: dev, ci, nightly, gate, fuzz "
            "(default: $HYPOTHESIS_PROFILE, else dev)",
        )
        p.add_argument(
            "--versions",
            type=_span,
            metavar="A..B",
            help="versions to cover (A..B or A,B,C; default all)",
        )
        p.add_argument(
            "--invariant",
            action="append",
            default=[],
            type=_name("invariant"),
            metavar="NAME",
            help="run only this invariant (repeatable)",
        )
        p.add_argument(
            "--device",
            action="append",
            default=[],
            type=_DEVICE,
            metavar="DRIVER",
            help="one record per device type instead of mixed configs (repeatable)",
        )
        p.add_argument(
            "-n",
            "--workers",
            type=_WORKERS,
            default=1,
            metavar="N",
            help="worker processes (1: run here; at most 2 per usable CPU)",
        )
        p.add_argument("--seed", type=int, help="base seed (default: random; printed)")
        p.add_argument(
            "--out",
            metavar="DIR",
            help="where runs are kept, one folder per run "
            "(default: $COMPATLAB_RUNS_DIR, else ./reports/runs)",
        )
        p.add_argument(
            "--failures-dir",
            metavar="DIR",
            help="the failure corpus: new failures are saved and old ones replayed here "
            "(default: $COMPATLAB_FAILURES_DIR, else ./corpora/failures)",
        )
        p.add_argument(
            "--no-replay", action="store_true", help="do not replay the failure corpus first"
        )
        p.add_argument("--strict", action="store_true", help="known findings fail the run too")
        p.add_argument(
            "--no-report",
            action="store_true",
            help="do not write report.html, summary.md, junit.xml",
        )

    if only in (None, "report"):
        p = sub.add_parser("report", help="write HTML, Markdown, JUnit and CSV reports of runs")
        p.add_argument(
            "run_dirs",
            nargs="*",
            metavar="RUN_DIR",
            help="run folders (default: the latest under $COMPATLAB_RUNS_DIR, else ./reports/runs)",
        )
        p.add_argument(
            "--history",
            type=_name("folder"),
            metavar="DIR",
            help="compare the runs in DIR over time (history.html)",
        )
        p.add_argument(
            "--out",
            type=_name("folder"),
            metavar="DIR",
            help="write here instead of into each run folder",
        )

    if only in (None, "gate"):
        p = sub.add_parser(
            "gate",
            help="release gate: a candidate release as data, or two real QEMU binaries",
            description="Either --candidate FILE (a candidate release as data, checked from "
            "every older version) or --baseline-binary A --candidate-binary B (two real QEMU "
            "binaries on the machine types both offer). Exit 0 safe, 1 not safe, 2 bad input, "
            "3 no verdict (an emulator that crashed, hung or spoke garbage).",
        )
        p.add_argument(
            "--candidate", metavar="FILE", help="candidate release (docs/candidate-format.md)"
        )
        p.add_argument(
            "--release",
            metavar="VERSION",
            help="gate a release of the built-in catalogue as a candidate on the one before it",
        )
        p.add_argument(
            "--baseline",
            type=_span,
            metavar="VERSIONS",
            help="older versions to upgrade from: A..B or A,B,C (default: every one)",
        )
        p.add_argument(
            "--drivers",
            type=_names("device type"),
            metavar="D1,D2",
            help="device types to check (default: the ones the candidate touches; for two "
            "binaries, every type both have)",
        )
        p.add_argument(
            "--invariant",
            metavar="NAME",
            action="append",
            default=[],
            type=_name("invariant"),
            help="run only this gate invariant (repeatable; default: all the gate runs)",
        )
        p.add_argument("--fail-fast", action="store_true", help="stop at the first failure")
        p.add_argument(
            "-n",
            "--workers",
            type=_WORKERS,
            default=1,
            metavar="N",
            help="processes to run tasks in",
        )
        p.add_argument(
            "--profile",
            type=_name("profile"),
            help="Hypothesis profile for --candidate (default: gate)",
        )
        p.add_argument("--seed", type=int, default=0, help="base seed of the gate's search")
        p.add_argument("--format", choices=("text", "json"), default="text")
        p.add_argument(
            "--baseline-binary",
            metavar="VERSION|PATH",
            help="a QEMU release compatlab finds (e.g. 7.2) or a path to a binary",
        )
        p.add_argument(
            "--candidate-binary",
            metavar="VERSION|PATH",
            help="the same, for the new build (it may be a release the catalogue does not know)",
        )
        p.add_argument(
            "--machines", type=_span, metavar="A..B", help="machine types (default: all both offer)"
        )
        p.add_argument(
            "--examples",
            type=_count(0, "give 0 or more generated configs"),
            default=2,
            metavar="N",
            help="generated configs per device type, after each type alone (binary gate)",
        )
        p.add_argument("--record", metavar="FILE", help="write the verdict as JSON")

    if only in (None, "hints"):
        h = sub.add_parser("hints", help="dump and inspect compat hints")
        hsub = h.add_subparsers(dest="hints_command", required=True, parser_class=_Parser)
        p = hsub.add_parser("dump", help="write the hints a version dumps for a config")
        p.add_argument("--version", required=True, help="the emulator version that dumps")
        _add_config_args(p)
        p.add_argument("-o", "--output", required=True, metavar="FILE")
        p = hsub.add_parser("show", help="decode a hints file")
        p.add_argument("file")
        p.add_argument("--format", choices=("text", "json"), default="text")

    if only in (None, "versions"):
        p = sub.add_parser("versions", help="list the emulator versions in the catalogue")
        p.add_argument("--format", choices=("text", "json"), default="text")

    if only in (None, "devices"):
        p = sub.add_parser("devices", help="list device types and their properties")
        p.add_argument("--version", help="emulator version (default: the newest)")
        p.add_argument("driver", nargs="?", type=_DEVICE, help="show one device's properties")
        p.add_argument("--format", choices=("text", "json"), default="text")

    if only in (None, "qemu"):
        q = sub.add_parser("qemu", help="work with real QEMU binaries (the oracle)")
        qsub = q.add_subparsers(dest="qemu_command", required=True, parser_class=_Parser)

        p = qsub.add_parser("binaries", help="list the QEMU binaries found")

        p = qsub.add_parser("capture", help="record what real QEMU does into a corpus file")
        p.add_argument(
            "--binary",
            required=True,
            metavar="VERSION",
            help="QEMU release (5.2, 7.2, 10.0, 11.1) or a path to a binary",
        )
        p.add_argument(
            "--machine",
            action="append",
            default=[],
            metavar="VERSION",
            help="machine type version (repeatable; default: every one the binary has)",
        )
        p.add_argument(
            "--sweep",
            action="append",
            default=[],
            type=_DEVICE,
            metavar="DRIVER",
            help="capture the standard sweep of this device (repeatable; 'all' for every device)",
        )
        _add_config_args(p)
        p.add_argument(
            "--probe",
            action="store_true",
            help="also probe guest writes (all-ones, zeros) to every dword: checks wmask and BAR sizes",
        )
        p.add_argument(
            "-o", "--output", required=True, metavar="FILE", help="JSON-lines file to append to"
        )

        p = qsub.add_parser("verify", help="check the model against recorded captures")
        p.add_argument(
            "paths", nargs="*", help="corpus files or folders (default: the built-in captures)"
        )
        p.add_argument(
            "--show",
            type=_count(0, "give 0 or more"),
            default=10,
            metavar="N",
            help="show at most N disagreements",
        )
        p.add_argument(
            "--via-hints",
            action="store_true",
            help="play each machine type by hints dumped on its version (the upgrade path)",
        )

        p = qsub.add_parser(
            "discover", help="find which properties of a device change config space"
        )
        p.add_argument("driver", type=_DEVICE)
        p.add_argument(
            "--base",
            metavar="SPEC",
            help="the device string to start from, with what QEMU insists on (e.g. nvme,serial=x)",
        )
        p.add_argument(
            "--binary", default=None, metavar="VERSION", help="QEMU release (default: newest)"
        )
        p.add_argument(
            "--machine",
            default=None,
            metavar="VERSION",
            help="machine type (default: the binary's own)",
        )
        p.add_argument("--format", choices=("text", "json"), default="text")

        p = qsub.add_parser(
            "learn",
            help="write what a binary's release changed against the catalogue as a candidate file",
        )
        p.add_argument("binary", type=_name("binary"), help="a release (e.g. 10.0) or a path")
        p.add_argument(
            "--base",
            metavar="VERSION",
            help="learn against the catalogue as of VERSION (default: its newest version "
            "before the binary's release)",
        )
        p.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    return parser


_COMMANDS = ("realize", "check", "report", "gate", "hints", "versions", "devices", "qemu")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else list(argv)
    command = args_list[0] if args_list and args_list[0] in _COMMANDS else None
    parser = build_parser(command)
    try:
        if command in _CONFIG_COMMANDS:
            _count_devices(args_list)
        args = parser.parse_args(args_list)
        from compatlab.cli import commands

        handler = getattr(commands, "cmd_" + args.command)
        return int(handler(args))
    except _UsageError as exc:
        print(f"compatlab: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE_ERROR
    except CompatlabError as exc:
        kind = "error" if exc.exit_code == ExitCode.USAGE_ERROR else "internal error"
        if isinstance(exc, OracleError):
            kind = "oracle error"
        print(f"compatlab: {kind}: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        # As shells expect of a process that SIGINT stopped (128 + the signal).
        print("compatlab: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except BrokenPipeError:
        return ExitCode.OK
    except Exception as exc:  # the contract: never a traceback, exit 3
        if os.environ.get("COMPATLAB_DEBUG"):
            raise
        print(
            f"compatlab: internal error: {type(exc).__name__}: {exc} "
            "(set COMPATLAB_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return ExitCode.INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
