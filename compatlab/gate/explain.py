"""Why a candidate release fails an invariant: the property behind it, and the
history entry that would fix it.

The failing invariant says itself how it loads a case on the candidate
(:meth:`~compatlab.invariants.registry.Invariant.upgraded`), so nothing here
knows any invariant by name. Every property whose value the builder sees
differently on the source and on the candidate is tried alone: set back to the
source's value, does the device come out as the source's? The history entry that
fixes the candidate is then the value the source had, for every version from the
source up to the newest one where the candidate's machine-type view still
disagrees.

Each explanation also names its :class:`Cause` values: what the failure comes down
to, as keys the gate compares. Failures of one invariant that share a cause share
one shrunk counterexample (:func:`compatlab.gate.candidate.candidate_gate`), so an
explanation must be cheap and must work on a failure as first found, before it
is shrunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from compatlab.catalogue import Catalogue, using_catalogue
from compatlab.catalogue.candidate import CandidateCatalogue
from compatlab.config import Config
from compatlab.errors import (
    CompatlabError,
    PropertyValueError,
    UnknownDeviceError,
    UnknownPropertyError,
)
from compatlab.invariants.registry import Case, Failure, get
from compatlab.pci.config_space import ConfigSpace
from compatlab.realize import RealizedDevice, build_device, builder_values, realize_resolved
from compatlab.resolve import resolve
from compatlab.versions import Version


@dataclass(frozen=True, slots=True)
class Cause:
    """One thing a failure comes down to, as a key:

    - ``entry``: property ``prop`` of ``driver`` is seen differently on the
      candidate (the history entry it misses);
    - ``builder``: no property of ``driver`` explains the difference;
    - ``refused``: the candidate refuses the config: the device type ``driver``
      (``prop`` None), or its property ``prop``, keyed by the type that declares
      the property, so that one removal is one cause on every subtype.
    """

    kind: Literal["entry", "builder", "refused"]
    driver: str | None
    prop: str | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    """What the gate says about one failure: lines naming the missing entries, the
    register-level diff of the failing device (source against candidate), and the
    causes behind it (none when the failure cannot be explained)."""

    lines: tuple[str, ...] = ()
    registers: tuple[dict[str, Any], ...] = ()
    causes: tuple[Cause, ...] = ()

    def shares_cause(self, other: Explanation) -> bool:
        """Whether the two failures come down to one thing at least."""
        return not set(self.causes).isdisjoint(other.causes)


def _device(
    cat: Catalogue, config: Config, version: Version, device: str | None, **load: Any
) -> tuple[RealizedDevice, dict[str, Any], int] | None:
    """The failing device as realized, every value its builder saw, and the machine's
    vCPU count."""
    resolved = resolve(config, version, catalogue=cat, **load)
    realized = realize_resolved(resolved, catalogue=cat)
    for dev, rd in zip(resolved.devices, realized.devices, strict=True):
        if device is None or dev.identity == device:
            return rd, builder_values(dev, version, cat), resolved.vcpu_count
    return None


def _same(a: ConfigSpace, b: ConfigSpace) -> bool:
    return all(getattr(a, k) == getattr(b, k) for k in ("config", "wmask", "w1cmask", "cmask"))


def space_diff(src: ConfigSpace, dst: ConfigSpace) -> list[dict[str, Any]]:
    """Every differing byte of the four images, with the register it belongs to."""
    from compatlab.report.registers import field_name

    regs: list[dict[str, Any]] = []
    for kind in ("config", "wmask", "w1cmask", "cmask"):
        a, b = getattr(src, kind), getattr(dst, kind)
        for off in (i for i in range(len(a)) if a[i] != b[i]):
            regs.append(
                {
                    "image": kind,
                    "offset": off,
                    "field": field_name(off, dst),
                    "expected": f"{a[off]:02x}",
                    "actual": f"{b[off]:02x}",
                }
            )
    return regs


def explain(cc: CandidateCatalogue, failure: Failure) -> Explanation:
    """The entries the candidate misses for ``failure``, and the device's register diff."""
    inv = get(failure.invariant)
    versions = tuple(Version.parse(v) for v in failure.versions)
    if len(versions) < 2 or failure.driver is None:
        return Explanation()
    cat = cc.catalogue
    old, new = versions[0], versions[-1]
    config = failure.minimal_config()
    with using_catalogue(cat):
        try:
            load = inv.upgraded(Case(versions, config))
            if load is None:
                return Explanation()
            src = _device(cat, config, old, failure.device)
            dst = _device(cat, config, new, failure.device, **load)
        except CompatlabError as exc:
            return Explanation(
                (f"{new} refuses the config: {exc}",),
                causes=(_refusal(cat, exc, old, failure.driver),),
            )
        if src is None or dst is None:
            return Explanation()
        (src_dev, src_vals, _), (dst_dev, dst_vals, vcpus) = src, dst
        regs = space_diff(src_dev.space, dst_dev.space)
        differing = sorted(
            p for p in set(src_vals) | set(dst_vals) if src_vals.get(p) != dst_vals.get(p)
        )

        def fixes(values: dict[str, Any]) -> bool:
            try:
                return _same(build_device(dst_dev.device, values, cat, vcpus), src_dev.space)
            except (CompatlabError, TypeError, ValueError, KeyError):
                return False

        culprits = [p for p in differing if fixes({**dst_vals, p: src_vals.get(p)})]
        if not culprits and differing and fixes({**dst_vals, **src_vals}):
            culprits = differing
        driver = failure.driver
        lines = [
            _entry_needed(cc, driver, p, old, src_vals.get(p), dst_vals.get(p)) for p in culprits
        ]
        causes = [Cause("entry", driver, p) for p in culprits]
        if not culprits:
            lines.append(
                f"no property of {driver} explains the difference: the candidate changed "
                "behaviour that only a builder change could cause"
            )
            causes.append(Cause("builder", driver))
    return Explanation(tuple(lines), tuple(regs[:32]), tuple(causes))


