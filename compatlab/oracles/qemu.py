"""Real QEMU as the oracle (DESIGN.md §2).

A batch of devices is started in one paused QEMU (``-S``, TCG, ``-nodefaults``) on
a versioned i440fx machine type, and each device's 256 bytes are read through the
legacy configuration mechanism: write ``0x80000000 | slot << 11 | fn << 8 | offset``
to port 0xCF8, read the dword at 0xCFC. The machine's own CPU does that port I/O:
the firmware is a guest program of the oracle's (:mod:`compatlab.oracles.guest`),
which the machine runs from reset once the oracle lets it go (``cont``); it stops
the machine when done, and its results are read back from guest RAM in one
``pmemsave``, over QMP (qemu.qmp). No other firmware runs, so what the program reads
is the reset state.

If QEMU refuses the configuration it prints one error line and exits with status
1 before its monitor answers; that line is returned instead of bytes. Anything
else is a :class:`QemuFault` (an oracle error, never a refusal): death by a
signal, any other exit, an exit without an error line, a monitor that does not
open or stops answering within the timeout, a guest program that does not finish
within it, a reply that is not what the command returns, more than 16 MiB on
standard error. A process that dies is noticed at once (its exit is awaited beside
every monitor call), and every process a start made, grandchildren included, is
killed afterwards: QEMU leads a process group of its own.

Binaries are found from ``COMPATLAB_QEMU`` (``os.pathsep``-separated paths to
``qemu-system-x86_64``), else ``qemu-system-x86_64`` on ``PATH`` and the releases
``.ci/install-qemu`` unpacks into ``/opt/compatlab/qemu-5.2``, ``qemu-10.0`` and
``qemu-11.1`` (with 7.2 on ``PATH``, the four of DESIGN.md §2). A binary
under ``…/usr/bin/`` whose tree has ``usr/lib/x86_64-linux-gnu/qemu`` gets that as
``QEMU_MODULE_DIR``; a tree that holds its own dynamic loader (a release built for
another Debian suite, with its library closure) is run through that loader with
its own libraries, and ``-L`` for its own firmware (device option ROMs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from compatlab.errors import OracleError, QemuNotFoundError, UnknownVersionError
from compatlab.oracles.guest import RESULTS, Layout, program
from compatlab.versions import Version

_T = TypeVar("_T")

# A refused config makes QEMU exit during the QMP handshake; that is an answer, not
# an error worth logging.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)


# Where .ci/install-qemu unpacks the releases that are not the system's.
DEFAULT_TREES = (
    Path("/opt/compatlab/qemu-5.2"),
    Path("/opt/compatlab/qemu-10.0"),
    Path("/opt/compatlab/qemu-11.1"),
)
START_TIMEOUT = 30.0
# How long a QEMU whose monitor connection ended may take to exit before it counts
# as hung (a refusing QEMU exits at once).
EXIT_GRACE = 2.0
STDERR_KEEP = 64 * 1024
STDERR_FLOOD = 16 * 2**20

_VERSION_RE = re.compile(r"QEMU emulator version (\d+)\.(\d+)\.(\d+)")
_I440FX_RE = re.compile(r"^pc-i440fx-(\d+)\.(\d+)\s", re.MULTILINE)
_ERROR_PREFIX_RE = re.compile(r"^[^:\s]*qemu-system-[\w-]+: ")


@dataclass(frozen=True, slots=True)
class QemuBinary:
    """One installed QEMU: where it is, its release and the i440fx machine types it offers."""

    path: Path
    release: str
    version: Version
    machines: tuple[Version, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    launcher: tuple[str, ...] = ()
    data_dirs: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"QEMU {self.release} ({self.path})"

    def command(self, args: Sequence[str]) -> list[str]:
        """``args`` (binary first) as run: through the launcher, if it has one."""
        return [*self.launcher, *args]


class QemuFault(OracleError):
    """A QEMU that crashed, hung, flooded its output or spoke garbage: an oracle
    error, never a refusal. Keeps the binary, what happened and the end of its
    standard error."""

    def __init__(self, binary: QemuBinary, what: str, stderr: str = "") -> None:
        self.binary = binary
        self.what = what
        self.stderr = stderr
        last = _last_line(stderr)
        super().__init__(
            f"{binary.describe()} {what}" + (f"; its last words: {last}" if last else "")
        )


def _tree_of(path: Path) -> Path | None:
    """The folder an unpacked package tree ``…/usr/bin/qemu-system-x86_64`` lives in."""
    if path.parent.name == "bin" and path.parent.parent.name == "usr":
        return path.parent.parent.parent
    return None


def _tree_setup(path: Path) -> tuple[dict[str, str], tuple[str, ...], tuple[str, ...]]:
    """The environment, launcher and ``-L`` folders a binary in an unpacked tree
    needs: its own modules; and, for a tree holding its own C library (a release
    built for another Debian suite), its own dynamic loader and libraries, and its
    own firmware."""
    tree = _tree_of(path)
    if tree is None or tree == Path("/"):
        return {}, (), ()
    env: dict[str, str] = {}
    modules = tree / "usr" / "lib" / "x86_64-linux-gnu" / "qemu"
    if modules.is_dir():
        env["QEMU_MODULE_DIR"] = str(modules)
    for loader in (
        tree / "lib64" / "ld-linux-x86-64.so.2",
        tree / "usr" / "lib" / "x86_64-linux-gnu" / "ld-linux-x86-64.so.2",
        tree / "lib" / "x86_64-linux-gnu" / "ld-linux-x86-64.so.2",
    ):
        if loader.exists():
            break
    else:
        return env, (), ()
    libs = [tree / "lib" / "x86_64-linux-gnu", tree / "usr" / "lib" / "x86_64-linux-gnu"]
    launcher = (str(loader), "--library-path", ":".join(str(d) for d in libs if d.is_dir()))
    data = [tree / "usr" / "share" / "qemu", tree / "usr" / "lib" / "ipxe" / "qemu"]
    return env, launcher, tuple(str(d) for d in data if d.is_dir())


def _output(cmd: Sequence[str], env: Mapping[str, str], timeout: float = 20) -> str:
    """The standard output of a short command, its whole process group killed after."""
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=dict(env),
        start_new_session=True,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        return out[: 1 << 20]
    finally:
        _kill_group(proc.pid)
        proc.kill()
        proc.wait()


def probe_binary(path: str | Path) -> QemuBinary:
    """Ask a binary for its version and i440fx machine types."""
    p = Path(path)
    env, launcher, data_dirs = _tree_setup(p)
    if str(p).startswith("/usr/bin"):
        env = {}
    full_env = {**os.environ, **env}
    try:
        out = _output([*launcher, str(p), "--version"], full_env)
        machines = _output([*launcher, str(p), "-machine", "help"], full_env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OracleError(f"cannot run {p}: {exc}") from None
    match = _VERSION_RE.search(out)
    if match is None:
        raise OracleError(f"{p} does not look like qemu-system-x86_64: {out.strip()[:80]!r}")
    release = ".".join(match.groups())
    types = sorted({Version(int(a), int(b)) for a, b in _I440FX_RE.findall(machines)})
    return QemuBinary(
        p,
        release,
        Version(int(match.group(1)), int(match.group(2))),
        tuple(types),
        env,
        launcher,
        data_dirs,
    )


def _candidate_paths() -> list[Path]:
    configured = os.environ.get("COMPATLAB_QEMU")
    if configured:
        return [Path(p) for p in configured.split(os.pathsep) if p]
    found = []
    on_path = shutil.which("qemu-system-x86_64")
    if on_path:
        found.append(Path(on_path))
    for tree in DEFAULT_TREES:
        binary = tree / "usr" / "bin" / "qemu-system-x86_64"
        if binary.exists():
            found.append(binary)
    return found


@cache
def available_binaries() -> tuple[QemuBinary, ...]:
    """Every QEMU binary compatlab can find, oldest first."""
    binaries = [probe_binary(p) for p in _candidate_paths() if Path(p).exists()]
    return tuple(sorted(binaries, key=lambda b: b.version))


def answering_binary(
    machine: Version, binaries: Sequence[QemuBinary] | None = None
) -> QemuBinary | None:
    """The binary that answers for the model on machine type ``machine`` (DESIGN.md
    §2): the release of ``machine`` itself, else the oldest later one, among the
    releases the catalogue covers (a newer release offering old machine types
    cannot be modelled); None if no binary found (or of ``binaries``) does."""
    from compatlab.versions import active_versions

    known = active_versions()
    found = available_binaries() if binaries is None else binaries
    return next((b for b in found if machine in b.machines and b.version in known), None)


def binary_for(version: Version | str) -> QemuBinary:
    """The installed binary of release ``version`` (e.g. ``7.2``), or the binary at
    a path (anything with a ``/`` in it), which need not be one discovery finds."""
    if isinstance(version, str) and os.sep in version:
        return _binary_at(os.path.abspath(version))
    try:
        v = version if isinstance(version, Version) else Version.parse(version)
    except UnknownVersionError:
        raise QemuNotFoundError(
            f"{version!r} is neither a QEMU release (e.g. 10.0) nor a path to a binary"
        ) from None
    for b in available_binaries():
        if b.version == v:
            return b
    have = ", ".join(str(b.version) for b in available_binaries()) or "none"
    raise QemuNotFoundError(
        f"no QEMU {v} binary found (found: {have}); run .ci/install-qemu or set COMPATLAB_QEMU"
    )


@cache
def _binary_at(path: str) -> QemuBinary:
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise QemuNotFoundError(f"{path}: not an executable file")
    return probe_binary(path)


def binary_ref(binary: QemuBinary) -> str:
    """How tasks and reproduce commands name ``binary``: its release when discovery
    finds this very binary for it (portable across machines), else its path."""
    try:
        if binary_for(str(binary.version)).path == binary.path:
            return str(binary.version)
    except QemuNotFoundError:
        pass
    return str(binary.path)


@dataclass(frozen=True, slots=True)
class Slot:
    slot: int
    function: int = 0


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Either every device's 256 bytes, in the order asked, or QEMU's refusal.

    With a write probe, ``probes`` holds per device the bytes read back after the
    guest wrote all-ones, and after it wrote zeros, to each dword in turn (see
    :func:`~compatlab.oracles.guest.probe_sequence`).
    """

    spaces: tuple[bytes, ...] | None
    error: str | None
    probes: tuple[tuple[bytes, bytes], ...] | None = None

    @property
    def refused(self) -> bool:
        return self.error is not None


