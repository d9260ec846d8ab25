"""Machine types as data: the pc-i440fx machine types each release offers
(compatlab/catalogue/data/machines.toml), what the resolver and the planner make of
a deleted one, and the data checked against every installed binary."""

from __future__ import annotations

import pytest

from compatlab.catalogue import builtin_catalogue
from compatlab.catalogue.loader import parse_removals
from compatlab.catalogue.model import MachineRemoval
from compatlab.config import Config, parse_device_string
from compatlab.engine.tasks import Context, Request, plan
from compatlab.errors import CatalogueError, ConfigError
from compatlab.realize import realize
from compatlab.versions import ALL_VERSIONS, Version
from tests.conftest import require_qemu

V = Version.parse
CAT = builtin_catalogue()


def test_a_release_offers_from_its_oldest_machine_type_up_to_itself() -> None:
    for release in ALL_VERSIONS:
        offered = CAT.machine_types(release)
        assert offered[-1] == release
        assert offered[0] == CAT.oldest_machine(release)
        assert offered == tuple(v for v in ALL_VERSIONS if offered[0] <= v <= release)
    # a deletion holds for every later release: the oldest machine type only ascends
    floors = [CAT.oldest_machine(v) for v in ALL_VERSIONS]
    assert floors == sorted(floors)
    assert floors[0] == ALL_VERSIONS[0] and floors[-1] > ALL_VERSIONS[0]


def test_removal_of_names_the_release_that_deleted_the_machine_type() -> None:
    for removal in CAT.removals:
        gone = [v for v in ALL_VERSIONS if v < removal.oldest]
        assert CAT.removal_of(removal.oldest, removal.release) is None
        before = CAT.versions[CAT.versions.index(removal.release) - 1]
        newly = [v for v in gone if v >= CAT.oldest_machine(before)]
        assert newly, f"{removal.release} deletes nothing the release before it had"
        for machine in newly:
            assert CAT.removal_of(machine, before) is None
            assert CAT.removal_of(machine, removal.release) == removal
        assert removal.evidence


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"release": "9.1", "oldest": "9.2", "evidence": "x"}], "newer than its release"),
        (
            [
                {"release": "9.1", "oldest": "2.4", "evidence": "x"},
                {"release": "9.0", "oldest": "2.6", "evidence": "x"},
            ],
            "must both ascend",
        ),
        (
            [
                {"release": "9.1", "oldest": "2.4", "evidence": "x"},
                {"release": "10.1", "oldest": "2.4", "evidence": "x"},
            ],
            "must both ascend",
        ),
        ([{"release": "9.1", "oldest": "2.4"}], "evidence"),
        ([{"release": "9.9", "oldest": "2.4", "evidence": "x"}], "9.9"),
    ],
    ids=["oldest-newer", "release-descends", "oldest-repeats", "no-evidence", "unknown-version"],
)
def test_a_bad_machines_table_is_a_catalogue_error(
    rows: list[dict[str, str]], message: str
) -> None:
    with pytest.raises(CatalogueError, match=message):
        parse_removals({"removal": rows}, "machines.toml")


def test_parse_removals_reads_what_it_is_given() -> None:
    rows = [{"release": "9.1", "oldest": "2.4", "evidence": "a patch"}]
    assert parse_removals({"removal": rows}, "m") == (
        MachineRemoval(V("9.1"), V("2.4"), "a patch"),
    )


def test_a_deleted_machine_type_is_refused_as_qemu_refuses_it() -> None:
    config = Config((parse_device_string("e1000"),))
    newest = ALL_VERSIONS[-1]
    oldest_kept = CAT.oldest_machine(newest)
    assert realize(config, newest, defaults_at=oldest_kept).devices
    gone = CAT.versions[CAT.versions.index(oldest_kept) - 1]
    removal = CAT.removal_of(gone, newest)
    assert removal is not None
    with pytest.raises(ConfigError) as info:
        realize(config, newest, defaults_at=gone)
    assert f"has no machine type {gone.machine_type}" in str(info.value)
    assert f"{removal.release} deleted" in str(info.value)
    # stored hints need no machine type: a guest of a deleted one still upgrades
    from compatlab.resolve import dump_hints

    hints = dump_hints(config, gone)
    assert realize(config, newest, hints=hints).devices


def _plan(name: str, versions: tuple[Version, ...]) -> list[tuple[str, ...]]:
    request = Request(invariants=(name,), versions=versions, context=Context(profile="dev", seed=1))
    return [t.versions for t in plan(request)]


def test_machine_type_upgrade_is_planned_only_where_the_machine_type_survives() -> None:
    newest = ALL_VERSIONS[-1]
    kept = CAT.oldest_machine(newest)
    gone = CAT.versions[CAT.versions.index(kept) - 1]
    pairs = _plan("machine-type-upgrade", (gone, kept, newest))
    assert pairs == [(str(gone), str(kept)), (str(kept), str(newest))]
    # the hints path has no machine type to lose
    assert len(_plan("upgrade-round-trip", (gone, kept, newest))) == 3
    every = _plan("machine-type-upgrade", ALL_VERSIONS)
    assert all(CAT.removal_of(V(u), V(w)) is None for u, w in every)
    n = len(ALL_VERSIONS)
    assert len(every) == sum(
        1
        for i, u in enumerate(ALL_VERSIONS)
        for w in ALL_VERSIONS[i + 1 :]
        if u >= CAT.oldest_machine(w)
    )
    assert len(every) < n * (n - 1) // 2


@pytest.mark.qemu
@pytest.mark.parametrize("release", ["5.2", "7.2", "10.0", "11.1"])
def test_the_machine_types_of_each_binary_are_the_catalogues(release: str) -> None:
    """What ``-machine help`` lists is what data/machines.toml says the release offers."""
    binary = require_qemu(release)
    assert tuple(binary.machines) == CAT.machine_types(binary.version)
