"""A snapshot of the parsed built-in catalogue, so that a command starts fast.

The TOML and CSV tables in ``data/`` stay the source of truth. Parsing them, and
importing every builder module to check that each type has one, costs more than
the rest of a one-device ``realize``; so the parsed result (the catalogue, the ROM
sizes and which module registers each builder) is pickled once into the user's
cache folder and read back at the next start.

The file is named by a key over the contents of every file the result depends
on (the data tables and the catalogue's own modules) and the interpreter, so
editing any of them makes a new snapshot; a file that is missing, unreadable,
corrupt or of another key is ignored, and one that cannot be written is not
written: the caller parses the tables, as it would without a cache.

The folder is ``$COMPATLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/compatlab``, else
``~/.cache/compatlab``; ``COMPATLAB_CACHE_DIR=`` (empty) turns the snapshot off.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import sys
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from compatlab.catalogue.model import Catalogue, CompatEntry, DeviceType
from compatlab.catalogue.properties import PropertyDef, PropType
from compatlab.versions import Version

_HERE = os.path.dirname(os.path.abspath(__file__))
# The files whose contents shape a snapshot: the tables, the modules that parse
# them or define the pickled classes, and the builder modules (where each lives).
_SOURCES = (
    os.path.join(_HERE, "data"),
    os.path.join(_HERE, "devices"),
    *(
        os.path.join(_HERE, f"{name}.py")
        for name in ("builders", "loader", "model", "properties", "snapshot")
    ),
    os.path.join(os.path.dirname(_HERE), "versions.py"),
)
_SUFFIXES = (".toml", ".csv", ".py")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What parsing the built-in tables yields: the catalogue, the sizes of the
    ROM files the emulator ships, and the module that registers each builder."""

    key: str
    catalogue: Catalogue
    roms: Mapping[str, int]
    builder_homes: Mapping[str, str]


def _files() -> list[str]:
    files: list[str] = []
    for source in _SOURCES:
        if os.path.isdir(source):
            for root, dirs, names in os.walk(source):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                files.extend(os.path.join(root, n) for n in sorted(names) if n.endswith(_SUFFIXES))
        else:
            files.append(source)
    return sorted(set(files))


def source_key() -> str:
    """A key over the contents of the snapshot's sources and the interpreter.

    CRC-32 and length per file (``zlib`` is loaded at every start, ``hashlib``
    would cost more than reading the files): the key only has to notice an edit.
    """
    crc = zlib.crc32(f"{sys.implementation.cache_tag} {sys.version}".encode())
    total = 0
    for path in _files():
        with open(path, "rb") as fh:
            data = fh.read()
        name = os.path.relpath(path, _HERE).encode()
        crc = zlib.crc32(data, zlib.crc32(name + b"\0%d\0" % len(data), crc))
        total += len(data)
    return f"{crc:08x}{total:x}"


def cache_dir() -> str | None:
    """The snapshot folder, or None when ``COMPATLAB_CACHE_DIR`` is set empty."""
    explicit = os.environ.get("COMPATLAB_CACHE_DIR")
    if explicit is not None:
        return explicit or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "compatlab")


def _path(folder: str, key: str) -> str:
    return os.path.join(folder, f"catalogue-{key}.pickle")


def read(key: str) -> Snapshot | None:
    """The snapshot stored under ``key``, or None if there is none that loads."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        with open(_path(folder, key), "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    import pickle

    try:
        snapshot = pickle.loads(data)
    except Exception:  # a corrupt file can fail in any way; it is only a cache
        return None
    if not isinstance(snapshot, Snapshot) or snapshot.key != key:
        return None
    return snapshot


def _by_constructor(obj: Any) -> tuple[type, tuple[Any, ...]]:
    return type(obj), tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))


# The catalogue's many small frozen values are rebuilt by their constructors, which
# loads twice as fast as the field-by-field state that slotted dataclasses pickle.
_REDUCERS = dict.fromkeys(
    (CompatEntry, DeviceType, PropertyDef, PropType, Version), _by_constructor
)


def write(snapshot: Snapshot) -> None:
    """Store ``snapshot`` for the next start; silently not, if the folder is not writable.

    Written to a temporary name and renamed, so that concurrent starts (xdist
    workers) never read a half-written file.
    """
    folder = cache_dir()
    if folder is None:
        return
    import pickle

    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _REDUCERS
    pickler.dump(snapshot)
    data = buf.getvalue()
    path = _path(folder, snapshot.key)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(folder, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return
    _forget_old(folder, path)


_KEEP_SECONDS = 30 * 24 * 3600


def _forget_old(folder: str, keep: str) -> None:
    """Remove snapshots not written for a month: other checkouts' and old sources'."""
    import time

    cutoff = time.time() - _KEEP_SECONDS
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if (
                entry.name.startswith("catalogue-")
                and entry.path != keep
                and entry.stat().st_mtime < cutoff
            ):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
