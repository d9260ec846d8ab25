"""What a QEMU binary says about itself over QMP: types, properties, compat tables.

One paused start (``-machine none -nodefaults -S``: introspection needs no
machine) answers:

- ``qom-list-types`` (abstract types too): the type hierarchy, each type's parent;
- ``query-machines``, with ``"compat-props": true`` where the binary takes it
  (QEMU 9.1 and later): every machine type's compat properties, in the order QEMU
  applies them (the newest array first, so a later entry wins);
- ``device-list-properties`` for concrete types, ``qom-list-properties`` for
  abstract ones: each property's name, type and ``default-value`` where reported.

It asks about the types it is given, their QOM ancestors and, for a virtio PCI
proxy, the virtio backend behind it (its ``virtio-backend`` child, whose
properties the proxy aliases) with the backend's ancestors. The answer is a
frozen :class:`Introspection`, kept per binary (path, size, modification time
and release) and question in the user cache folder, so a second ask is a file
read.

A start is bounded and fault-safe as the capture oracle's is
(:mod:`compatlab.oracles.qemu`): QEMU leads its own process group, killed
afterwards; a QEMU that dies, hangs, floods its standard error or answers
garbage raises :class:`~compatlab.oracles.qemu.QemuFault`.

:func:`machine_values` applies a machine type's compat properties the way QEMU
does (``object_apply_compat_props``: every entry whose type the object is an
instance of, in order) to a device type's defaults, the backend's entries before
the proxy's: the backend object is created, and its globals set, while the proxy
is initialised, before the proxy's own globals are applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from compatlab.oracles.qemu import (
    START_TIMEOUT,
    QemuBinary,
    QemuFault,
    _exit_text,
    _seconds,
    _Started,
    _until_exit,
)

#: A property value as QMP reports it (a JSON scalar).
Raw = bool | int | str

# Properties every QOM object or device has, which device-list-properties leaves out
# and qom-list-properties does not: state, not settings.
_QOM_STATE = frozenset({"type", "parent_bus", "realized", "hotplugged", "hotpluggable"})
_BACKEND_PROPERTY = "virtio-backend"
_CHILD_RE = re.compile(r"child<(.+)>")
# Introspection ends at the device: what lies above it is QOM's own machinery.
_ROOTS = frozenset({"device", "object"})
_CACHE_FORMAT = 1
# Where Debian's QEMU looks for modules after QEMU_MODULE_DIR (CONFIG_QEMU_MODDIR).
_SYSTEM_MODULES = "/usr/lib/x86_64-linux-gnu/qemu"


@dataclass(frozen=True, slots=True)
class QomProperty:
    """One property as QEMU lists it: its QAPI type name and, where QEMU reports one
    (``default-value``), its default."""

    name: str
    type: str
    default: Raw | None = None
    has_default: bool = False


@dataclass(frozen=True, slots=True)
class QomType:
    name: str
    parent: str | None
    abstract: bool


@dataclass(frozen=True, slots=True)
class CompatProp:
    """One compat property of a machine type: ``driver.prop`` defaults to ``value``."""

    driver: str
    prop: str
    value: str


@dataclass(frozen=True)
class Introspection:
    """What one binary says about itself (see the module docstring).

    ``machines`` maps every machine type name to its compat properties in QEMU's
    order, or to None when the binary cannot report them (``compat_props`` False).
    ``properties`` holds the types asked about, their ancestors and backends that
    the binary has; a type it does not have is missing from ``types``.
    """

    path: str
    release: str
    types: Mapping[str, QomType]
    properties: Mapping[str, tuple[QomProperty, ...]]
    machines: Mapping[str, tuple[CompatProp, ...] | None]
    compat_props: bool
    _by_name: dict[str, dict[str, QomProperty]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def has(self, name: str) -> bool:
        return name in self.types

    def ancestry(self, name: str) -> tuple[str, ...]:
        """``name`` and its ancestors up to (not including) ``device``, most derived first."""
        chain: list[str] = []
        current: str | None = name
        while current is not None and current in self.types and current not in _ROOTS:
            if current in chain:
                break
            chain.append(current)
            current = self.types[current].parent
        return tuple(chain)

    def is_a(self, name: str, ancestor: str) -> bool:
        return ancestor in self.ancestry(name)

    def props(self, name: str) -> Mapping[str, QomProperty]:
        """The settings of type ``name``: QOM state and children (the backend, memory
        regions, an xHCI core: parts of the device, not settings) left out."""
        found = self._by_name.get(name)
        if found is None:
            found = {
                p.name: p
                for p in self.properties.get(name, ())
                if p.name not in _QOM_STATE and not p.type.startswith("child<")
            }
            self._by_name[name] = found
        return found

    def backend(self, name: str) -> str | None:
        """The virtio backend type behind proxy type ``name``, if it is one."""
        for p in self.properties.get(name, ()):
            if p.name == _BACKEND_PROPERTY:
                match = _CHILD_RE.fullmatch(p.type)
                return match.group(1) if match else None
        return None

    def machine_names(self, prefix: str = "pc-i440fx-") -> tuple[str, ...]:
        return tuple(sorted(m for m in self.machines if m.startswith(prefix)))


def machine_values(
    intro: Introspection,
    driver: str,
    machine: str | None,
    defaults: Mapping[str, Raw] | None = None,
) -> dict[str, Raw]:
    """Every property of concrete type ``driver`` that has a value on ``machine``
    (``None``: no machine, the binary's defaults): its default with the machine's
    compat properties applied along the QOM ancestry, the virtio backend's first.

    Values are as QEMU spells them: a default as reported (a JSON scalar), a compat
    value as the text QEMU parses. Properties with neither are left out. ``defaults``
    replaces reported defaults (where the caller knows the one a device really gets)."""
    values: dict[str, Raw] = {
        name: p.default
        for name, p in intro.props(driver).items()
        if p.has_default and p.default is not None
    }
    values.update({k: v for k, v in (defaults or {}).items() if k in intro.props(driver)})
    compat = intro.machines.get(machine) if machine is not None else ()
    if not compat:
        return values
    proxy = intro.ancestry(driver)
    backend = intro.backend(driver)
    backend_chain = intro.ancestry(backend) if backend else ()
    backend_props = intro.props(backend) if backend else {}
    on_backend: dict[str, str] = {}
    on_proxy: dict[str, str] = {}
    for entry in compat:
        if entry.driver in backend_chain and entry.prop in backend_props:
            on_backend[entry.prop] = entry.value
        if entry.driver in proxy:
            on_proxy[entry.prop] = entry.value
    own = intro.props(driver)
    for prop, value in (*on_backend.items(), *on_proxy.items()):
        if prop in own:
            values[prop] = value
    return values


# -- asking the binary ---------------------------------------------------------------------


def introspect(
    binary: QemuBinary,
    type_names: Iterable[str],
    *,
    timeout: float = START_TIMEOUT,
    cache: bool = True,
) -> Introspection:
    """Ask ``binary`` about ``type_names`` (with ancestors and virtio backends)."""
    names = tuple(sorted(set(type_names)))
    path = _cache_path(binary, names) if cache else None
    if path is not None:
        found = _read_cache(path)
        if found is not None:
            return found
    raw = asyncio.run(_ask(binary, names, timeout))
    intro = _from_raw(raw)
    if path is not None:
        _write_cache(path, raw)
    return intro


def _from_raw(raw: Mapping[str, Any]) -> Introspection:
    types = {
        t["name"]: QomType(t["name"], t.get("parent"), bool(t.get("abstract", False)))
        for t in raw["types"]
    }
    properties = {
        name: tuple(
            QomProperty(
                p["name"], str(p.get("type", "")), p.get("default-value"), "default-value" in p
            )
            for p in props
        )
        for name, props in raw["properties"].items()
    }
    machines: dict[str, tuple[CompatProp, ...] | None] = {}
    for m in raw["machines"]:
        props = m.get("compat-props")
        machines[m["name"]] = (
            None
            if props is None
            else tuple(CompatProp(p["qom-type"], p["property"], str(p["value"])) for p in props)
        )
    return Introspection(
        path=raw["path"],
        release=raw["release"],
        types=MappingProxyType(types),
        properties=MappingProxyType(properties),
        machines=MappingProxyType(machines),
        compat_props=bool(raw["compat_props"]),
    )


class _Garbage(Exception):
    """A QMP answer that is not the shape the command returns."""


async def _ask(binary: QemuBinary, names: Sequence[str], timeout: float) -> dict[str, Any]:
    from qemu.qmp import QMPClient
    from qemu.qmp.qmp_client import ExecuteError

    with tempfile.TemporaryDirectory(prefix="compatlab-qmp-") as tmp:
        sock = os.path.join(tmp, "qmp.sock")
        qmp = QMPClient("compatlab-introspect")
        await qmp.start_server(sock)
        cmd = [
            str(binary.path),
            "-machine",
            "none",
            "-nodefaults",
            "-S",
            "-display",
            "none",
            *(arg for d in binary.data_dirs for arg in ("-L", d)),
            "-qmp",
            f"unix:{sock}",
        ]
        env = {**os.environ, **binary.env, **_module_shadow(binary, tmp)}
        started = await _Started.start(binary, cmd, qmp, tmp, env)
        proc, exited, fault = started.proc, started.exited, started.fault

        async def execute(command: str, arguments: Mapping[str, Any] | None = None) -> Any:
            try:
                return await _until_exit(
                    qmp.execute(command, dict(arguments or {})), timeout, exited
                )
            except TimeoutError:
                raise await fault(f"did not answer {command} within {_seconds(timeout)}") from None
            except ConnectionError:
                if proc.returncode is None:
                    raise
                raise await fault(
                    f"{_exit_text(proc.returncode)} while answering {command}"
                ) from None

        try:
            accept = asyncio.ensure_future(qmp.accept())
            waited: set[asyncio.Future[Any]] = {accept, exited}
            done, _ = await asyncio.wait(
                waited, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if accept not in done or accept.exception() is not None:
                reason = accept.exception() if accept.done() else None
                accept.cancel()
                with contextlib.suppress(BaseException):
                    await accept
                if not done:
                    raise await fault(f"did not open its monitor within {_seconds(timeout)}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(exited), 2)
                if proc.returncode is None:
                    raise await fault(f"broke off the QMP handshake ({reason}) but kept running")
                # With no device and no machine there is nothing to refuse: any exit
                # before the monitor answers is a fault.
                raise await fault(f"{_exit_text(proc.returncode)} before its monitor answered")
            try:
                types = await execute("qom-list-types", {"abstract": True})
                try:
                    machines = await execute("query-machines", {"compat-props": True})
                    compat_props = True
                except ExecuteError:
                    machines = await execute("query-machines")
                    compat_props = False
                _expect_list(types, "qom-list-types")
                _expect_list(machines, "query-machines")
                hierarchy = {t["name"]: t for t in types}
                wanted = _closure(names, hierarchy)
                properties: dict[str, Any] = {}
                pending = list(wanted)
                while pending:
                    name = pending.pop(0)
                    if name in properties:
                        continue
                    command = (
                        "qom-list-properties"
                        if hierarchy[name].get("abstract")
                        else "device-list-properties"
                    )
                    props = await execute(command, {"typename": name})
                    _expect_list(props, command)
                    properties[name] = props
                    for p in props:
                        match = _CHILD_RE.fullmatch(str(p.get("type", "")))
                        if p.get("name") == _BACKEND_PROPERTY and match:
                            pending += [
                                n for n in _closure([match.group(1)], hierarchy) if n not in wanted
                            ]
            except _Garbage as exc:
                raise await fault(f"answered garbage on QMP: {exc}") from None
            except (ExecuteError, KeyError, TypeError, AttributeError) as exc:
                raise await fault(f"answered introspection unexpectedly: {exc}") from None
            except QemuFault:
                raise
            except Exception as exc:  # the connection died under us
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(exited), 2)
                raise await fault(
                    f"{_exit_text(proc.returncode)} during introspection"
                    if proc.returncode is not None
                    else f"lost its monitor ({type(exc).__name__}) during introspection"
                ) from None
            return {
                "path": str(binary.path),
                "release": binary.release,
                "types": [
                    {k: t[k] for k in ("name", "parent", "abstract") if k in t} for t in types
                ],
                "machines": [
                    {k: m[k] for k in ("name", "compat-props") if k in m} for m in machines
                ],
                "compat_props": compat_props,
                "properties": properties,
            }
        finally:
            await started.close()


def _module_shadow(binary: QemuBinary, tmp: str) -> dict[str, str]:
    """A module folder that keeps a binary from an unpacked tree off the system's modules.

    ``qom-list-types`` loads every QOM module. QEMU looks for each in
    ``QEMU_MODULE_DIR``, then in its built-in folder: a module the tree lacks is
    found among the system release's, which QEMU refuses as another build's and
    then aborts on the next load (``module_load_dso``'s assertion, QEMU 10.0). In
    this folder the tree's own modules are linked, and every other module the
    system has is an empty file: found first, it fails to open, cleanly.
    """
    own = binary.env.get("QEMU_MODULE_DIR")
    if not own or not os.path.isdir(_SYSTEM_MODULES) or os.path.samefile(own, _SYSTEM_MODULES):
        return {}
    shadow = os.path.join(tmp, "modules")
    os.makedirs(shadow)
    mine = set(os.listdir(own))
    for name in mine:
        os.symlink(os.path.join(own, name), os.path.join(shadow, name))
    for name in set(os.listdir(_SYSTEM_MODULES)) - mine:
        open(os.path.join(shadow, name), "wb").close()
    return {"QEMU_MODULE_DIR": shadow}


def _expect_list(value: Any, command: str) -> None:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _Garbage(f"{command} returned {str(value)[:80]!r}")


def _closure(names: Iterable[str], hierarchy: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``names`` the binary has, with their ancestors below ``device``, in order."""
    out: list[str] = []
    for name in names:
        current: Any = name
        while current in hierarchy and current not in _ROOTS and current not in out:
            out.append(current)
            current = hierarchy[current].get("parent")
    return out


# -- the cache -------------------------------------------------------------------------------


def _cache_path(binary: QemuBinary, names: Sequence[str]) -> str | None:
    from compatlab.catalogue.snapshot import cache_dir

    folder = cache_dir()
    if folder is None:
        return None
    try:
        st = os.stat(binary.path)
    except OSError:
        return None
    key = json.dumps(
        [_CACHE_FORMAT, str(binary.path), binary.release, st.st_size, st.st_mtime_ns, names]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return os.path.join(folder, f"introspect-{binary.release}-{digest}.json")


def _read_cache(path: str) -> Introspection | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return _from_raw(json.load(fh))
    except Exception:  # a missing or damaged cache only means asking again
        return None


def _write_cache(path: str, raw: Mapping[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(raw, fh)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
