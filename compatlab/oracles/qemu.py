"""Real QEMU as the oracle (DESIGN.md §2).

A batch of devices is started in one paused QEMU (``-S``, TCG, ``-nodefaults``,
no firmware has run) on a versioned i440fx machine type, and each device's 256
bytes are read through the legacy configuration mechanism: write
``0x80000000 | slot << 11 | fn << 8 | offset`` to port 0xCF8, read the dword at
0xCFC, with the human monitor's ``o /w`` and ``i /w`` over QMP (qemu.qmp).

If QEMU refuses the configuration it exits before QMP comes up; its one-line
error is returned instead of bytes. Every start has a timeout and the process is
always reaped.

Binaries are found from ``COMPATLAB_QEMU`` (``os.pathsep``-separated paths to
``qemu-system-x86_64``), else ``qemu-system-x86_64`` on ``PATH`` and the QEMU 10.0
that ``.ci/install-qemu`` unpacks into ``/opt/compatlab/qemu-10.0``. A binary
under ``…/usr/bin/`` whose tree has ``usr/lib/x86_64-linux-gnu/qemu`` gets that as
``QEMU_MODULE_DIR``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from compatlab.errors import OracleError, QemuNotFoundError
from compatlab.versions import Version

# A refused config makes QEMU exit during the QMP handshake; that is an answer, not
# an error worth logging.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)

DEFAULT_QEMU10_DIR = Path("/opt/compatlab/qemu-10.0")
START_TIMEOUT = 30.0

_VERSION_RE = re.compile(r"QEMU emulator version (\d+)\.(\d+)\.(\d+)")
_I440FX_RE = re.compile(r"^pc-i440fx-(\d+)\.(\d+)\s", re.MULTILINE)
_PORT_RE = re.compile(r"=\s*0x([0-9a-fA-F]+)")
_ERROR_PREFIX_RE = re.compile(r"^[^:\s]*qemu-system-[\w-]+: ")


@dataclass(frozen=True, slots=True)
class QemuBinary:
    """One installed QEMU: where it is, its release and the i440fx machine types it offers."""

    path: Path
    release: str
    version: Version
    machines: tuple[Version, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return f"QEMU {self.release} ({self.path})"


def _module_dir(path: Path) -> Path | None:
    if path.parent.name == "bin" and path.parent.parent.name == "usr":
        candidate = path.parent.parent / "lib" / "x86_64-linux-gnu" / "qemu"
        if candidate.is_dir():
            return candidate
    return None


def probe_binary(path: str | Path) -> QemuBinary:
    """Ask a binary for its version and i440fx machine types."""
    p = Path(path)
    env: dict[str, str] = {}
    module_dir = _module_dir(p)
    if module_dir is not None and not str(p).startswith("/usr/bin"):
        env["QEMU_MODULE_DIR"] = str(module_dir)
    full_env = {**os.environ, **env}
    try:
        out = subprocess.run(
            [str(p), "--version"], capture_output=True, text=True, timeout=20, env=full_env
        ).stdout
        machines = subprocess.run(
            [str(p), "-machine", "help"], capture_output=True, text=True, timeout=20, env=full_env
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OracleError(f"cannot run {p}: {exc}") from None
    match = _VERSION_RE.search(out)
    if match is None:
        raise OracleError(f"{p} does not look like qemu-system-x86_64: {out.strip()[:80]!r}")
    release = ".".join(match.groups())
    types = sorted({Version(int(a), int(b)) for a, b in _I440FX_RE.findall(machines)})
    return QemuBinary(
        p, release, Version(int(match.group(1)), int(match.group(2))), tuple(types), env
    )


def _candidate_paths() -> list[Path]:
    configured = os.environ.get("COMPATLAB_QEMU")
    if configured:
        return [Path(p) for p in configured.split(os.pathsep) if p]
    found = []
    on_path = shutil.which("qemu-system-x86_64")
    if on_path:
        found.append(Path(on_path))
    q10 = DEFAULT_QEMU10_DIR / "usr" / "bin" / "qemu-system-x86_64"
    if q10.exists():
        found.append(q10)
    return found


@cache
def available_binaries() -> tuple[QemuBinary, ...]:
    """Every QEMU binary compatlab can find, oldest first."""
    binaries = [probe_binary(p) for p in _candidate_paths() if Path(p).exists()]
    return tuple(sorted(binaries, key=lambda b: b.version))


def binary_for(version: Version | str) -> QemuBinary:
    """The installed binary of release ``version`` (e.g. ``7.2``)."""
    v = version if isinstance(version, Version) else Version.parse(version)
    for b in available_binaries():
        if b.version == v:
            return b
    have = ", ".join(str(b.version) for b in available_binaries()) or "none"
    raise QemuNotFoundError(
        f"no QEMU {v} binary found (found: {have}); run .ci/install-qemu or set COMPATLAB_QEMU"
    )


@dataclass(frozen=True, slots=True)
class Slot:
    slot: int
    function: int = 0


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Either every device's 256 bytes, in the order asked, or QEMU's refusal.

    With a write probe, ``probes`` holds per device the bytes read back after the
    guest wrote all-ones, and after it wrote zeros, to each dword in turn (see
    :func:`probe_sequence`).
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
    binary: QemuBinary, machine: Version, device_strings: Sequence[str], qmp_socket: str
) -> list[str]:
    cmd = [
        str(binary.path),
        "-machine",
        f"pc-i440fx-{machine}",
        "-accel",
        "tcg",
        "-nodefaults",
        "-S",
        "-display",
        "none",
        "-m",
        "64",
        "-qmp",
        f"unix:{qmp_socket}",
        *backend_args(device_strings),
    ]
    for text in device_strings:
        cmd += ["-device", text]
    return cmd


def _clean_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "warning:" not in ln]
    line = errors[-1] if errors else (lines[-1] if lines else "QEMU exited without a message")
    return _ERROR_PREFIX_RE.sub("", line)


async def _read_spaces(qmp: object, slots: Sequence[Slot]) -> tuple[bytes, ...]:
    execute = qmp.execute  # type: ignore[attr-defined]
    spaces = []
    for s in slots:
        commands = []
        for offset in range(0, 256, 4):
            address = 0x80000000 | (s.slot << 11) | (s.function << 8) | offset
            commands.append(
                execute("human-monitor-command", {"command-line": f"o /w 0xcf8 {address:#x}"})
            )
            commands.append(execute("human-monitor-command", {"command-line": "i /w 0xcfc"}))
        replies = await asyncio.gather(*commands)
        raw = bytearray()
        for reply in replies[1::2]:
            match = _PORT_RE.search(str(reply))
            if match is None:
                raise OracleError(f"unexpected monitor reply {reply!r}")
            raw += int(match.group(1), 16).to_bytes(4, "little")
        spaces.append(bytes(raw))
    return tuple(spaces)


def probe_sequence(offset: int, original: int) -> list[tuple[int | None, bool]]:
    """The guest accesses of a write probe of one dword: (value written or None, read?).

    Write all-ones and read back, write zeros and read back, write the original
    value again. What reads back shows ``wmask`` (and BAR sizes) without touching
    anything else; the last write leaves the register as it was.
    """
    return [(0xFFFFFFFF, True), (0, True), (original, False)]


async def _probe_writes(qmp: object, s: Slot, original: bytes) -> tuple[bytes, bytes]:
    execute = qmp.execute  # type: ignore[attr-defined]
    calls = []
    reads = []
    for offset in range(0, 256, 4):
        address = 0x80000000 | (s.slot << 11) | (s.function << 8) | offset
        value = int.from_bytes(original[offset : offset + 4], "little")
        calls.append(f"o /w 0xcf8 {address:#x}")
        for written, read in probe_sequence(offset, value):
            if written is not None:
                calls.append(f"o /w 0xcfc {written:#x}")
            if read:
                reads.append(len(calls))
                calls.append("i /w 0xcfc")
    replies = await asyncio.gather(
        *(execute("human-monitor-command", {"command-line": c}) for c in calls)
    )
    values = []
    for index in reads:
        match = _PORT_RE.search(str(replies[index]))
        if match is None:
            raise OracleError(f"unexpected monitor reply {replies[index]!r}")
        values.append(int(match.group(1), 16))
    ones = b"".join(v.to_bytes(4, "little") for v in values[0::2])
    zeros = b"".join(v.to_bytes(4, "little") for v in values[1::2])
    return ones, zeros


async def _run(
    binary: QemuBinary,
    machine: Version,
    device_strings: Sequence[str],
    slots: Sequence[Slot],
    timeout: float,
    probe: bool,
) -> BatchResult:
    from qemu.qmp import QMPClient

    probes: tuple[tuple[bytes, bytes], ...] | None = None

    with tempfile.TemporaryDirectory(prefix="compatlab-qmp-") as tmp:
        sock = os.path.join(tmp, "qmp.sock")
        qmp = QMPClient("compatlab")
        await qmp.start_server(sock)
        proc = await asyncio.create_subprocess_exec(
            *qemu_command(binary, machine, device_strings, sock),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **binary.env},
            start_new_session=True,
        )
        try:
            try:
                await asyncio.wait_for(qmp.accept(), timeout)
                spaces = await asyncio.wait_for(_read_spaces(qmp, slots), timeout)
                if probe:
                    probes = tuple(
                        [
                            await asyncio.wait_for(_probe_writes(qmp, slot, space), timeout)
                            for slot, space in zip(slots, spaces, strict=True)
                        ]
                    )
            except TimeoutError:
                if proc.returncode is None:
                    raise OracleError(
                        f"{binary.describe()} did not answer within {timeout:.0f}s"
                    ) from None
                spaces = None
            except Exception:  # the connection died: QEMU refused and exited
                spaces = None
            if spaces is None:
                try:
                    await asyncio.wait_for(proc.wait(), timeout)
                except TimeoutError:
                    raise OracleError(
                        f"{binary.describe()} lost its monitor but kept running"
                    ) from None
                stderr = (await proc.stderr.read()).decode(errors="replace") if proc.stderr else ""
                return BatchResult(None, _clean_error(stderr))
            with contextlib.suppress(Exception):
                await qmp.execute("quit")
            return BatchResult(spaces, None, probes)
        finally:
            with contextlib.suppress(Exception):
                await qmp.disconnect()
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 10)


def run_batch(
    binary: QemuBinary,
    machine: Version,
    device_strings: Sequence[str],
    slots: Sequence[Slot],
    *,
    timeout: float = START_TIMEOUT,
    probe: bool = False,
) -> BatchResult:
    """Start ``binary`` on ``pc-i440fx-<machine>`` with the devices and read ``slots``.

    ``device_strings`` must give every device an explicit ``addr`` matching ``slots``.
    With ``probe``, also run a guest write probe on every device (see
    :func:`probe_sequence`).
    """
    if machine not in binary.machines:
        raise OracleError(f"{binary.describe()} has no machine type pc-i440fx-{machine}")
    return asyncio.run(_run(binary, machine, device_strings, slots, timeout, probe))