def _refusal(cat: Catalogue, exc: CompatlabError, old: Version, driver: str | None) -> Cause:
    """What the candidate refuses: a device type, or a property keyed by the type
    that declared it on the source version."""
    if isinstance(exc, UnknownPropertyError | PropertyValueError):
        declared = (
            cat.properties(exc.driver, old).get(exc.name) if exc.driver in cat.types else None
        )
        return Cause("refused", (declared.owner if declared else "") or exc.driver, exc.name)
    if isinstance(exc, UnknownDeviceError):
        return Cause("refused", exc.driver)
    return Cause("refused", getattr(exc, "driver", None) or driver)


def _entry_needed(
    cc: CandidateCatalogue, driver: str, prop: str, old: Version, was: Any, now: Any
) -> str:
    cat, base = cc.catalogue, cc.base
    n = cc.version
    fmt = _formatter(cat, driver, prop, n)
    released = [v for v in base.versions if v >= old]
    upto = old
    for v in released:
        before = base.all_values_at(driver, v).get(prop, was)
        if before == was and cat.default(driver, prop, v, as_of=n) != was:
            upto = v
        else:
            break
    props_at_old = base.properties(driver, old)
    internal = prop not in cat.properties(driver, n)
    if internal:
        return (
            f"{driver}: behaviour {prop} changed {fmt(was)} → {fmt(now)} in {n} without a "
            f"compat property; make it a property with a history entry {prop}={fmt(was)} "
            f"for versions ≤ {upto}"
        )
    if prop in props_at_old:
        return (
            f"{driver}.{prop} changed {fmt(was)} → {fmt(now)} in {n}; versions ≤ {upto} "
            f"need a history entry {prop}={fmt(was)}"
        )
    return (
        f"{driver}.{prop} is new in {n} (default {fmt(now)}) and changes what guests of "
        f"versions ≤ {upto} see; they need a history entry {prop}={fmt(was)}"
    )


def _formatter(cat: Catalogue, driver: str, prop: str, version: Version) -> Any:
    props = cat.properties(driver, version)
    if prop in props:
        ptype = props[prop].type
        return lambda v: "(unset)" if v is None else ptype.format(v)
    return lambda v: "on" if v is True else "off" if v is False else str(v)
