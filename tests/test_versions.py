from __future__ import annotations

import pytest

from compatlab.errors import UnknownVersionError
from compatlab.versions import ALL_VERSIONS, NEWEST, OLDEST, Version, known_version, version_range


def test_catalogue_has_the_42_i440fx_versions() -> None:
    # DESIGN.md §1: 1.4–1.7, 2.0–2.12, 3.0–3.1, 4.0–4.2, 5.0–5.2, 6.0–6.2, 7.0–7.2, 8.0–8.2, 9.0–9.2,
    # 10.0–10.2, 11.0–11.1
    assert len(ALL_VERSIONS) == 42
    assert (str(OLDEST), str(NEWEST)) == ("1.4", "11.1")
    assert {"2.12", "3.0", "3.1", "9.2", "10.1", "10.2", "11.0"} <= {str(v) for v in ALL_VERSIONS}
    assert {"3.2", "10.3"} & {str(v) for v in ALL_VERSIONS} == set()


def test_versions_compare_numerically_part_by_part() -> None:
    assert Version.parse("2.9") < Version.parse("2.12") < Version.parse("3.0")
    assert Version.parse("9.2") < Version.parse("10.0")
    assert list(ALL_VERSIONS) == sorted(ALL_VERSIONS)


@pytest.mark.parametrize(
    "text",
    ["", "10", "1.2.3", "x.y", "2.13", "11.2", "1.3", " "],
    ids=["empty", "no-minor", "three-parts", "letters", "no-2.13", "future", "too-old", "blank"],
)
def test_unknown_versions_are_refused(text: str) -> None:
    with pytest.raises(UnknownVersionError):
        known_version(text)


def test_did_you_mean_for_a_near_miss() -> None:
    with pytest.raises(UnknownVersionError, match="did you mean"):
        known_version("2.13")


def test_version_ranges() -> None:
    assert [str(v) for v in version_range("10.0..")] == ["10.0", "10.1", "10.2", "11.0", "11.1"]
    assert [str(v) for v in version_range("..1.5")] == ["1.4", "1.5"]
    assert [str(v) for v in version_range("7.2,2.4")] == ["2.4", "7.2"]
