"""What a run remembers: known findings, and the failure corpus.

Known findings (``findings.toml``) are real compat bugs in QEMU that the model
reproduces on purpose; a failure one explains is ``known``, not ``fail``.

Failures are promoted to a failure corpus as readable JSON (the minimal config,
the versions and whatever else the case held, with the command that found it) and
every run replays that corpus first, reporting each entry as still failing or
fixed. Hypothesis' own example database is kept too (for profiles that save to
it), but its format changes across Hypothesis releases; the corpus does not.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from compatlab.config import Config, check_vcpus, parse_device_string
from compatlab.errors import CompatlabError, CorpusError
from compatlab.hints import Hints, decode, encode
from compatlab.invariants.registry import Case, Failure, Violation, registered
from compatlab.versions import Version

# -- known findings ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """A guest-visible change QEMU made in ``changed_in`` without compat, for upgrades
    that land before ``fixed_in`` (if QEMU fixed it later)."""

    invariant: tuple[str, ...]
    driver: str
    changed_in: Version
    reason: str
    fixed_in: Version | None = None

    def explains(self, failure: Failure) -> bool:
        if failure.invariant not in self.invariant or not self._covers(failure.driver):
            return False
        versions = [Version.parse(v) for v in failure.versions]
        return any(
            a < self.changed_in <= b and (self.fixed_in is None or b < self.fixed_in)
            for i, a in enumerate(versions)
            for b in versions[i + 1 :]
        )

    def _covers(self, driver: str | None) -> bool:
        """The finding's driver, or a subtype of it (a finding on pci-device covers all)."""
        if driver is None:
            return False
        if driver == self.driver:
            return True
        from compatlab.catalogue import active_catalogue

        cat = active_catalogue()
        return driver in cat.types and self.driver in cat.types and cat.is_a(driver, self.driver)


@cache
def load_findings(path: str | None) -> tuple[Finding, ...]:
    """The findings in ``path`` (none for None or a missing file); cached per path.

    The file is read as any user file is (:mod:`compatlab.inputs`: a regular file of at
    most 16 MiB, nested at most 32 levels); a path that exists but is not such a
    file, or a finding whose keys do not hold what they should, is a
    :class:`~compatlab.errors.CorpusError` naming the file and the key.
    """
    if path is None or not os.path.lexists(path):
        return ()
    from compatlab.inputs import read_toml

    data = read_toml(path, what="findings file", error=CorpusError)
    try:
        return tuple(_finding(f, f"finding[{n}]") for n, f in enumerate(_list(data, "finding")))
    except _Malformed as exc:
        raise CorpusError(f"{path}: not a findings file ({exc})") from None


class _Malformed(Exception):
    """A key that does not hold what its format says (the caller adds the file)."""


def _get(table: Mapping[str, Any], key: str, kind: type, where: str, default: Any = None) -> Any:
    from compatlab.inputs import kind_of

    if key not in table:
        if default is not None:
            return default
        raise _Malformed(f"{where}: missing {key!r}" if where else f"missing {key!r}")
    value = table[key]
    if not isinstance(value, kind):
        wanted = {"str": "a string", "list": "a list", "dict": "a table"}[kind.__name__]
        raise _Malformed(f"{_path(where, key)} must be {wanted}, not {kind_of(value)}")
    return value


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _list(table: Any, key: str) -> list[Any]:
    if not isinstance(table, dict):
        raise _Malformed("expected a table")
    return list(_get(table, key, list, "", default=[]))


def _strings(table: Mapping[str, Any], key: str, where: str) -> list[str]:
    from compatlab.inputs import kind_of

    items = _get(table, key, list, where)
    for n, item in enumerate(items):
        if not isinstance(item, str):
            raise _Malformed(f"{_path(where, key)}[{n}] must be a string, not {kind_of(item)}")
    return list(items)


def _version(table: Mapping[str, Any], key: str, where: str) -> Version:
    text = _get(table, key, str, where)
    try:
        return Version.parse(text)
    except CompatlabError as exc:
        raise _Malformed(f"{_path(where, key)}: {exc}") from None


def _finding(item: Any, where: str) -> Finding:
    from compatlab.inputs import kind_of

    if not isinstance(item, dict):
        raise _Malformed(f"{where} must be a table, not {kind_of(item)}")
    return Finding(
        tuple(_strings(item, "invariants", where)),
        _get(item, "driver", str, where),
        _version(item, "changed_in", where),
        _get(item, "reason", str, where),
        _version(item, "fixed_in", where) if "fixed_in" in item else None,
    )


def explaining(findings: Iterable[Finding], failure: Failure) -> Finding | None:
    return next((f for f in findings if f.explains(failure)), None)


# -- the failure corpus -------------------------------------------------------------------