# Link properties name host-side backends that a device needs but that are not
# guest hardware; the oracle makes an inert one for every name it sees.
_BACKENDS: dict[str, tuple[str, str]] = {
    "drive": ("-blockdev", "driver=null-co,node-name={name},read-zeroes=on"),
    "netdev": ("-netdev", "hubport,id={name},hubid=0"),
    "chardev": ("-chardev", "null,id={name}"),
    "iothread": ("-object", "iothread,id={name}"),
    "rng": ("-object", "rng-builtin,id={name}"),
    "memdev": ("-object", "memory-backend-ram,id={name},size=1M"),
}


def backend_args(device_strings: Iterable[str]) -> list[str]:
    """QEMU arguments creating an inert backend for each link property used."""
    args: list[str] = []
    seen: set[tuple[str, str]] = set()
    for text in device_strings:
        for part in text.replace(",,", "\0").split(","):
            name, eq, value = part.partition("=")
            if eq and name in _BACKENDS and value and (name, value) not in seen:
                seen.add((name, value))
                option, spec = _BACKENDS[name]
                args += [option, spec.format(name=value.replace("\0", ",,"))]
    return args


def qemu_command(
    binary: QemuBinary,
    machine: Version,
    device_strings: Sequence[str],
    qmp_socket: str,
    firmware: str,
    vcpus: int = 1,
) -> list[str]:
    """The arguments of one start, binary first: ``firmware`` is the guest program's
    image; the reset it requests when done stops the machine (``-no-reboot``
    makes it a shutdown, ``-no-shutdown`` a pause), RAM and all kept for reading.
    ``-smp`` gives the machine ``vcpus`` CPUs: the guest program runs on the first,
    the others wait for a start-up IPI that never comes; device defaults that follow
    the vCPU count (virtio-blk's and virtio-scsi's queues) see them all."""
    cmd = [
        str(binary.path),
        "-machine",
        f"pc-i440fx-{machine}",
        "-accel",
        "tcg",
        "-smp",
        str(vcpus),
        "-nodefaults",
        "-S",
        "-bios",
        firmware,
        "-no-reboot",
        "-no-shutdown",
        "-display",
        "none",
        "-m",
        "64",
        *(arg for d in binary.data_dirs for arg in ("-L", d)),
        "-qmp",
        f"unix:{qmp_socket}",
        *backend_args(device_strings),
    ]
    for text in device_strings:
        cmd += ["-device", text]
    return cmd


