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

``compatlab.pci`` depends only on the standard library; version knowledge lives
in ``catalogue/data`` and nowhere else.
"""

from __future__ import annotations

from compatlab.catalogue import Catalogue, builtin_catalogue
from compatlab.config import Config, DeviceSpec, PciAddress, build_config, parse_device_string
from compatlab.errors import CompatlabError, ConfigError, ExitCode, HintsFormatError
from compatlab.hints import HintEntry, Hints, decode, encode
from compatlab.pci import ConfigSpace
from compatlab.realize import Realized, RealizedDevice, realize
from compatlab.resolve import (
    IgnoredHint,
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
