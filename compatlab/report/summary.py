"""``summary.md``: a few lines for a pull-request comment."""

from __future__ import annotations

import re
from pathlib import Path

from compatlab.report.html import duration
from compatlab.report.registers import field_name
from compatlab.report.templates import render
from compatlab.report.writers import Report, writer

# A pull-request comment shows this many failures; report.html has them all.
MAX_LISTED = 5


def counts_line(report: Report) -> str:
    c = report.counts
    return (
        f"{report.records:,} runs: {c['pass']:,} passed, **{c['fail']:,} failed**, "
        f"{c['error']:,} errors, {c['known']:,} known, {c['skip']:,} skipped"
    )


def _invariants(report: Report) -> str:
    frame = report.per_invariant
    bad = frame[(frame["fail"] > 0) | (frame["error"] > 0)]
    if not len(bad):
        return ""
    lines = ["| invariant | runs | failed | errors | known |", "|---|--:|--:|--:|--:|"]
    for name, row in bad.iterrows():
        runs = int(row.sum())
        lines.append(
            f"| `{name}` | {runs} | {int(row['fail'])} | {int(row['error'])} | {int(row['known'])} |"
        )
    return "\n".join(lines) + "\n"


def _failures(report: Report) -> str:
    groups = report.failures
    if not groups:
        return ""
    lines = [f"**{len(groups)} distinct failures**" if len(groups) > 1 else "**1 failure**"]
    for g in groups[:MAX_LISTED]:
        f = g.failure
        where = ""
        if f is not None and f.offset is not None:
            where = f" (offset {f.offset:#04x}, {field_name(f.offset, g.space)})"
        times = f" ×{g.count}" if g.count > 1 else ""
        pair = "..".join(f.versions) if f else str(g.record.get("versions"))
        lines.append(f"- `{g.invariant}` {pair}{times}: {g.detail}{where}")
        if g.reproduce:
            lines.append(f"  `{g.reproduce}`")
    if len(groups) > MAX_LISTED:
        lines.append(f"- … and {len(groups) - MAX_LISTED} more in report.html")
    return "\n".join(lines) + "\n"


def _known(report: Report) -> str:
    if not report.known:
        return ""
    runs = sum(n for _, n, _ in report.known)
    first = [reason.splitlines()[0] if reason else "?" for reason, _, _ in report.known]
    lines = [f"{len(report.known)} known findings ({runs} runs):"]
    lines += [f"- {line[:160]}" for line in first[:MAX_LISTED]]
    return "\n".join(lines) + "\n"


def verdict(report: Report) -> str:
    """The headline: an incomplete run never says that all invariants hold."""
    incomplete = report.run.incomplete
    if incomplete is None:
        return "all invariants hold" if report.ok else "invariants FAILED"
    found = "no invariant failed in the runs done" if report.ok else "invariants FAILED"
    return f"INCOMPLETE run ({incomplete}); {found}"


@writer("summary.md")
def write_summary(report: Report, out: Path) -> Path:
    run, meta = report.run, report.run.meta
    versions = report.versions
    text = render(
        "summary.md",
        verdict=verdict(report),
        counts_line=counts_line(report),
        profile=meta.get("profile"),
        seed=meta.get("seed"),
        versions=f"{versions[0]}…{versions[-1]}" if versions else "none",
        duration=duration(run.seconds),
        rate=f"{run.throughput:,.0f}",
        invariants=_invariants(report),
        failures=_failures(report),
        known=_known(report),
    )
    path = out / "summary.md"
    path.write_text(re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n", encoding="utf-8")
    return path
