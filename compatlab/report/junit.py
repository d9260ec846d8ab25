"""``junit.xml``: one testcase per record (invariant, version pair, device).

Failures and errors become ``<failure>`` and ``<error>``; known findings and skips
become ``<skipped>`` with the reason as message. One ``<testsuite>`` per invariant,
serialized one at a time so a million records never sit in one element tree.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from compatlab.report.run import iter_rows
from compatlab.report.writers import Report, writer

_COLUMNS = ("invariant", "versions", "device", "status", "seconds", "failure", "reproduce", "note")


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _failure_text(failure: str | None, reproduce: str | None, note: str | None) -> tuple[str, str]:
    """(message, body) for a failing record."""
    if failure:
        try:
            data = json.loads(failure)
        except json.JSONDecodeError:
            data = {"detail": failure}
        lines = [str(data.get("detail", ""))]
        if data.get("offset") is not None:
            lines.append(
                f"offset {int(data['offset']):#04x}: expected {data.get('expected')}, "
                f"actual {data.get('actual')}"
            )
        if data.get("config"):
            lines.append("minimal config: " + " ".join(f"-device {c}" for c in data["config"]))
        message = lines[0]
    else:
        message = _first_line(note) or "failed"
        lines = [note or "failed"]
    if reproduce:
        lines.append(f"reproduce: {reproduce}")
    return message, "\n".join(lines)


@writer("junit.xml")
def write_junit(report: Report, out: Path) -> Path:
    table = report.run.table
    counts = report.counts
    path = out / "junit.xml"
    with path.open("w", encoding="utf-8") as fh:
        root = ET.Element(
            "testsuites",
            name="compatlab",
            tests=str(report.records),
            failures=str(counts["fail"]),
            errors=str(counts["error"]),
            skipped=str(counts["known"] + counts["skip"]),
            time=f"{report.run.seconds:.3f}",
        )
        head = ET.tostring(root, encoding="unicode")
        fh.write('<?xml version="1.0" encoding="utf-8"?>\n')
        fh.write(head.removesuffix(" />") + ">\n")
        for name, part in table.groupby("invariant", sort=False, observed=True):
            fh.write(ET.tostring(_suite(str(name), part), encoding="unicode"))
            fh.write("\n")
        fh.write("</testsuites>\n")
    return path


def _suite(name: str, part: object) -> ET.Element:
    rows = list(iter_rows(part, _COLUMNS))
    statuses = [r[3] for r in rows]
    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(rows)),
        failures=str(statuses.count("fail")),
        errors=str(statuses.count("error")),
        skipped=str(statuses.count("known") + statuses.count("skip")),
        time=f"{sum(float(r[4] or 0) for r in rows):.3f}",
    )
    classname = f"compatlab.{name}"
    for _, versions, device, status, seconds, failure, reproduce, note in rows:
        label = versions if device in (None, "*") else f"{versions} [{device}]"
        case = ET.SubElement(
            suite, "testcase", classname=classname, name=label, time=f"{float(seconds or 0):.4f}"
        )
        if status in ("fail", "error"):
            message, body = _failure_text(failure, reproduce, note)
            tag = "failure" if status == "fail" else "error"
            el = ET.SubElement(case, tag, message=message, type=f"compatlab.{tag}")
            el.text = body
        elif status == "known":
            ET.SubElement(
                case, "skipped", message=f"known finding: {_first_line(note)}", type="known"
            )
        elif status == "skip":
            ET.SubElement(case, "skipped", message=_first_line(note) or "skipped")
    return suite