def _error_lines(stderr: str) -> list[str]:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return [_ERROR_PREFIX_RE.sub("", ln) for ln in lines if "warning:" not in ln]


def _exit_text(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"


def _seconds(t: float) -> str:
    return f"{t:.0f}s" if t >= 1 else f"{t:g}s"


def _last_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        return ""
    return lines[-1] if len(lines[-1]) <= 200 else lines[-1][:200] + "…"


def _limit_output(pid: int) -> None:
    """A file (QEMU's standard error) cannot grow past :data:`STDERR_FLOOD`: a QEMU
    that writes more dies by SIGXFSZ. Set on the child just after it starts, not in
    it before ``exec``: a ``preexec_fn`` would make every start a full ``fork`` of
    this process instead of a ``vfork`` (some 3 ms of CPU time); a QEMU spends
    milliseconds loading its libraries before it can write anything."""
    import resource

    with contextlib.suppress(ProcessLookupError):
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (STDERR_FLOOD, STDERR_FLOOD))


def _exit_of(proc: subprocess.Popen[bytes]) -> asyncio.Future[int]:
    """A future of ``proc``'s exit status (negative: the signal that killed it),
    set by the event loop when the process's pidfd becomes readable; no waiter
    thread per start, as asyncio's own child watcher makes (a thread only where
    pidfds are not to be had)."""
    loop = asyncio.get_running_loop()
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return asyncio.ensure_future(asyncio.to_thread(proc.wait))
    exited: asyncio.Future[int] = loop.create_future()

    def reap() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        if not exited.done():
            exited.set_result(proc.wait())

    def forget(_: asyncio.Future[int]) -> None:
        # Cancelled (the loop is ending): stop watching; the reader may be gone already.
        if loop.remove_reader(pidfd):
            os.close(pidfd)

    loop.add_reader(pidfd, reap)
    exited.add_done_callback(forget)
    return exited


