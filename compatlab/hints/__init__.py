"""Compat hints: the opaque, versioned blob an emulator version dumps for a config.

``Hints`` is the value; :func:`encode` and :func:`decode` are the file format
(docs/hints-format.md). Dumping (resolving a config at a version and recording
every property) lives in :mod:`compatlab.resolve`, downstream of this package.
The codec is imported on first use, so resolving without hints never loads it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from compatlab.hints.model import HintEntry, Hints, HintValue

if TYPE_CHECKING:
    from compatlab.hints.codec import FORMAT_VERSION, MAGIC, MAX_SIZE, decode, encode

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_SIZE",
    "HintEntry",
    "HintValue",
    "Hints",
    "decode",
    "encode",
]

_CODEC = ("FORMAT_VERSION", "MAGIC", "MAX_SIZE", "decode", "encode")


def __getattr__(name: str) -> Any:
    if name not in _CODEC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module("compatlab.hints.codec"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
