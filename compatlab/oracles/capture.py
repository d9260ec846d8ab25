"""Captures: what real QEMU did with a config, kept as data in ``corpora/qemu/``.

One JSON object per line::

    {"binary": "7.2", "release": "7.2.22", "machine": "5.0",
     "devices": ["e1000,addr=03.0,mitigation=off"],
     "config_space": ["86800e10…"]}            # one 512-char hex string per device

or, when QEMU refused the config (its one error line and exit status 1),
``"error": "<QEMU's message>"`` instead of ``config_space``; or, when QEMU crashed
on it (a sweep keeps that as a finding about QEMU, not as a refusal),
``"fault": "<what happened>"`` with ``"stderr"``, the end of what it printed.
Every device string carries an explicit ``addr``. A capture made with more than one
vCPU (``-smp N``) says so: ``"vcpus": N``; a line without it ran one vCPU. A capture
with a guest write probe also holds ``"write_probe": [[ones, zeros], …]``, per
device the 256 bytes read back after writing all-ones and after writing zeros to
each dword in turn (:func:`compatlab.oracles.guest.probe_sequence`).

Capturing packs many one-device configs into one QEMU start (one slot each, and
no more of a kind than a machine may hold); when QEMU refuses a start, the config
it names gets a start of its own and the others start again without it, so that
each refusal is attributed to the config that caused it
(:func:`capture_singles`).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from compatlab.catalogue import Catalogue, active_catalogue
from compatlab.config import (
    DEFAULT_VCPUS,
    FIRST_SLOT,
    LAST_SLOT,
    Config,
    DeviceSpec,
    PciAddress,
    check_vcpus,
    parse_device_string,
)
from compatlab.errors import OracleError
from compatlab.oracles.qemu import (
    BatchResult,
    QemuBinary,
    QemuFault,
    Slot,
    check_alive,
    run_batch,
)
from compatlab.versions import Version


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    binary: str
    release: str
    machine: str
    devices: tuple[str, ...]
    config_space: tuple[str, ...] | None = None
    error: str | None = None
    write_probe: tuple[tuple[str, str], ...] | None = None
    fault: str | None = None
    stderr: str | None = None
    vcpus: int = DEFAULT_VCPUS

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "binary": self.binary,
            "release": self.release,
            "machine": self.machine,
            "devices": list(self.devices),
        }
        if self.vcpus != DEFAULT_VCPUS:
            out["vcpus"] = self.vcpus
        if self.fault is not None:
            out["fault"] = self.fault
            out["stderr"] = self.stderr or ""
        elif self.error is not None:
            out["error"] = self.error
        else:
            out["config_space"] = list(self.config_space or ())
        if self.write_probe is not None:
            out["write_probe"] = [list(p) for p in self.write_probe]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaptureRecord:
        """Inverse of :meth:`to_json`."""
        spaces = data.get("config_space")
        probe = data.get("write_probe")
        return cls(
            binary=str(data["binary"]),
            release=str(data.get("release", data["binary"])),
            machine=str(data["machine"]),
            devices=tuple(data["devices"]),
            config_space=tuple(spaces) if spaces is not None else None,
            error=data.get("error"),
            write_probe=tuple((str(a), str(b)) for a, b in probe) if probe is not None else None,
            fault=data.get("fault"),
            stderr=data.get("stderr"),
            vcpus=int(data.get("vcpus", DEFAULT_VCPUS)),
        )

    def config(self) -> Config:
        """The config QEMU ran: the devices, on ``vcpus`` CPUs."""
        return Config(tuple(parse_device_string(d) for d in self.devices), self.vcpus)


def read_corpus(path: str | Path) -> Iterator[CaptureRecord]:
    """The records of the corpus file ``path``, read as any user file is
    (:mod:`compatlab.inputs`: a regular file of at most 16 MiB). A line that is not a
    capture record (not JSON, nested too deep, a key missing or of the wrong kind) is
    a :class:`~compatlab.errors.CorpusError` naming the file, the line and the key."""
    from compatlab.errors import CorpusError
    from compatlab.inputs import read_text

    text = read_text(path, what="capture corpus", error=CorpusError)
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield _record_of(line, f"{path}:{number}")


def _record_of(line: str, where: str) -> CaptureRecord:
    """The capture record on one corpus line (``where`` names it in errors)."""
    from compatlab.errors import CorpusError
    from compatlab.inputs import loads_json

    data = loads_json(line, where, what="capture record", error=CorpusError)
    problem = capture_problem(data)
    if problem is not None:
        raise CorpusError(f"{where}: not a capture record ({problem})")
    return CaptureRecord.from_json(data)


def recorded_captures(folder: str | Path, machine: Version) -> list[tuple[str, CaptureRecord]]:
    """Every capture recorded under ``folder`` (a captures folder such as
    ``corpora/qemu``: one folder per binary, write probes in its ``writes/``) on
    machine type ``machine``, with where it is (``7.2/writes/e1000.jsonl:12``), in
    file order. A plain capture is left out when a write-probe capture of the same
    config by the same binary shows the same bytes or refusal: that one says as
    much, and what guest writes do besides. A malformed line is a
    :class:`~compatlab.errors.CorpusError` naming its file and line."""
    root = Path(folder)
    records = [
        (where, _record_of(line, str(root / where))) for where, line in _lines(str(root), machine)
    ]
    probed = {
        (r.binary, r.devices, r.config_space, r.error)
        for _, r in records
        if r.write_probe is not None
    }
    return [
        (where, r)
        for where, r in records
        if r.write_probe is not None or (r.binary, r.devices, r.config_space, r.error) not in probed
    ]


def _lines(folder: str, machine: Version) -> tuple[tuple[str, str], ...]:
    return _lines_by_machine(folder).get(str(machine), ())


@cache
def _lines_by_machine(folder: str) -> dict[str, tuple[tuple[str, str], ...]]:
    """The lines of every corpus file under ``folder`` by machine type, each with
    where it is; read once per process (a whole sweep set is some 50,000 lines: kept
    as text, each parsed and checked when its machine type is asked for)."""
    from compatlab.errors import CorpusError
    from compatlab.inputs import read_text

    root = Path(folder)
    found: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(root.rglob("*.jsonl")):
        text = read_text(path, what="capture corpus", error=CorpusError)
        name = path.relative_to(root).as_posix()
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            where = f"{name}:{number}"
            try:  # a first look only: the line is read in full when it is used
                machine = json.loads(line).get("machine")
            except (ValueError, AttributeError, RecursionError):
                machine = None
            if not isinstance(machine, str):
                _record_of(line, f"{path}:{number}")  # raises, saying what is wrong
                raise CorpusError(f"{path}:{number}: not a capture record (no 'machine')")
            found.setdefault(machine, []).append((where, line))
    return {machine: tuple(lines) for machine, lines in found.items()}


_SPACE_CHARS = 512  # 256 bytes of conventional config space, in hex
_SPACE_RE = re.compile(f"[0-9a-fA-F]{{{_SPACE_CHARS}}}", re.ASCII)


def capture_problem(data: Any) -> str | None:
    """What keeps ``data`` from being a capture record (see the module docstring), or
    None."""
    from compatlab.errors import CompatlabError
    from compatlab.inputs import kind_of

    if not isinstance(data, dict):
        return f"expected a table, not {kind_of(data)}"
    for key in ("binary", "machine", "release"):
        if key not in data:
            if key == "release":  # optional: the binary's version stands for it
                continue
            return f"missing {key!r}"
        if not isinstance(data[key], str):
            return f"{key!r} must be a string, not {kind_of(data[key])}"
        if key != "release":
            try:
                Version.parse(data[key])
            except CompatlabError as exc:
                return f"{key!r}: {exc}"
    devices = data.get("devices")
    if not isinstance(devices, list) or not devices:
        return f"'devices' must be a list of device strings, not {kind_of(devices)}"
    for n, text in enumerate(devices):
        if not isinstance(text, str):
            return f"devices[{n}] must be a string, not {kind_of(text)}"
        try:
            parse_device_string(text)
        except CompatlabError as exc:
            return f"devices[{n}]: {exc}"
    if "vcpus" in data:
        try:
            check_vcpus(data["vcpus"], "'vcpus'")
        except CompatlabError as exc:
            return str(exc)
    kinds = [k for k in ("config_space", "error", "fault") if k in data]
    if len(kinds) != 1:
        return "expected one of 'config_space', 'error' and 'fault'"
    for key in ("error", "fault", "stderr"):
        if key in data and not isinstance(data[key], str):
            return f"{key!r} must be a string, not {kind_of(data[key])}"
    images: list[tuple[str, Any]] = []
    if "config_space" in data:
        spaces = data["config_space"]
        if not isinstance(spaces, list) or len(spaces) != len(devices):
            return f"'config_space' must be a list of {len(devices)} hex strings"
        images += [(f"config_space[{n}]", v) for n, v in enumerate(spaces)]
    if "write_probe" in data:
        probes = data["write_probe"]
        if not isinstance(probes, list) or len(probes) > len(devices):
            return f"'write_probe' must be a list of at most {len(devices)} pairs"
        for n, pair in enumerate(probes):
            if not isinstance(pair, list) or len(pair) != 2:
                return f"write_probe[{n}] must be a pair of hex strings, not {kind_of(pair)}"
            images += [(f"write_probe[{n}][{i}]", v) for i, v in enumerate(pair)]
    for key, image in images:
        if not isinstance(image, str) or _SPACE_RE.fullmatch(image) is None:
            return f"{key} must be {_SPACE_CHARS} hex digits"
    return None


def write_records(
    path: str | Path, records: Iterable[CaptureRecord], *, append: bool = True
) -> int:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with p.open("a" if append else "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec.to_json(), sort_keys=True) + "\n")
            n += 1
    return n


def _slots_of(devices: Sequence[str]) -> list[Slot]:
    slots = []
    for text in devices:
        spec = parse_device_string(text)
        if spec.addr is None:
            raise OracleError(f"capture needs an explicit addr in {text!r}")
        slots.append(Slot(spec.addr.slot, spec.addr.function))
    return slots


def _with_addr(text: str, addr: PciAddress, spec: DeviceSpec | None = None) -> str:
    """``text`` with its ``addr`` set to ``addr`` (``spec``: ``text`` already parsed)."""
    spec = spec or parse_device_string(text)
    parts = [p for p in text.split(",") if not p.startswith("addr=")]
    return ",".join([parts[0], f"addr={addr}", *parts[1:]]) if spec.addr != addr else text


def _probes(result: BatchResult) -> tuple[tuple[str, str], ...] | None:
    if result.probes is None:
        return None
    return tuple((ones.hex(), zeros.hex()) for ones, zeros in result.probes)


def capture_one(
    binary: QemuBinary,
    machine: Version,
    devices: Sequence[str],
    *,
    probe: bool = False,
    vcpus: int = DEFAULT_VCPUS,
) -> CaptureRecord:
    """Run one config (its devices all carry ``addr``) on ``vcpus`` CPUs and record
    what QEMU did, a crash included (a :class:`~compatlab.oracles.qemu.QemuFault` of
    this config: one that a start with no device does not show too)."""
    try:
        result = run_batch(binary, machine, devices, _slots_of(devices), probe=probe, vcpus=vcpus)
    except QemuFault as fault:
        check_alive(binary, machine)  # a binary broken for every config is no finding
        return CaptureRecord(
            str(binary.version), binary.release, str(machine), tuple(devices),
            fault=fault.what, stderr=fault.stderr[-2000:], vcpus=vcpus,
        )  # fmt: skip
    return CaptureRecord(
        binary=str(binary.version),
        release=binary.release,
        machine=str(machine),
        devices=tuple(devices),
        config_space=None if result.spaces is None else tuple(s.hex() for s in result.spaces),
        error=result.error,
        write_probe=_probes(result),
        vcpus=vcpus,
    )


def capture_config(
    binary: QemuBinary, machine: Version, config: Config, *, probe: bool = False
) -> CaptureRecord:
    """Run a config as given (addresses left out are assigned as QEMU does, its vCPU
    count as ``-smp``, one when it gives none) and record what QEMU did; a config
    whose addresses clash is sent as is, for QEMU to refuse."""
    from compatlab.errors import CompatlabError
    from compatlab.resolve import assign_addresses

    strings = config.device_strings()
    try:
        slots = [Slot(a.slot, a.function) for a in assign_addresses(config)]
    except CompatlabError:
        slots = []
    vcpus = DEFAULT_VCPUS if config.vcpus is None else config.vcpus
    result = run_batch(binary, machine, strings, slots, probe=probe, vcpus=vcpus)
    return CaptureRecord(
        str(binary.version),
        binary.release,
        str(machine),
        tuple(strings),
        None if result.spaces is None else tuple(s.hex() for s in result.spaces),
        result.error,
        write_probe=_probes(result),
        vcpus=vcpus,
    )


def capture_singles(
    binary: QemuBinary,
    machine: Version,
    devices: Sequence[str],
    *,
    progress: Callable[[int], None] | None = None,
    probe: bool = False,
    catalogue: Catalogue | None = None,
    vcpus: int = DEFAULT_VCPUS,
) -> list[CaptureRecord]:
    """Capture many one-device configs, packed into as few QEMU starts as possible,
    each on a machine with ``vcpus`` CPUs.

    A start holds one config per slot (02, 03, …: each string's ``addr`` is rewritten
    to its slot, and the record shows the address used), and no more devices of a
    kind than the catalogue lets one machine hold (``max_instances``: QEMU refuses a
    second balloon); there are as many starts as first fit needs, filled evenly
    (each config goes to the emptiest start that may take it: :func:`_pack`). If
    QEMU refuses a start and names one of its devices, that config gets a start of
    its own (what QEMU does with it alone is its record: a refusal, or bytes if it
    only clashed with another config) and the others start again without it; a
    start refused for another reason, or one that crashes, is redone one config per
    start.
    Records come back in the order of ``devices``.
    """
    records: dict[int, CaptureRecord] = {}
    for start in _pack(devices, catalogue or active_catalogue()):
        pending = list(start)
        while len(pending) > 1:
            texts = [text for _, text in pending]
            try:
                result = run_batch(
                    binary, machine, texts, _slots_of(texts), probe=probe, vcpus=vcpus
                )
            except QemuFault:  # one of them crashed it: find which, one by one
                result = BatchResult(None, None)
            if result.spaces is not None:
                probes = _probes(result) or (None,) * len(texts)
                for (index, text), space, p in zip(pending, result.spaces, probes, strict=True):
                    records[index] = CaptureRecord(
                        str(binary.version),
                        binary.release,
                        str(machine),
                        (text,),
                        (space.hex(),),
                        write_probe=None if p is None else (p,),
                        vcpus=vcpus,
                    )
                pending = []
                break
            named = [entry for entry in pending if _names(result.error, entry[1])]
            if len(named) != 1:
                break
            index, text = named[0]
            records[index] = capture_one(binary, machine, [text], probe=probe, vcpus=vcpus)
            pending.remove(named[0])
        for index, text in pending:
            records[index] = capture_one(binary, machine, [text], probe=probe, vcpus=vcpus)
        if progress is not None:
            progress(len(start))
    return [records[index] for index in range(len(devices))]


def _names(error: str | None, device: str) -> bool:
    """Does QEMU's refusal blame ``device``? It prefixes the option it refused."""
    return error is not None and error.startswith(f"-device {device}: ")


