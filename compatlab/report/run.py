"""A run folder as data: its metadata and its results table, and the aggregates
every report format shares (status per version pair, device × invariant counts,
distinct failures). All the pandas work of the report lives here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compatlab.errors import ConfigError, UnknownVersionError
from compatlab.invariants.registry import Failure
from compatlab.results import (
    MAX_RUN_FILE_BYTES,
    ResultRecord,
    is_run_dir,
    read_records,
    record_files,
    table_of,
)
from compatlab.versions import Version

# Worst first: what a cell shows when several runs fall into it.
STATUSES: tuple[str, ...] = ("fail", "error", "known", "pass", "skip")
_RANK = {s: len(STATUSES) - i for i, s in enumerate(STATUSES)}
FAILING = ("fail", "error")
COLUMNS = list(ResultRecord.__dataclass_fields__)


@dataclass(frozen=True)
class Run:
    """One run folder: ``meta.json`` (possibly reconstructed) and the results table."""

    path: Path
    meta: dict[str, Any]
    table: Any  # pandas.DataFrame with the columns of ResultRecord
    #: What could not be read and was left out (``file:line: why``).
    warnings: tuple[str, ...] = ()

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id") or self.path.name)

    @property
    def seconds(self) -> float:
        return float(self.meta.get("seconds") or 0.0)

    @property
    def examples(self) -> int:
        return int(self.meta.get("examples") or 0)

    @property
    def throughput(self) -> float:
        """Examples per second of wall time (0 when the run took no time)."""
        return self.examples / self.seconds if self.seconds > 0 else 0.0

    @property
    def incomplete(self) -> str | None:
        """Why this run holds less than it planned, in a few words (None: it finished)."""
        meta = self.meta
        if meta.get(RECONSTRUCTED):
            return (
                f"no readable meta.json: the run was killed or is still running; "
                f"{len(self.table)} runs recorded"
            )
        planned, done = meta.get("runs_planned"), meta.get("runs_done", len(self.table))
        if meta.get("interrupted"):
            by = f" by {meta['signal']}" if meta.get("signal") else ""
            return f"interrupted{by}: {done} of {planned} runs done"
        if meta.get("error"):
            return f"stopped by an error ({meta['error']}): {done} of {planned} runs done"
        if meta.get("complete") is False or (planned and done != planned):
            return f"{done} of {planned} runs done"
        return None


#: The key a reconstructed ``meta`` (no readable meta.json) carries.
RECONSTRUCTED = "reconstructed"


def load_run(path: Path, *, columns: Sequence[str] | None = None) -> Run:
    """Read a run folder through :mod:`compatlab.inputs` (regular files, bounded):
    its Parquet table, or the records its processes wrote when the run has no
    ``meta.json`` (it was killed, or still runs), leaving out only lines that are
    not whole records and saying so in :attr:`Run.warnings`. Writes nothing."""
    import io

    import pandas as pd

    from compatlab.inputs import read_bytes

    if not path.exists():
        raise ConfigError(f"{path}: no such run folder")
    if not is_run_dir(path):
        raise ConfigError(
            f"{path}: not a compatlab run folder (no meta.json, results.parquet or records-*.jsonl)"
        )
    warnings: list[str] = []
    parquet = path / "results.parquet"
    # The controller writes meta.json after its table, once its workers are gone:
    # without it the records are the truth (a table beside them is a report's, or
    # the run still writes).
    finished = (path / "meta.json").exists() or not record_files(path)
    if parquet.exists() and finished:
        data = read_bytes(
            parquet, what="results table", limit=MAX_RUN_FILE_BYTES, error=ConfigError
        )
        try:
            table = pd.read_parquet(io.BytesIO(data), columns=list(columns) if columns else None)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{parquet}: cannot read the results table: {exc}") from None
    else:
        table = table_of(read_records(path, warn=warnings.append))
        if columns:
            table = table[list(columns)]
    meta = _read_meta(path, table, warnings)
    return Run(path, meta, table, tuple(warnings))


def _read_meta(path: Path, table: Any, warnings: list[str]) -> dict[str, Any]:
    from compatlab.inputs import InputFileError, read_text

    meta_file = path / "meta.json"
    meta: dict[str, Any] = {}
    if meta_file.exists():
        try:
            loaded = json.loads(read_text(meta_file, what="run metadata"))
            if not isinstance(loaded, dict):
                raise ValueError(f"a JSON {type(loaded).__name__}, not an object")
            meta = loaded
        except json.JSONDecodeError as exc:
            warnings.append(
                f"{meta_file}: not valid JSON ({exc.msg}, line {exc.lineno}); "
                "the run is described from its records"
            )
        except (InputFileError, ValueError) as exc:
            warnings.append(f"{exc}; the run is described from its records")
    if not meta:
        meta[RECONSTRUCTED] = True
    # A killed run has no meta.json: rebuild what the table can tell.
    meta.setdefault("run_id", _first(table, "run_id") or path.name)
    meta.setdefault("profile", _first(table, "profile") or "?")
    meta.setdefault("seed", None)
    if "examples" not in meta and "examples" in table:
        meta["examples"] = int(table["examples"].sum())
    if "seconds" not in meta and "seconds" in table:
        meta["seconds"] = round(float(table["seconds"].sum()), 2)
    if "versions" not in meta and "version_from" in table:
        meta["versions"] = sort_versions(
            set(table["version_from"].unique()) | set(table["version_to"].unique())
        )
    if "invariants" not in meta and "invariant" in table:
        meta["invariants"] = list(table["invariant"].unique())
    return meta


def _first(table: Any, column: str) -> str | None:
    if column in table and len(table):
        return str(table[column].iloc[0])
    return None


def find_runs(root: Path) -> list[Path]:
    """Run folders directly under ``root``, oldest first (run ids start with a UTC time)."""
    if not root.is_dir():
        raise ConfigError(f"{root}: no such folder of runs")
    return sorted(p for p in root.iterdir() if is_run_dir(p))


def _version_key(text: str) -> tuple[int, int, str]:
    try:
        v = Version.parse(text)
    except UnknownVersionError:
        return (1 << 30, 0, text)
    return (v.major, v.minor, text)


def sort_versions(versions: Any) -> list[str]:
    return sorted({str(v) for v in versions}, key=_version_key)


# -- aggregates ---------------------------------------------------------------------


def status_counts(table: Any) -> dict[str, int]:
    counts = table["status"].value_counts()
    return {s: int(counts.get(s, 0)) for s in STATUSES}


def invariant_order(run: Run) -> list[str]:
    present = list(dict.fromkeys(run.table["invariant"].unique()))
    ordered = [n for n in run.meta.get("invariants", []) if n in set(present)]
    return ordered + [n for n in present if n not in set(ordered)]


@dataclass(frozen=True, slots=True)
class Cell:
    status: str
    runs: int
    failing: int


def heatmaps(table: Any) -> dict[str, dict[tuple[str, str], Cell]]:
    """Per invariant, the worst status of each (version from, version to) pair."""
    if not len(table):
        return {}
    status = table["status"].astype(str)
    frame = table[["invariant", "version_from", "version_to"]].assign(
        rank=status.map(_RANK).fillna(0).astype("int8"),
        failing=status.isin(FAILING),
    )
    grouped = frame.groupby(["invariant", "version_from", "version_to"], sort=False, observed=True)
    agg = grouped.agg(rank=("rank", "max"), runs=("rank", "size"), failing=("failing", "sum"))
    by_rank = {r: s for s, r in _RANK.items()}
    out: dict[str, dict[tuple[str, str], Cell]] = {}
    for (inv, vf, vt), rank, runs, failing in zip(
        agg.index, agg["rank"], agg["runs"], agg["failing"], strict=True
    ):
        out.setdefault(str(inv), {})[(str(vf), str(vt))] = Cell(
            by_rank.get(int(rank), "skip"), int(runs), int(failing)
        )
    return out


def device_matrix(table: Any) -> Any:
    """Counts per (device, invariant, status): a frame indexed by device and invariant."""
    counts = table.groupby(["device", "invariant", "status"], observed=True).size()
    return counts.unstack("status", fill_value=0).reindex(columns=list(STATUSES), fill_value=0)


@dataclass(frozen=True)
class FailureGroup:
    """Records that failed the same way: one counterexample stands for them all."""

    invariant: str
    status: str
    count: int
    versions: tuple[str, ...]
    record: dict[str, Any]
    failure: Failure | None
    detail: str

    @property
    def reproduce(self) -> str:
        return str(self.record.get("reproduce") or "")

    @property
    def space(self) -> bytes | None:
        """The failing device's config-space bytes, as the check saw them, to name the
        registers of the failure in (None: the failure carries none)."""
        return self.failure.space_bytes if self.failure is not None else None


_VERSIONS_SHOWN = 8


def failure_groups(table: Any, statuses: Sequence[str] = FAILING) -> list[FailureGroup]:
    """Distinct failures (same invariant and same structured failure), most frequent first."""
    bad = table[table["status"].isin(list(statuses))]
    if not len(bad):
        return []
    keyed = bad.assign(
        _key=bad["failure"].fillna("") + "\x00" + bad["note"].fillna(""),
    )
    grouped = keyed.groupby(["invariant", "_key"], sort=False)
    sizes = grouped.size()
    versions = grouped["versions"].agg(lambda s: tuple(dict.fromkeys(s))[:_VERSIONS_SHOWN])
    first = keyed.drop_duplicates(["invariant", "_key"]).set_index(["invariant", "_key"])
    groups: list[FailureGroup] = []
    for key, count in sizes.sort_values(ascending=False, kind="stable").items():
        row = first.loc[key]
        record = {c: _plain(row.get(c)) for c in COLUMNS if c not in ("invariant",)}
        record["invariant"] = key[0]
        failure = _parse_failure(record.get("failure"))
        detail = failure.detail if failure else str(record.get("note") or "no detail recorded")
        groups.append(
            FailureGroup(
                invariant=str(key[0]),
                status=str(record["status"]),
                count=int(count),
                versions=tuple(str(v) for v in versions.loc[key]),
                record=record,
                failure=failure,
                detail=detail,
            )
        )
    return groups


def _plain(value: Any) -> Any:
    """numpy scalars and NaN → plain Python values."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _parse_failure(text: Any) -> Failure | None:
    if not text:
        return None
    try:
        return Failure.from_json(json.loads(str(text)))
    except (json.JSONDecodeError, KeyError, TypeError):
        return None


