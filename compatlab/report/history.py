"""Trends over many runs: which failures are new, fixed or flaky, and throughput.

A *test* is one (invariant, versions, device) triple; its outcome in a run is
``fail`` (any failing or erroring record), ``ok`` (passed or a known finding) or
absent. Over the runs a test appears in, oldest first:

- **flaky**: it came and went — two or more changes between fail and ok, or both
  outcomes within one run;
- **new**: fails in the latest run and never failed before;
- **fixed**: ran and held in the latest run, after failing before (one change);
- **still failing**: failed every time it ran, the latest run included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from itertools import pairwise
from pathlib import Path

from compatlab.errors import ConfigError
from compatlab.report.run import FAILING, Run, find_runs, iter_rows, load_run, run_time
from compatlab.report.templates import raw, render

Key = tuple[str, str, str]  # invariant, versions, device
CLASSES = ("new", "fixed", "flaky", "still failing")
_COLUMNS = ("invariant", "versions", "device", "status")


@dataclass(frozen=True)
class RunPoint:
    run_id: str
    examples: int
    seconds: float
    records: int
    failing: int

    @property
    def throughput(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0


@dataclass
class History:
    runs: list[RunPoint]
    changes: dict[str, list[Key]] = field(default_factory=dict)


def outcomes(run: Run) -> dict[Key, str]:
    """Per test: ``fail``, ``ok`` or ``mixed`` (both within this run)."""
    out: dict[Key, str] = {}
    for inv, versions, device, status in iter_rows(run.table, _COLUMNS):
        key = (str(inv), str(versions), str(device))
        now = "fail" if status in FAILING else "ok" if status in ("pass", "known") else None
        if now is None:
            continue
        before = out.get(key)
        out[key] = now if before in (None, now) else "mixed"
    return out


def classify(per_run: Sequence[dict[Key, str]]) -> dict[str, list[Key]]:
    """Sort tests into :data:`CLASSES` from their outcomes per run, oldest run first."""
    result: dict[str, list[Key]] = {c: [] for c in CLASSES}
    if not per_run:
        return result
    latest = per_run[-1]
    keys = sorted({k for outs in per_run for k in outs})
    for key in keys:
        seq = [outs[key] for outs in per_run if key in outs]
        if "fail" not in seq and "mixed" not in seq:
            continue
        changes = sum(a != b for a, b in pairwise(seq))
        now = latest.get(key)
        if "mixed" in seq or changes >= 2:
            result["flaky"].append(key)
        elif now == "fail" and changes == 0:
            result["still failing" if len(seq) > 1 else "new"].append(key)
        elif now == "fail":
            result["new"].append(key)
        elif now == "ok":
            result["fixed"].append(key)
    return result


def build_history(root: Path) -> tuple[History, list[Run]]:
    paths = find_runs(root)
    if not paths:
        raise ConfigError(f"{root}: no run folders in it (each has a meta.json or results.parquet)")
    runs = [load_run(p, columns=(*_COLUMNS, "examples", "seconds", "run_id")) for p in paths]
    runs.sort(key=lambda r: (r.run_id, str(r.path)))
    per_run = [outcomes(r) for r in runs]
    points = [
        RunPoint(
            r.run_id,
            r.examples,
            r.seconds,
            len(r.table),
            sum(1 for v in outs.values() if v != "ok"),
        )
        for r, outs in zip(runs, per_run, strict=True)
    ]
    return History(points, classify(per_run)), runs


# -- rendering ---------------------------------------------------------------------------


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def throughput_svg(points: Sequence[RunPoint], width: int = 720, height: int = 240) -> str:
    """An inline SVG line plot of examples per second, one point per run."""
    left, right, top, bottom = 64, 16, 16, 40
    w, h = width - left - right, height - top - bottom
    values = [p.throughput for p in points]
    top_value = max(values, default=0.0) * 1.1 or 1.0
    n = len(points)

    def x(i: int) -> float:
        return left + (w * i / (n - 1) if n > 1 else w / 2)

    def y(v: float) -> float:
        return top + h - h * v / top_value

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="examples per second per run">',
        f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#999"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = top_value * frac
        parts.append(
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:,.0f}</text>'
            f'<line x1="{left}" y1="{y(v):.1f}" x2="{left + w}" y2="{y(v):.1f}" '
            'stroke="#eee"/>'
        )
    parts.append(
        f'<text x="12" y="{top + h / 2:.0f}" transform="rotate(-90 12 {top + h / 2:.0f})" '
        'text-anchor="middle">examples/s</text>'
    )
    if n > 1:
        coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline points="{coords}" fill="none" stroke="#0969da" stroke-width="2"/>')
    for i, (p, v) in enumerate(zip(points, values, strict=True)):
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="#0969da">'
            f"<title>{_e(p.run_id)}: {v:,.0f} examples/s</title></circle>"
        )
    label_every = max(1, n // 6)
    for i, p in enumerate(points):
        if i % label_every == 0 or i == n - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{top + h + 16}" text-anchor="middle">'
                f"{_e(run_time(p.run_id)[:10])}</text>"
            )
    parts.append("</svg>")
    return "\n".join(parts)


def _key_text(key: Key) -> str:
    inv, versions, device = key
    return f"{inv} {versions}" + ("" if device == "*" else f" [{device}]")


def _changes_html(history: History) -> str:
    out: list[str] = []
    for cls in CLASSES:
        keys = history.changes.get(cls, [])
        items = "".join(f"<li><code>{_e(_key_text(k))}</code></li>" for k in keys[:500])
        more = f"<li>… and {len(keys) - 500} more</li>" if len(keys) > 500 else ""
        body = f"<ul>{items}{more}</ul>" if keys else "<p class='muted'>none</p>"
        out.append(f"<h3>{_e(cls)} ({len(keys)})</h3>{body}")
    return "\n".join(out)


def _runs_html(history: History) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(p.run_id)}</code></td><td>{_e(run_time(p.run_id))}</td>"
        f"<td class='num'>{p.records:,}</td><td class='num'>{p.failing:,}</td>"
        f"<td class='num'>{p.examples:,}</td><td class='num'>{p.seconds:,.1f}</td>"
        f"<td class='num'>{p.throughput:,.0f}</td></tr>"
        for p in history.runs
    )
    return (
        '<table class="grid"><thead><tr><th>run</th><th>started</th><th class="num">records</th>'
        '<th class="num">failing tests</th><th class="num">examples</th><th class="num">s</th>'
        f'<th class="num">examples/s</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _verdict(history: History) -> tuple[str, str]:
    c = {k: len(v) for k, v in history.changes.items()}
    text = (
        f"{len(history.runs)} runs · {c['new']} new, {c['fixed']} fixed, {c['flaky']} flaky, "
        f"{c['still failing']} still failing"
    )
    return ("bad" if c["new"] or c["still failing"] else "ok"), text


def _changes_md(history: History, limit: int = 10) -> str:
    lines: list[str] = []
    for cls in CLASSES:
        keys = history.changes.get(cls, [])
        if not keys:
            continue
        lines.append(f"**{cls}** ({len(keys)})")
        lines += [f"- `{_key_text(k)}`" for k in keys[:limit]]
        if len(keys) > limit:
            lines.append(f"- … and {len(keys) - limit} more in history.html")
        lines.append("")
    return "\n".join(lines) or "No failures in any run."


def write_history(root: Path, out: Path | None = None) -> list[Path]:
    """Write ``history.html`` and ``history.md`` for the runs under ``root`` into ``out``
    (default: ``root``)."""
    history, _ = build_history(root)
    out = out if out is not None else root
    out.mkdir(parents=True, exist_ok=True)
    verdict_class, verdict = _verdict(history)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    page = render(
        "history.html",
        title=_e(f"compatlab history of {root}"),
        style=raw("style.css"),
        verdict_class=verdict_class,
        verdict=_e(verdict),
        plot=throughput_svg(history.runs),
        changes=_changes_html(history),
        runs=_runs_html(history),
        generated=_e(generated),
    )
    html_path = out / "history.html"
    html_path.write_text(page, encoding="utf-8")
    rates = ", ".join(f"{p.throughput:,.0f}" for p in history.runs[-10:])
    md = render(
        "history.md",
        verdict=verdict,
        runs_line=f"examples/s over the last {min(10, len(history.runs))} runs: {rates}",
        changes=_changes_md(history),
    )
    md_path = out / "history.md"
    md_path.write_text(md.rstrip() + "\n", encoding="utf-8")
    return [html_path, md_path]
