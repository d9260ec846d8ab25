"""The ``compatlab`` command line. Only this package and report writers print."""

from __future__ import annotations

from compatlab.cli.main import main

__all__ = ["main"]