def _tail(path: str) -> str:
    """The last :data:`STDERR_KEEP` bytes of what QEMU wrote to standard error."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - STDERR_KEEP))
        return fh.read().decode(errors="replace")


def _kill_group(pgid: int) -> None:
    """Kill every process a start made (QEMU runs as the leader of its own group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@dataclass(slots=True)
class _Started:
    """A QEMU started for one QMP session (the oracle's, introspection's): the one
    place that knows how a start is made, turned into a fault, and cleaned up."""

    binary: QemuBinary
    qmp: Any
    proc: subprocess.Popen[bytes]
    exited: asyncio.Future[int]
    errors_path: str

    @classmethod
    async def start(
        cls, binary: QemuBinary, args: Sequence[str], qmp: Any, tmp: str, env: Mapping[str, str]
    ) -> _Started:
        """Run ``args`` (binary first) as the leader of its own process group."""
        # Standard error goes to a file, not a pipe: a pipe that a grandchild keeps
        # open would hide QEMU's exit, and a full one would stall it.
        errors_path = os.path.join(tmp, "stderr")
        with open(errors_path, "wb") as errors_file:
            proc = subprocess.Popen(
                binary.command(args),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors_file,
                env=dict(env),
                start_new_session=True,
            )
        _limit_output(proc.pid)
        return cls(binary, qmp, proc, _exit_of(proc), errors_path)

    def flooded(self) -> bool:
        return (
            self.proc.returncode == -signal.SIGXFSZ
            or os.path.getsize(self.errors_path) >= STDERR_FLOOD
        )

    async def fault(self, what: str) -> QemuFault:
        """The fault ``what``, once the process group is gone."""
        with contextlib.suppress(Exception):
            await self.qmp.disconnect()  # before queued commands meet a dead socket
        _kill_group(self.proc.pid)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.exited), 10)
        if self.flooded():
            what = f"flooded its standard error (over {STDERR_FLOOD // 2**20} MiB)"
        return QemuFault(self.binary, what, _tail(self.errors_path))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.qmp.disconnect()
        _kill_group(self.proc.pid)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.exited, 10)


