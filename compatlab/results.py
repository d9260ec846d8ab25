"""Result records and the results table.

One record per (invariant, device, version pair). Workers append their records
to their own JSON-lines file in the run folder as each run finishes (a killed
run keeps what it finished); one place, :func:`merge`, gathers them into a
pandas table saved as Parquet next to them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from compatlab.paths import DEFAULT_RUNS_DIR

RUNS_DIR = DEFAULT_RUNS_DIR  # where runs are kept by default: see compatlab.paths


@dataclass(frozen=True, slots=True)
class ResultRecord:
    run_id: str
    invariant: str
    device: str
    versions: str
    version_from: str
    version_to: str
    status: str  # pass | fail | known | skip | error
    examples: int
    failures: int
    seconds: float
    seed: int
    profile: str
    failure: str | None = None  # Failure.to_json() as JSON text
    reproduce: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResultRecord:
        """Inverse of :meth:`to_json`."""
        return cls(**data)


def append(path: Path, record: ResultRecord) -> None:
    """Append one record and flush it to disk."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record.to_json(), sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_records(run_dir: Path) -> Iterator[ResultRecord]:
    """Every record the run's workers wrote (a torn last line of a killed run is skipped)."""
    for f in sorted(run_dir.glob("records-*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            try:
                yield ResultRecord.from_json(json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue


def merge(run_dir: Path) -> Any:
    """Gather the run's records into a pandas table and save it as Parquet."""
    import pandas as pd

    records = list(read_records(run_dir))
    columns = list(ResultRecord.__dataclass_fields__)
    table = pd.DataFrame([r.to_json() for r in records], columns=columns)
    table.to_parquet(run_dir / "results.parquet", index=False)
    return table


def write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def latest_run(root: Path = RUNS_DIR) -> Path | None:
    runs = sorted(p for p in root.glob("*") if (p / "meta.json").exists())
    return runs[-1] if runs else None


class Counted(Protocol):
    """What :func:`summarize` reads of a row: a results-table record, or a pytest item's."""

    @property
    def invariant(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def examples(self) -> int: ...


def summarize(records: Iterable[Counted]) -> dict[str, dict[str, int]]:
    """Counts per invariant and status, in first-seen order."""
    out: dict[str, dict[str, int]] = {}
    for r in records:
        row = out.setdefault(
            r.invariant, {"pass": 0, "fail": 0, "known": 0, "skip": 0, "error": 0, "examples": 0}
        )
        row[r.status] = row.get(r.status, 0) + 1
        row["examples"] += r.examples
    return out
