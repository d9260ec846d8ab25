"""Result records and the results table.

One record per (invariant, device, version pair). Workers append their records
to their own JSON-lines file in the run folder as each run finishes (a killed
run keeps what it finished); one place, :func:`merge`, gathers them into a
pandas table saved as Parquet next to them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import MISSING, asdict, dataclass
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
        """Inverse of :meth:`to_json`. Keys it does not know are left out (a newer
        compatlab's columns); a missing or mistyped field is a ``ValueError``."""
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        values: dict[str, Any] = {}
        for name, f in cls.__dataclass_fields__.items():
            if name not in data:
                if f.default is MISSING:
                    raise ValueError(f"no {name!r}")
                continue
            value = data[name]
            kinds = _FIELD_TYPES[str(f.type)]
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise ValueError(f"{name!r} is {value!r}, not {f.type}")
            values[name] = value
        return cls(**values)


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "str | None": (str, type(None)),
}

#: The most a run folder's records file or results table may hold (a nightly run
#: of the whole matrix writes a few MiB).
MAX_RUN_FILE_BYTES = 256 * 1024 * 1024


def append(path: Path, record: ResultRecord) -> None:
    """Append one record, as one line, and flush it to disk."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record.to_json(), sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def record_files(run_dir: Path) -> list[Path]:
    """The run's records files, one per process that ran tasks."""
    return sorted(run_dir.glob("records-*.jsonl"))


def read_records(
    run_dir: Path, *, warn: Callable[[str], None] | None = None
) -> Iterator[ResultRecord]:
    """Every record the run's processes wrote, read through
    :func:`compatlab.inputs.read_bytes` (regular files only, bounded). A line that is
    not a whole record (the torn last line of a process killed while it wrote, or
    a damaged file) loses that line only: ``warn`` is told which file and line;
    a records file that cannot be read at all loses its own records only."""
    from compatlab.inputs import InputFileError, read_bytes

    for f in record_files(run_dir):
        try:
            data = read_bytes(f, what="records file", limit=MAX_RUN_FILE_BYTES)
        except InputFileError as exc:
            if warn is not None:
                warn(f"{exc}; its records are left out")
            continue
        for number, line in enumerate(data.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                yield ResultRecord.from_json(json.loads(line.decode("utf-8")))
            except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
                if warn is not None:
                    reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                    warn(f"{f}:{number}: not a whole record ({reason}); line skipped")


def table_of(records: Iterable[ResultRecord]) -> Any:
    """The results table (a pandas frame, one row per record)."""
    import pandas as pd

    columns = list(ResultRecord.__dataclass_fields__)
    return pd.DataFrame([r.to_json() for r in records], columns=columns)


def write_table(run_dir: Path, records: Iterable[ResultRecord]) -> Any:
    """Save ``records`` as the run's ``results.parquet``; returns the table."""
    table = table_of(records)
    table.to_parquet(run_dir / "results.parquet", index=False)
    return table


def merge(run_dir: Path, *, warn: Callable[[str], None] | None = None) -> Any:
    """Gather the run's records into a pandas table and save it as Parquet."""
    return write_table(run_dir, read_records(run_dir, warn=warn))


def write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    """Write ``meta.json`` whole or not at all (a process killed while it writes
    leaves the old one)."""
    path = run_dir / "meta.json"
    partial = run_dir / f".meta.json.{os.getpid()}"
    partial.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, path)


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` is a run folder: one with ``meta.json``, ``results.parquet``
    or records (a run whose controller was killed has records only)."""
    return path.is_dir() and (
        (path / "meta.json").exists()
        or (path / "results.parquet").exists()
        or bool(record_files(path))
    )


def latest_run(root: Path = RUNS_DIR) -> Path | None:
    """The newest run folder under ``root`` (run ids start with a UTC time), finished or not."""
    runs = sorted(p for p in root.glob("*") if is_run_dir(p))
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
