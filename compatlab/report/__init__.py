"""Reports from the results of ``compatlab check``: the last stage of the data flow.

Upstream of nothing: it reads run folders (``compatlab.results``) and renders them,
and is, with the CLI, the only place that writes for people::

    run folder (meta.json, records-*.jsonl, results.parquet)
      → run        load a run; the pandas aggregates every format shares
      → writers    registry of report writers, one per file:
                   html (report.html), summary (summary.md), junit (junit.xml),
                   tables (results.parquet, results.csv)
      → history    many runs: new, fixed and flaky failures, throughput over time

Templates live in ``reports/templates/`` (:mod:`string.Template`, no Jinja).
"""

from __future__ import annotations

from pathlib import Path

# Writers register on import, in the order their files are written.
from compatlab.report import html, junit, summary, tables  # noqa: F401
from compatlab.report.history import History, classify, write_history
from compatlab.report.run import Run, find_runs, load_run
from compatlab.report.writers import Report, registered, write_all
from compatlab.results import RUNS_DIR, latest_run

__all__ = [
    "write_report",
    "write_history",
    "default_run",
    "Report",
    "Run",
    "History",
    "load_run",
    "find_runs",
    "classify",
    "registered",
]


def write_report(run_dir: Path, out: Path | None = None) -> list[Path]:
    """Write every registered report file for the run in ``run_dir`` into ``out``
    (default: the run folder itself); returns the paths written."""
    report = Report(load_run(run_dir))
    return write_all(report, out if out is not None else run_dir)


def default_run(root: Path = RUNS_DIR) -> Path:
    """The newest run under ``root``."""
    from compatlab.errors import ConfigError

    run = latest_run(root) if root.is_dir() else None
    if run is None:
        raise ConfigError(
            f"no runs under {root}: run `compatlab check` first, or name a run folder"
        )
    return run