def _extra_to_json(extra: Mapping[str, Any]) -> dict[str, Any]:
    from compatlab.oracles.capture import CaptureRecord

    out: dict[str, Any] = {}
    for key, value in extra.items():
        if isinstance(value, Hints):
            out[key] = {"hints": encode(value).hex()}
        elif isinstance(value, CaptureRecord):
            out[key] = {"capture": value.to_json()}
        elif isinstance(value, list | tuple):
            out[key] = [list(v) if isinstance(v, tuple) else v for v in value]
        else:
            out[key] = value
    return out


def _extra_from_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`_extra_to_json`."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and "hints" in value:
            blob = _get(value, "hints", str, f"extra.{key}")
            try:
                out[key] = decode(bytes.fromhex(blob))
            except ValueError:
                raise _Malformed(f"extra.{key}.hints is not hex") from None
        elif isinstance(value, dict) and "capture" in value:
            out[key] = _capture(value["capture"], f"extra.{key}.capture")
        elif key == "writes":
            out[key] = [tuple(v) for v in _writes(value)]
        else:
            out[key] = value
    return out


def _capture(value: Any, where: str) -> Any:
    """The capture record a case held (a recorded real-QEMU answer)."""
    from compatlab.oracles.capture import CaptureRecord, capture_problem

    problem = capture_problem(value)
    if problem is not None:
        raise _Malformed(f"{where}: not a capture record ({problem})")
    return CaptureRecord.from_json(value)


def _writes(value: Any) -> list[list[int]]:
    from compatlab.inputs import kind_of

    if not isinstance(value, list):
        raise _Malformed(f"extra.writes must be a list, not {kind_of(value)}")
    for n, write in enumerate(value):
        if not isinstance(write, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in write
        ):
            raise _Malformed(f"extra.writes[{n}] must be a list of integers, not {kind_of(write)}")
    return value


def _vcpus(entry: dict[str, Any]) -> int | None:
    """The entry's vCPU count (None: its config gives none)."""
    if "vcpus" not in entry:
        return None
    try:
        return check_vcpus(entry["vcpus"], "vcpus")
    except CompatlabError as exc:
        raise _Malformed(str(exc)) from None


def promote(
    name: str, case: Case, failure: Failure, root: Path, *, reproduce: str | None = None
) -> Path:
    """Keep a failing case as a readable corpus file (named by its content)."""
    entry: dict[str, Any] = {
        "invariant": name,
        "versions": [str(v) for v in case.versions],
        "config": case.config.device_strings(),
        "extra": _extra_to_json(case.extra),
        "failure": failure.to_json(),
        "reproduce": reproduce,
    }
    named = [name, entry["versions"], entry["config"], entry["extra"]]
    if case.config.vcpus is not None:
        # Absent from entries of configs that give none, as before vcpus existed.
        entry["vcpus"] = case.config.vcpus
        named.append(case.config.vcpus)
    text = json.dumps(entry, indent=2, sort_keys=True) + "\n"
    digest = hashlib.sha256(json.dumps(named).encode()).hexdigest()[:12]
    path = root / name / f"{digest}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True, slots=True)
class Replay:
    path: Path
    invariant: str
    still_failing: bool
    detail: str


def _version_text(text: str, n: int) -> Version:
    try:
        return Version.parse(text)
    except CompatlabError as exc:
        raise _Malformed(f"versions[{n}]: {exc}") from None


def replay_corpus(root: Path, invariants: Iterable[str] | None = None) -> list[Replay]:
    """Re-run every saved failing case; each is still failing or fixed.

    Each entry is read as any user file is (:mod:`compatlab.inputs`); one that is not
    a regular JSON file, or whose keys do not hold what they should, is a
    :class:`~compatlab.errors.CorpusError` naming it and the key.
    """
    from compatlab.inputs import read_json

    wanted = set(invariants) if invariants is not None else None
    known = registered()
    out: list[Replay] = []
    for path in sorted(root.glob("*/*.json")):
        entry = read_json(path, what="failure-corpus entry", error=CorpusError)
        try:
            if not isinstance(entry, dict):
                from compatlab.inputs import kind_of

                raise _Malformed(f"expected a table, not {kind_of(entry)}")
            name = _get(entry, "invariant", str, "")
            if (wanted is not None and name not in wanted) or name not in known:
                continue
            case = Case(
                tuple(_version_text(v, n) for n, v in enumerate(_strings(entry, "versions", ""))),
                Config(
                    tuple(parse_device_string(s) for s in _strings(entry, "config", "")),
                    _vcpus(entry),
                ),
                _extra_from_json(_get(entry, "extra", dict, "", default={})),
            )
        except (_Malformed, CompatlabError) as exc:
            raise CorpusError(f"{path}: not a failure-corpus entry ({exc})") from None
        try:
            known[name].run(case)
        except Violation as violation:
            out.append(Replay(path, name, True, violation.failure.detail))
            continue
        except Exception as exc:
            out.append(Replay(path, name, True, f"{type(exc).__name__}: {exc}"))
            continue
        out.append(Replay(path, name, False, "fixed"))
    return out
