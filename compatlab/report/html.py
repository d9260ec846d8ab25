"""``report.html``: one self-contained page (inline CSS, tables for heatmaps, no scripts)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from compatlab.report.registers import bits, register_diff, register_kind
from compatlab.report.run import STATUSES, Cell, FailureGroup, run_time
from compatlab.report.templates import raw, render
from compatlab.report.writers import Report, writer

# Beyond this many distinct failures the page lists the count and points at results.csv.
MAX_FAILURES = 500

_LABELS = {
    "pass": "pass",
    "fail": "fail",
    "known": "known finding",
    "error": "error",
    "skip": "skipped",
    "none": "not run",
}


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def kv_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return (
        f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"
    )


def _meta(report: Report) -> str:
    run, meta = report.run, report.run.meta
    versions = report.versions
    span = f"{versions[0]} … {versions[-1]} ({len(versions)} versions)" if versions else "none"
    devices = ", ".join(str(d) for d in meta.get("devices") or []) or "*"
    rows = [
        ("run", f"<code>{_e(run.run_id)}</code>"),
        ("started", _e(run_time(run.run_id))),
        ("profile", f"<code>{_e(meta.get('profile'))}</code>"),
        ("seed", f"<code>{_e(meta.get('seed'))}</code>"),
        ("versions", _e(span)),
        ("invariants", _e(len(report.invariants))),
        ("devices", _e(devices)),
        ("workers", _e(meta.get("workers", "?"))),
        ("duration", _e(duration(run.seconds))),
        ("examples", f"{run.examples:,} ({run.throughput:,.0f} examples/s)"),
        ("records", f"{report.records:,}"),
    ]
    if run.incomplete is not None:
        rows.append(("incomplete", _e(run.incomplete)))
    if meta.get("corpus_replayed"):
        still = meta.get("corpus_still_failing") or []
        rows.append(
            ("failure corpus", f"{meta['corpus_replayed']} replayed, {len(still)} still failing")
        )
    return kv_table(rows)


def _counts(report: Report) -> str:
    cells = "".join(
        f'<td class="num c-{s}">{report.counts[s]:,} {_e(_LABELS[s])}</td>' for s in STATUSES
    )
    return f'<table class="grid"><tr>{cells}</tr></table>'


def legend() -> str:
    items = "".join(
        f'<span class="sw s-{s}"></span>{_e(_LABELS[s])}'
        for s in ("pass", "fail", "error", "known", "skip", "none")
    )
    return f'<p class="legend">{items}</p>'


def heatmap(name: str, cells: dict[tuple[str, str], Cell], order: list[str]) -> str:
    rank = {v: i for i, v in enumerate(order)}
    rows_v = sorted({vf for vf, _ in cells}, key=lambda v: rank.get(v, len(rank)))
    cols_v = sorted({vt for _, vt in cells}, key=lambda v: rank.get(v, len(rank)))
    head = "".join(f"<th>{_e(v)}</th>" for v in cols_v)
    body: list[str] = []
    for vf in rows_v:
        tds: list[str] = []
        for vt in cols_v:
            cell = cells.get((vf, vt))
            if cell is None:
                tds.append(f'<td class="s-none" title="{_e(vf)} → {_e(vt)}: not run"></td>')
                continue
            what = _LABELS[cell.status]
            extra = f", {cell.failing} failing" if cell.failing else ""
            tds.append(
                f'<td class="s-{cell.status}" title="{_e(vf)} → {_e(vt)}: {what} '
                f'({cell.runs} run{"s" if cell.runs != 1 else ""}{extra})"></td>'
            )
        body.append(f"<tr><th>{_e(vf)}</th>{''.join(tds)}</tr>")
    return (
        f'<div class="map"><h3>{_e(name)}</h3>'
        f'<table class="heat"><thead><tr><th></th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _devices(report: Report) -> str:
    frame: Any = report.devices
    invariants = report.invariants
    head = "".join(f"<th>{_e(n)}</th>" for n in invariants)
    rows: list[str] = []
    for device in sorted({str(d) for d in frame.index.get_level_values("device")}):
        tds: list[str] = []
        for inv in invariants:
            if (device, inv) not in frame.index:
                tds.append('<td class="muted">–</td>')
                continue
            counts = {s: int(frame.at[(device, inv), s]) for s in STATUSES}
            worst = next((s for s in STATUSES if counts[s]), "skip")
            runs = sum(counts.values())
            shown = [f"{counts[s]} {s}" for s in ("fail", "error", "known") if counts[s]]
            text = ", ".join(shown) if shown else f"{counts['pass']} pass"
            title = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
            tds.append(f'<td class="num c-{worst}" title="{_e(title)} of {runs}">{_e(text)}</td>')
        rows.append(f"<tr><th><code>{_e(device)}</code></th>{''.join(tds)}</tr>")
    return (
        f'<table class="grid"><thead><tr><th>device</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def diff_table(group: FailureGroup) -> str:
    f = group.failure
    if f is None or f.offset is None:
        return ""
    kind = register_kind(f.detail)
    rows = []
    for d in register_diff(f, group.space):
        exp = "?" if d.expected is None else f"{d.expected:#04x} ({d.expected:08b})"
        act = "?" if d.actual is None else f"{d.actual:#04x} ({d.actual:08b})"
        rows.append(
            f"<tr><td><code>{_e(kind)}</code></td><td class='mono'>{d.offset:#05x}</td>"
            f"<td>{_e(d.field)}</td><td class='mono exp'>{_e(exp)}</td>"
            f"<td class='mono act'>{_e(act)}</td><td>{_e(bits(d.changed_bits))}</td></tr>"
        )
    return (
        '<table class="grid diff"><thead><tr><th>register</th><th>offset</th><th>field</th>'
        "<th>expected</th><th>actual</th><th>changed</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def failure_block(group: FailureGroup) -> str:
    f = group.failure
    rec = group.record
    versions = f.versions if f else ()
    pair = "..".join(versions) if versions else str(rec.get("versions"))
    driver = f.driver if f and f.driver else None
    device = (f.device if f else None) or rec.get("device")
    where = f"device {_e(device)}" + (f" ({_e(driver)})" if driver else "")
    times = f" · {group.count} runs failed this way" if group.count > 1 else ""
    seen = ", ".join(group.versions)
    parts = [
        f'<div class="failure {_e(group.status)}">',
        f"<h3>{_e(group.status.upper())} {_e(group.invariant)} {_e(pair)} · {where}{times}</h3>",
        f'<p class="detail">{_e(group.detail)}</p>',
    ]
    if group.count > 1:
        parts.append(f'<p class="muted">version pairs: {_e(seen)}</p>')
    if f and f.config:
        config = " \\\n  ".join(f.options())
        parts.append(f"<p>minimal counterexample:</p><pre>{_e(config)}</pre>")
    parts.append(diff_table(group))
    if group.status == "error" and rec.get("note") and f is not None:
        parts.append(f"<pre>{_e(rec['note'])}</pre>")
    if group.reproduce:
        parts.append(f"<p>reproduce:</p><pre>{_e(group.reproduce)}</pre>")
    parts.append("</div>")
    return "\n".join(p for p in parts if p)


def _failures(report: Report) -> str:
    groups = report.failures
    if not groups:
        return "<p>No failures.</p>"
    total = sum(g.count for g in groups)
    intro = (
        f"<p>{total:,} failing runs, {len(groups):,} distinct failures "
        "(same invariant, same counterexample).</p>"
    )
    blocks = [failure_block(g) for g in groups[:MAX_FAILURES]]
    if len(groups) > MAX_FAILURES:
        blocks.append(
            f"<p>… and {len(groups) - MAX_FAILURES:,} more distinct failures: see results.csv.</p>"
        )
    return intro + "\n".join(blocks)


def _known(report: Report) -> str:
    if not report.known:
        return "<p>None.</p>"
    items = [
        f"<li><p>{runs} run{'s' if runs != 1 else ''} "
        f"({_e(', '.join(invs))})</p><pre>{_e(reason)}</pre></li>"
        for reason, runs, invs in report.known
    ]
    return f"<ul>{''.join(items)}</ul>"


def verdict(report: Report) -> tuple[str, str]:
    """(CSS class, headline); an incomplete run never says that all invariants hold."""
    c = report.counts
    incomplete = report.run.incomplete
    failed = f"{c['fail']:,} failed, {c['error']:,} errors of {report.records:,} runs"
    if incomplete is not None:
        found = f"no invariant failed in the {report.records:,} runs done" if report.ok else failed
        return "bad", f"INCOMPLETE run ({incomplete}); {found}"
    if report.ok:
        known = f", {c['known']} known findings" if c["known"] else ""
        return "ok", f"all invariants hold ({c['pass']:,} passed{known})"
    return "bad", failed


@writer("report.html")
def write_html(report: Report, out: Path) -> Path:
    verdict_class, text = verdict(report)
    maps = [
        heatmap(name, report.heatmaps[name], report.versions)
        for name in report.invariants
        if name in report.heatmaps
    ]
    page = render(
        "report.html",
        title=_e(f"compatlab report {report.run.run_id}"),
        style=raw("style.css"),
        verdict_class=verdict_class,
        verdict=_e(text),
        meta=_meta(report),
        counts=_counts(report),
        legend=legend(),
        heatmaps="\n".join(maps),
        devices=_devices(report),
        failures=_failures(report),
        known=_known(report),
        generated=_e(report.generated),
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
