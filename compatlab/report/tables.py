"""The results table as files: ``results.parquet`` (kept as ``check`` wrote it) and
``results.csv``."""

from __future__ import annotations

from pathlib import Path

from compatlab.report.writers import Report, writer


@writer("results.parquet")
def write_parquet(report: Report, out: Path) -> Path:
    path = out / "results.parquet"
    if not path.exists() or out.resolve() != report.run.path.resolve():
        report.run.table.to_parquet(path, index=False)
    return path


@writer("results.csv")
def write_csv(report: Report, out: Path) -> Path:
    path = out / "results.csv"
    report.run.table.to_csv(path, index=False)
    return path
