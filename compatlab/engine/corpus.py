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
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from compatlab.config import Config, parse_device_string
from compatlab.errors import CompatlabError, ConfigError
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
    """The findings in ``path`` (none for None or a missing file); cached per path."""
    if path is None or not Path(path).is_file():
        return ()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return tuple(
            Finding(
                tuple(f["invariants"]),
                f["driver"],
                Version.parse(f["changed_in"]),
                f["reason"],
                Version.parse(f["fixed_in"]) if "fixed_in" in f else None,
            )
            for f in data.get("finding", [])
        )
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a findings file ({type(exc).__name__}: {exc})") from None


def explaining(findings: Iterable[Finding], failure: Failure) -> Finding | None:
    return next((f for f in findings if f.explains(failure)), None)


# -- the failure corpus -------------------------------------------------------------------


def _extra_to_json(extra: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in extra.items():
        if isinstance(value, Hints):
            out[key] = {"hints": encode(value).hex()}
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
            out[key] = decode(bytes.fromhex(value["hints"]))
        elif key == "writes":
            out[key] = [tuple(v) for v in value]
        else:
            out[key] = value
    return out


def promote(
    name: str, case: Case, failure: Failure, root: Path, *, reproduce: str | None = None
) -> Path:
    """Keep a failing case as a readable corpus file (named by its content)."""
    entry = {
        "invariant": name,
        "versions": [str(v) for v in case.versions],
        "config": case.config.device_strings(),
        "extra": _extra_to_json(case.extra),
        "failure": failure.to_json(),
        "reproduce": reproduce,
    }
    text = json.dumps(entry, indent=2, sort_keys=True) + "\n"
    digest = hashlib.sha256(
        json.dumps([name, entry["versions"], entry["config"], entry["extra"]]).encode()
    ).hexdigest()[:12]
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


def replay_corpus(root: Path, invariants: Iterable[str] | None = None) -> list[Replay]:
    """Re-run every saved failing case; each is still failing or fixed."""
    wanted = set(invariants) if invariants is not None else None
    known = registered()
    out: list[Replay] = []
    for path in sorted(root.glob("*/*.json")):
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            name = entry["invariant"]
            if (wanted is not None and name not in wanted) or name not in known:
                continue
            case = Case(
                tuple(Version.parse(v) for v in entry["versions"]),
                Config(tuple(parse_device_string(s) for s in entry["config"])),
                _extra_from_json(entry.get("extra", {})),
            )
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: not a failure-corpus entry ({exc})") from None
        except CompatlabError as exc:
            raise ConfigError(f"{path}: not a failure-corpus entry ({exc})") from None
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
