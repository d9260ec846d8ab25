"""Property-based tests of the candidate gate: Hypothesis writes the candidates.

A generated candidate changes the default of one guest-visible property of one
device type, to a value the device accepts and that a guest can see (checked on
the device alone). Filed with the history entry that keeps the old value for
older machine types, the gate must accept it; without the entry, reject it and
name that property. Shrinks towards the first device type and property."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compatlab import profiles
from compatlab.catalogue import builtin_catalogue
from compatlab.catalogue.candidate import apply_candidate, parse_candidate
from compatlab.config import Config, DeviceSpec
from compatlab.errors import CompatlabError
from compatlab.gate import candidate_gate
from compatlab.realize import realize
from compatlab.versions import Version
from strategies.configs import required_pairs
from strategies.suite import accepted_values

profiles.register()  # at module level: the gate loads profiles inside the tests below

CAT = builtin_catalogue()
NEWEST = CAT.versions[-1]
CANDIDATE = Version(NEWEST.major, NEWEST.minor + 1)


def _alone(driver: str, extra: tuple[tuple[str, str], ...] = ()) -> Config:
    return Config(
        (DeviceSpec(driver, "dev0", None, (*required_pairs(CAT, driver, NEWEST, 0), *extra)),)
    )


@st.composite
def default_changes(draw: st.DrawFn) -> tuple[str, str, str, str]:
    """(driver, property, owner type, new value) of a guest-visible default change."""
    driver = draw(st.sampled_from(CAT.devices(NEWEST)))
    props = CAT.properties(driver, NEWEST)
    visible = sorted(n for n, p in props.items() if p.guest_visible and n != "multifunction")
    name = draw(st.sampled_from(visible))
    prop = props[name]
    now = CAT.default(driver, name, NEWEST)
    values = [v for v in accepted_values(CAT, driver, name, (NEWEST,)) if prop.type.parse(v) != now]
    value = draw(st.sampled_from(values)) if values else None
    try:
        visible_change = value is not None and (
            realize(_alone(driver, ((name, value),)), NEWEST).devices[0].space
            != realize(_alone(driver), NEWEST).devices[0].space
        )
    except CompatlabError:
        visible_change = False
    if not visible_change:
        draw(st.nothing())  # the change would not be a guest-visible one
    assert value is not None
    return driver, name, prop.owner or driver, value


def _candidate(driver: str, name: str, owner: str, value: str, *, entry: bool) -> object:
    data: dict[str, object] = {
        "version": str(CANDIDATE),
        "types": {driver: {"properties": {name: {"default": value}}}},
    }
    if entry:
        old = CAT.properties(driver, NEWEST)[name].type.format(CAT.default(driver, name, NEWEST))
        data["compat"] = [
            {
                "machine_version": str(NEWEST),
                "driver": driver,
                "property": name,
                "value": old,
            }
        ]
    return apply_candidate(parse_candidate(data, "<generated>"))


_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.nested_given,  # the gate runs Hypothesis itself, on purpose
    ],
)
BASELINES = [Version.parse(v) for v in ("2.4", "7.2", str(NEWEST))]


@_SETTINGS
@given(default_changes())
def test_a_default_change_with_its_entry_is_accepted(change: tuple[str, str, str, str]) -> None:
    driver, name, owner, value = change
    cc = _candidate(driver, name, owner, value, entry=True)
    verdict = candidate_gate(cc, profile="dev", baselines=BASELINES, drivers=(driver,))  # type: ignore[arg-type]
    assert verdict.passed, [f.explanation.lines or f.failure.detail for f in verdict.failures]


@_SETTINGS
@given(default_changes())
def test_a_default_change_without_its_entry_is_rejected(change: tuple[str, str, str, str]) -> None:
    driver, name, owner, value = change
    cc = _candidate(driver, name, owner, value, entry=False)
    verdict = candidate_gate(  # type: ignore[arg-type]
        cc, profile="dev", baselines=[NEWEST], drivers=(driver,), fail_fast=True
    )
    assert not verdict.passed
    said = [line for f in verdict.failures for line in f.explanation.lines]
    assert any(f"{driver}.{name} changed" in line for line in said), said