async def _run(
    binary: QemuBinary,
    machine: Version,
    device_strings: Sequence[str],
    slots: Sequence[Slot],
    timeout: float,
    probe: bool,
    vcpus: int,
) -> BatchResult:
    layout = Layout(len(slots), probe)
    with tempfile.TemporaryDirectory(prefix="compatlab-qmp-") as tmp:
        sock = os.path.join(tmp, "qmp.sock")
        firmware = os.path.join(tmp, "guest.bin")
        with open(firmware, "wb") as fh:
            fh.write(program([(s.slot, s.function) for s in slots], probe=probe))
        qmp = _client_class()("compatlab")
        await qmp.start_server(sock)
        started = await _Started.start(
            binary,
            qemu_command(binary, machine, device_strings, sock, firmware, vcpus),
            qmp,
            tmp,
            {**os.environ, **binary.env},
        )
        proc, exited, fault = started.proc, started.exited, started.fault
        try:
            accept = asyncio.ensure_future(qmp.accept())
            done, _ = await asyncio.wait(
                {accept, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                await _cancelled(accept)
                raise await fault(f"did not open its monitor within {_seconds(timeout)}")
            if accept not in done or accept.exception() is not None:
                # QEMU refuses a config by printing one error line and exiting with
                # status 1 before its monitor answers; anything else is a fault.
                reason = accept.exception() if accept.done() else None
                await _cancelled(accept)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(exited), EXIT_GRACE)
                errors = _error_lines(_tail(started.errors_path))
                if proc.returncode == 1 and errors and not started.flooded():
                    return BatchResult(None, errors[-1])
                if proc.returncode is None:
                    raise await fault(f"broke off the QMP handshake ({reason}) but kept running")
                raise await fault(f"{_exit_text(proc.returncode)} before its monitor answered")
            guest = _Guest(qmp, layout, os.path.join(tmp, "results"))
            try:
                spaces, probes = await _until_exit(guest.run(), timeout, exited)
            except _MonitorGarbage as exc:
                raise await fault(f"answered garbage on its monitor: {exc}") from None
            except _Unfinished:
                raise await fault(
                    "stopped before its guest program finished (no done marker in guest RAM)"
                ) from None
            except TimeoutError:
                raise await fault(
                    f"did not finish its guest program within {_seconds(timeout)}"
                    if guest.running
                    else f"stopped answering its monitor within {_seconds(timeout)}"
                ) from None
            except Exception as exc:  # the connection died under us
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(exited), EXIT_GRACE)
                raise await fault(
                    f"{_exit_text(proc.returncode)} while its config space was read"
                    if proc.returncode is not None
                    else f"lost its monitor ({type(exc).__name__}) while its config space was read"
                ) from None
            # No ``quit``: the machine has stopped, and the process group is killed
            # below anyway; a clean exit would only cost QEMU its teardown.
            return BatchResult(spaces, None, probes)
        finally:
            await started.close()