def known_groups(table: Any) -> list[tuple[str, int, list[str]]]:
    """Known findings: (reason, runs, invariants), most frequent first."""
    known = table[table["status"] == "known"]
    if not len(known):
        return []
    notes = known["note"].fillna("")
    out = [
        (str(note), len(grp), sorted(grp["invariant"].unique()))
        for note, grp in known.groupby(notes, sort=False)
    ]
    return sorted(out, key=lambda t: -t[1])


_RUN_TIME = re.compile(r"^(\d{8}T\d{6}Z)")


def run_time(run_id: str) -> str:
    """``20261125T185606Z-…`` → ``2026-11-25 18:56:06Z``; other ids unchanged."""
    m = _RUN_TIME.match(run_id)
    if not m:
        return run_id
    t = m.group(1)
    return f"{t[0:4]}-{t[4:6]}-{t[6:8]} {t[9:11]}:{t[11:13]}:{t[13:15]}Z"


@dataclass(frozen=True)
class Summary:
    """What every format states at the top."""

    run: Run
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum(self.counts.values())

    @property
    def ok(self) -> bool:
        return not (self.counts.get("fail", 0) or self.counts.get("error", 0))


def summary(run: Run) -> Summary:
    return Summary(run, status_counts(run.table))


def iter_rows(table: Any, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    """Rows as plain tuples, fast (no per-row Series)."""
    yield from zip(*(table[c].tolist() for c in columns), strict=True)
