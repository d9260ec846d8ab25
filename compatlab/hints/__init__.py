"""Compat hints: the opaque, versioned blob an emulator version dumps for a config.

``Hints`` is the value; :func:`encode` and :func:`decode` are the file format
(docs/hints-format.md). Dumping (resolving a config at a version and recording
every property) lives in :mod:`compatlab.resolve`, downstream of this package.
"""

from compatlab.hints.codec import FORMAT_VERSION, MAGIC, MAX_SIZE, decode, encode
from compatlab.hints.model import HintEntry, Hints, HintValue

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
