"""Report writers register themselves by the file they write.

``@writer("summary.md")`` on a function taking a :class:`Report` and an output
folder; :func:`write_all` runs every registered writer, in registration order.
A duplicate file name is an error at import time.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from compatlab.report.run import (
    Cell,
    FailureGroup,
    Run,
    device_matrix,
    failure_groups,
    heatmaps,
    invariant_order,
    known_groups,
    sort_versions,
    status_counts,
)

WriterFn = Callable[["Report", Path], Path]

_WRITERS: dict[str, WriterFn] = {}


def writer(filename: str) -> Callable[[WriterFn], WriterFn]:
    def register(fn: WriterFn) -> WriterFn:
        if filename in _WRITERS:
            raise ValueError(f"report writer for {filename!r} registered twice")
        _WRITERS[filename] = fn
        return fn

    return register


def registered() -> tuple[str, ...]:
    return tuple(_WRITERS)


@dataclass
class Report:
    """A run and the aggregates its formats share, each computed once on first use."""

    run: Run

    @cached_property
    def generated(self) -> str:
        return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")

    @cached_property
    def counts(self) -> dict[str, int]:
        return status_counts(self.run.table)

    @property
    def records(self) -> int:
        return len(self.run.table)

    @property
    def ok(self) -> bool:
        return not (self.counts["fail"] or self.counts["error"])

    @cached_property
    def invariants(self) -> list[str]:
        return invariant_order(self.run)

    @cached_property
    def versions(self) -> list[str]:
        table = self.run.table
        seen = set(table["version_from"].unique()) | set(table["version_to"].unique())
        return sort_versions(seen | set(self.run.meta.get("versions") or []))

    @cached_property
    def heatmaps(self) -> dict[str, dict[tuple[str, str], Cell]]:
        return heatmaps(self.run.table)

    @cached_property
    def devices(self) -> Any:
        return device_matrix(self.run.table)

    @cached_property
    def failures(self) -> list[FailureGroup]:
        return failure_groups(self.run.table)

    @cached_property
    def known(self) -> list[tuple[str, int, list[str]]]:
        return known_groups(self.run.table)

    @cached_property
    def per_invariant(self) -> Any:
        """Counts per invariant and status, invariants in run order."""
        counts = self.run.table.groupby(["invariant", "status"], observed=True).size()
        frame = counts.unstack("status", fill_value=0)
        for s in ("pass", "fail", "known", "skip", "error"):
            if s not in frame:
                frame[s] = 0
        return frame.reindex(self.invariants, fill_value=0)


def write_all(report: Report, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [fn(report, out) for fn in _WRITERS.values()]