async def _cancelled(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and collect how it ended (qemu.qmp's ``accept`` can fail
    while it is cancelled; left uncollected, asyncio prints that at exit)."""
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


@cache
def _client_class() -> type[Any]:
    """qemu.qmp's client, imported when first needed."""
    from qemu.qmp import QMPClient

    class QuietClient(QMPClient):
        """A QMP client that does not format every message for a debug log nobody
        reads (the base hooks' only work; some tenth of the oracle's own CPU time)."""

        def _cb_outbound(self, msg: Any) -> Any:
            return msg

        def _cb_inbound(self, msg: Any) -> Any:
            return msg

    return QuietClient


class _MonitorGarbage(Exception):
    """A monitor reply that is not what the command returns."""


class _Unfinished(Exception):
    """The machine stopped, but the guest program left no done marker."""


class _Guest:
    """One run of the guest program: let the paused machine go, wait for it to stop
    (the program's reset request, see :mod:`compatlab.oracles.guest`), read the
    results from guest RAM."""

    def __init__(self, qmp: Any, layout: Layout, dump: str) -> None:
        self.qmp = qmp
        self.layout = layout
        self.dump = dump
        self.running = False  # between ``cont`` answered and the machine stopped

    async def run(self) -> tuple[tuple[bytes, ...], tuple[tuple[bytes, bytes], ...] | None]:
        from qemu.qmp import EventListener

        stopped = EventListener(("STOP",))
        with self.qmp.listen(stopped):
            await self._command("cont")
            self.running = True
            await stopped.get()
            self.running = False
        size = self.layout.size
        await self._command("pmemsave", val=RESULTS, size=size, filename=self.dump)
        try:
            with open(self.dump, "rb") as fh:
                results = self.layout.parse(fh.read(size + 1))
        except FileNotFoundError:
            results = None
        if results is None:
            raise _Unfinished
        spaces, images = results
        if not self.layout.probe:
            return tuple(spaces), None
        return tuple(spaces), tuple((ones, zeros) for ones, zeros in images)

    async def _command(self, name: str, **arguments: object) -> None:
        """Run a command that returns nothing (``{}``); anything else is garbage."""
        reply = await self.qmp.execute(name, arguments or None)
        if reply != {}:
            raise _MonitorGarbage(f"{str(reply)[:80]!r}")


async def _until_exit(work: Awaitable[_T], timeout: float, exited: asyncio.Future[int]) -> _T:
    """``work``'s result, raising as soon as QEMU exits (ConnectionError) or the
    timeout passes (TimeoutError)."""
    job = asyncio.ensure_future(work)
    waited: set[asyncio.Future[Any]] = {job, exited}
    done, _ = await asyncio.wait(waited, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if job in done:
        return job.result()
    job.cancel()
    with contextlib.suppress(BaseException):
        await job
    if not done:
        raise TimeoutError
    raise ConnectionError("QEMU exited")


def run_batch(
    binary: QemuBinary,
    machine: Version,
    device_strings: Sequence[str],
    slots: Sequence[Slot],
    *,
    timeout: float = START_TIMEOUT,
    probe: bool = False,
    vcpus: int = 1,
) -> BatchResult:
    """Start ``binary`` on ``pc-i440fx-<machine>`` with ``vcpus`` CPUs and the devices,
    and read ``slots``.

    ``device_strings`` must give every device an explicit ``addr`` matching ``slots``.
    With ``probe``, also run a guest write probe on every device (see
    :func:`~compatlab.oracles.guest.probe_sequence`), after every device is read.
    """
    if machine not in binary.machines:
        raise OracleError(f"{binary.describe()} has no machine type pc-i440fx-{machine}")
    return asyncio.run(_run(binary, machine, device_strings, slots, timeout, probe, vcpus))


def check_alive(binary: QemuBinary, machine: Version) -> None:
    """Start ``binary`` once with no device: a :class:`QemuFault` if it cannot run
    an empty machine (a refusal of one is a fault too)."""
    result = run_batch(binary, machine, [], [])
    if result.error is not None:
        raise QemuFault(binary, f"refuses an empty pc-i440fx-{machine}", result.error)
