"""compatlab: does a guest still see the same PCI hardware after an emulator upgrade?

Architecture — data flows one way, and a module imports only modules upstream::

    errors, versions, paths (where built-in data is read and run state written)
      → pci/          config space, masks, BARs, capabilities (no device knowledge)
      → catalogue/    device types, property history as data, config-space builders;
                      candidate releases as data on the catalogue as it stood
      → config        -device strings and JSON/TOML files
      → hints/        compat hints: the value and its canonical file format
      → resolve       config (+ hints) → a value and its source for every property;
                      dump_hints goes back from a resolution to hints
      → realize       resolved devices → config space and masks
      → oracles/      real QEMU: run, capture, compare with the model
      → invariants/   named checks over generated inputs, the version-matrix runner
      → results       result records, the pandas/Parquet results table
      → report/       HTML, Markdown, JUnit XML and trends from the results table
      → gate          release gating: a candidate release (as data) or two binaries
      → cli/          the only place that prints (with report writers)

``compatlab.pci`` depends only on the standard library and ``compatlab.errors``; version knowledge lives
in ``catalogue/data`` and nowhere else.

Importing this package is cheap: each public name below is imported from its
module on first use (PEP 562), so a command pays only for what it uses.
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compatlab.catalogue import Catalogue, builtin_catalogue
    from compatlab.config import Config, DeviceSpec, PciAddress, build_config, parse_device_string
    from compatlab.errors import CompatlabError, ConfigError, ExitCode, HintsFormatError
    from compatlab.hints import HintEntry, Hints, decode, encode
    from compatlab.pci import ConfigSpace
    from compatlab.realize import Realized, RealizedDevice, realize
    from compatlab.resolve import (
        IgnoredHint,
        IgnoredReason,
        Resolved,
        ResolvedConfig,
        ResolvedDevice,
        Source,
        dump_hints,
        resolve,
    )
    from compatlab.versions import ALL_VERSIONS, NEWEST, OLDEST, Version

__all__ = [
    "realize",
    "resolve",
    "dump_hints",
    "Config",
    "DeviceSpec",
    "PciAddress",
    "parse_device_string",
    "build_config",
    "Hints",
    "HintEntry",
    "encode",
    "decode",
    "Realized",
    "RealizedDevice",
    "ConfigSpace",
    "ResolvedConfig",
    "ResolvedDevice",
    "Resolved",
    "Source",
    "IgnoredHint",
    "IgnoredReason",
    "Version",
    "ALL_VERSIONS",
    "OLDEST",
    "NEWEST",
    "Catalogue",
    "builtin_catalogue",
    "CompatlabError",
    "ConfigError",
    "HintsFormatError",
    "ExitCode",
]

__version__ = "0.1.0"

# Where each public name lives; ``__getattr__`` imports it from there on first use.
_HOMES = {
    "compatlab.catalogue": ("Catalogue", "builtin_catalogue"),
    "compatlab.config": (
        "Config",
        "DeviceSpec",
        "PciAddress",
        "build_config",
        "parse_device_string",
    ),
    "compatlab.errors": ("CompatlabError", "ConfigError", "ExitCode", "HintsFormatError"),
    "compatlab.hints": ("HintEntry", "Hints", "decode", "encode"),
    "compatlab.pci": ("ConfigSpace",),
    "compatlab.realize": ("Realized", "RealizedDevice", "realize"),
    "compatlab.resolve": (
        "IgnoredHint",
        "IgnoredReason",
        "Resolved",
        "ResolvedConfig",
        "ResolvedDevice",
        "Source",
        "dump_hints",
        "resolve",
    ),
    "compatlab.versions": ("ALL_VERSIONS", "NEWEST", "OLDEST", "Version"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}
# Like Hypothesis, check the public list against where the names live, at import.
assert sorted(_HOME_OF) == sorted(__all__), "__all__ and _HOMES disagree"


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(ModuleType):
    """The package object, keeping ``compatlab.realize`` the function.

    The import system binds a submodule as an attribute of its package; where a
    public name is also a submodule's (``realize``, ``resolve``), that would hide
    the function once anything imports the module. The name stays the function's,
    as it was when this package imported its API eagerly.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            name in _HOME_OF
            and isinstance(value, ModuleType)
            and value.__name__ == f"{__name__}.{name}"
        ):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