def _pack(devices: Sequence[str], catalogue: Catalogue) -> list[list[tuple[int, str]]]:
    """``devices`` (by index, with the ``addr`` of their slot) in starts: as many as
    first fit needs (a start has one slot per device and at most ``max_instances``
    of a kind), filled evenly, each device going to the emptiest start that may
    take it. QEMU's cost per device grows with the devices in a start (each memory
    transaction redraws every device's address space), so twelve starts of ten
    devices cost less CPU time than three of thirty and nine of one. Where even
    filling would need more starts than first fit (limits can make it so), first
    fit stands."""
    specs = [parse_device_string(text) for text in devices]
    limits = [_instance_limits(catalogue, spec.driver) for spec in specs]
    first_fit = _fill(limits, None)
    even = _fill(limits, len(first_fit))
    return [
        [
            (i, _with_addr(devices[i], PciAddress(FIRST_SLOT + slot, 0), specs[i]))
            for slot, i in enumerate(start)
        ]
        for start in (even if len(even) <= len(first_fit) else first_fit)
    ]


def _fill(limits: Sequence[list[tuple[str, int]]], starts: int | None) -> list[list[int]]:
    """The devices (by index, each with the kinds it counts towards and their
    limits) in starts, in the order they come: each in the first start with room
    (``starts`` None), or in the emptiest of ``starts`` starts with room (the first
    of those on a tie); a device that none can take opens a new start."""
    per_start = LAST_SLOT - FIRST_SLOT + 1
    packed: list[list[int]] = [[] for _ in range(starts or 0)]
    held: list[Counter[str]] = [Counter() for _ in packed]
    for index, kinds_of in enumerate(limits):
        room = [
            n
            for n, (start, kinds) in enumerate(zip(packed, held, strict=True))
            if len(start) < per_start and all(kinds[k] < most for k, most in kinds_of)
        ]
        if not room:
            packed.append([])
            held.append(Counter())
            room = [len(packed) - 1]
        n = room[0] if starts is None else min(room, key=lambda n: len(packed[n]))
        packed[n].append(index)
        held[n].update(k for k, _ in kinds_of)
    return packed


def _instance_limits(catalogue: Catalogue, driver: str) -> list[tuple[str, int]]:
    """The kinds ``driver`` counts towards and how many of each a machine may hold
    (none for a driver the catalogue does not know: QEMU will say)."""
    if driver not in catalogue.types:
        return []
    return [
        (kind, limit)
        for kind in catalogue.ancestry(driver)
        if (limit := catalogue.types[kind].max_instances) is not None
    ]


def timed(fn: Callable[[], list[CaptureRecord]]) -> tuple[list[CaptureRecord], float]:
    t0 = time.perf_counter()
    records = fn()
    return records, time.perf_counter() - t0
