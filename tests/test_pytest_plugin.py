"""The pytest plugin: ``pytest --compatlab`` runs the invariant suite as tests.

Each scenario runs pytest in a subprocess (pytester), so the Hypothesis profiles the
plugin loads never leak into this session. The plugin comes from the package's
``pytest11`` entry point, as it does for a user.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

pytest_plugins = ["pytester"]

SMALL = (
    "--compatlab",
    "--compatlab-versions",
    "7.2,10.0",
    "--compatlab-invariant",
    "same-version-round-trip",
    "--compatlab-invariant",
    "upgrade-round-trip",
    "--compatlab-device",
    "e1000",
)
# One item per version for one-version invariants, one per ordered pair U < V otherwise
# (as compatlab check plans them), and one per device type.
SMALL_IDS = [
    "same-version-round-trip[7.2-e1000]",
    "same-version-round-trip[10.0-e1000]",
    "upgrade-round-trip[7.2->10.0-e1000]",
]
# The real finding: QEMU 9.1 made nvme's Device Control error-reporting enables (0x88,
# bits 0-3) guest-writable on every machine type, without a compat property.
NVME = (
    "--compatlab",
    "--compatlab-versions",
    "2.4,10.0",
    "--compatlab-invariant",
    "upgrade-round-trip",
    "--compatlab-device",
    "nvme",
)
REPRODUCE = (
    "reproduce: compatlab check --invariant upgrade-round-trip --versions 2.4,10.0 "
    "--device nvme --seed * --profile dev --strict"
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HYPOTHESIS_PROFILE", "CI", "COMPATLAB_REQUIRE_QEMU", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def passed_ids(result: pytest.RunResult) -> list[str]:
    """Item ids of the ``-rA`` short summary, sorted (xdist runs them in any order)."""
    prefix = "PASSED compatlab::"
    return sorted(line[len(prefix) :] for line in result.stdout.lines if line.startswith(prefix))


def summary_row(result: pytest.RunResult, invariant: str) -> list[int]:
    """items, pass, fail, known, skip, error, examples from the plugin's summary."""
    for line in result.stdout.lines:
        fields = line.split()
        if fields and fields[0] == invariant and len(fields) == 9:
            return [int(f) for f in fields[1:8]]
    raise AssertionError(f"no summary row for {invariant}:\n{result.stdout.str()}")


def test_small_suite_passes_one_item_per_version_tuple(pytester: pytest.Pytester) -> None:
    result = run(pytester, *SMALL, "--hypothesis-profile", "dev", "-rA")
    result.assert_outcomes(passed=3)
    assert passed_ids(result) == sorted(SMALL_IDS)
    # dev runs 5 examples per item.
    assert summary_row(result, "same-version-round-trip") == [2, 2, 0, 0, 0, 0, 10]
    assert summary_row(result, "upgrade-round-trip") == [1, 1, 0, 0, 0, 0, 5]


def test_records_survive_xdist(pytester: pytest.Pytester) -> None:
    xml = pytester.path / "junit.xml"
    result = run(
        pytester, *SMALL, "--hypothesis-profile", "dev", "-n", "2", f"--junitxml={xml}", "-rA"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*2 workers [[]3 items[]]*"])
    assert passed_ids(result) == sorted(SMALL_IDS)
    # Counted on the controller from the workers' reports.
    assert summary_row(result, "same-version-round-trip") == [2, 2, 0, 0, 0, 0, 10]
    records = {
        case.get("name"): json.loads(prop.get("value", ""))
        for case in ET.parse(xml).iter("testcase")
        for prop in case.iter("property")
        if prop.get("name") == "compatlab"
    }
    assert sorted(records) == sorted(SMALL_IDS)
    chain = records["upgrade-round-trip[7.2->10.0-e1000]"]
    assert chain["versions"] == ["7.2", "10.0"]
    assert chain["drivers"] == ["e1000"]
    assert (chain["status"], chain["examples"], chain["failure"]) == ("pass", 5, None)


def test_without_the_option_nothing_is_added(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_own():\n    assert True\n")
    result = run(pytester, "--compatlab-versions", "7.2,10.0", "-v")
    result.assert_outcomes(passed=1)
    assert "compatlab::" not in result.stdout.str()
    assert "invariant suite" not in result.stdout.str()


def test_collection_covers_every_invariant_and_filters_apply(pytester: pytest.Pytester) -> None:
    result = run(
        pytester, "--compatlab", "--compatlab-versions", "7.2,10.0", "--co", "-q",
        "-k", "upgrade-chain",
    )  # fmt: skip
    # One-version invariants x 2 versions + multi-version ones x 1 pair;
    # upgrade-chain's items name the ends U < W.
    from compatlab.invariants import registered

    suite = registered().values()
    items = sum(2 if inv.arity == 1 else 1 for inv in suite)
    result.stdout.fnmatch_lines(
        [
            "compatlab::upgrade-chain[[]7.2->10.0[]]",
            f"1/{items} tests collected ({items - 1} deselected)*",
        ]
    )


def test_only_the_suite_is_collected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_own():\n    assert False\n")
    args = ("--compatlab", "--compatlab-versions", "10.0", "--compatlab-invariant",
            "same-version-round-trip", "--compatlab-device", "e1000")  # fmt: skip
    result = run(pytester, *args, "--hypothesis-profile", "dev")
    result.assert_outcomes(passed=1, deselected=1)


FINDINGS = """
[[finding]]
invariants = ["upgrade-round-trip"]
driver = "nvme"
changed_in = "9.1"
reason = "nvme Device Control error-reporting enables became writable"
"""


@pytest.fixture
def findings(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A findings file that explains the nvme failure, in a data folder of the project's
    own (a relative $COMPATLAB_CORPORA is taken from the rootdir)."""
    pytester.mkdir("data")
    (pytester.path / "data" / "findings.toml").write_text(FINDINGS)
    monkeypatch.setenv("COMPATLAB_CORPORA", "data")


@pytest.mark.usefixtures("findings")
def test_real_finding_fails_with_a_readable_report_under_strict(pytester: pytest.Pytester) -> None:
    result = run(pytester, *NVME, "--hypothesis-profile", "dev", "--compatlab-strict")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ upgrade-round-trip[[]2.4->10.0-nvme[]] _*",
            "invariant upgrade-round-trip violated on 2.4 -> 10.0",
            "  device:    dev* (nvme)",
            # nvme's first difference from 2.4 to 10.0: the power-management
            # capability 7.1 added at 0x60 (corpora/findings.toml)
            "  detail:    2.4 hints loaded on 10.0: config differs at 0x60",
            "  offset:    0x60  expected 00  actual 01",
            "  minimal config:",
            "    -device nvme,*",
            f"  {REPRODUCE}",
        ]
    )
    assert summary_row(result, "upgrade-round-trip")[:6] == [1, 0, 1, 0, 0, 0]
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.usefixtures("findings")
def test_a_failures_reproduce_command_replays_it(pytester: pytest.Pytester) -> None:
    """The reproduce line, pasted in a shell where the test ran, fails the same way."""
    import os
    import shutil
    import subprocess
    import sys

    result = run(pytester, *NVME, "--hypothesis-profile", "dev", "--compatlab-strict")
    (line,) = [s for s in result.stdout.lines if s.startswith("  reproduce: compatlab check")]
    command = line.removeprefix("  reproduce: ")
    shell = command if shutil.which("compatlab") else f"{sys.executable} -m {command}"
    env = {**os.environ, "COMPATLAB_FAILURES_DIR": str(pytester.path / "failures")}
    proc = subprocess.run(
        f"{shell} --no-report --out runs", shell=True, cwd=pytester.path, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    # The same case: one run, the same detail and the same minimal config.
    assert "check: 1 runs (1 invariants, 2 versions, profile dev" in proc.stderr
    detail = next(s for s in result.stdout.lines if s.startswith("  detail:"))
    config = next(s for s in result.stdout.lines if s.startswith("    -device "))
    assert f"  {detail.split(':', 1)[1].strip()}" in proc.stdout.splitlines()
    assert f"  minimal config: {config.strip()}" in proc.stdout.splitlines()
    assert f"  reproduce: {command}" in proc.stdout.splitlines()


@pytest.mark.usefixtures("findings")
def test_known_finding_is_an_expected_failure(pytester: pytest.Pytester) -> None:
    result = run(pytester, *NVME, "--hypothesis-profile", "dev", "-rx")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(
        ["XFAIL *upgrade-round-trip[[]2.4->10.0-nvme[]]*known finding: nvme Device Control*"]
    )
    assert summary_row(result, "upgrade-round-trip")[:6] == [1, 0, 0, 1, 0, 0]
    assert result.ret == pytest.ExitCode.OK


def test_the_packages_findings_are_known_without_a_data_folder(pytester: pytest.Pytester) -> None:
    result = run(pytester, *NVME, "--hypothesis-profile", "dev", "-rx")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(
        ["XFAIL *upgrade-round-trip[[]2.4->10.0-nvme[]]*known finding: QEMU 9.1*"]
    )


def test_profile_is_compatlabs_even_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    args = ("--compatlab", "--compatlab-versions", "10.0", "--compatlab-invariant",
            "same-version-round-trip", "--compatlab-device", "e1000")  # fmt: skip
    default = run(pytester, *args)
    default.stdout.fnmatch_lines(["*profile dev*"])
    # dev's 5 examples, not Hypothesis' ci profile (100, derandomized) nor compatlab's ci (12).
    assert summary_row(default, "same-version-round-trip") == [1, 1, 0, 0, 0, 0, 5]
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
    from_env = run(pytester, *args)
    assert summary_row(from_env, "same-version-round-trip")[6] == 12
    option = run(pytester, *args, "--hypothesis-profile", "gate")
    option.stdout.fnmatch_lines(["*profile gate*"])
    assert summary_row(option, "same-version-round-trip")[6] == 25


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--compatlab-invariant", "upgrade-roundtrip"), "*did you mean 'upgrade-round-trip'?"),
        (("--compatlab-device", "e100"), "*unknown device 'e100'; did you mean 'e1000'?"),
        (("--compatlab-versions", "10.0..7.2"), "*selects no version"),
        (("--hypothesis-profile", "nighty"), "*did you mean 'nightly'?"),
    ],
    ids=["invariant", "device", "versions", "profile"],
)
def test_bad_selection_is_a_usage_error(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    # In-process is safe: the plugin rejects these before touching Hypothesis' settings.
    result = pytester.runpytest_inprocess("--compatlab", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


QEMU_SKIP_CONFTEST = """
import compatlab.engine.run as engine

engine._qemu_binaries = lambda: ()  # as if no QEMU binary were installed
"""


@pytest.mark.parametrize("required", [False, True], ids=["optional", "required"])
def test_qemu_items_skip_without_a_binary_or_a_recorded_capture(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, required: bool
) -> None:
    pytester.makeconftest(QEMU_SKIP_CONFTEST)
    monkeypatch.setenv("COMPATLAB_CORPORA", str(pytester.mkdir("no-data")))
    if required:
        monkeypatch.setenv("COMPATLAB_REQUIRE_QEMU", "1")
    result = run(
        pytester, "--compatlab", "--compatlab-versions", "2.4", "--compatlab-invariant",
        "model-matches-qemu", "-rsf",
    )  # fmt: skip
    reason = (
        "*model-matches-qemu needs a QEMU binary offering pc-i440fx-2.4 (found: none)*"
        "(no recorded capture under *no-data/qemu covers it)*"
    )
    if required:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines([f"real QEMU is mandatory here: {reason[1:]}"])
        assert summary_row(result, "model-matches-qemu")[:6] == [1, 0, 0, 0, 0, 1]
    else:
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines([reason])
        assert summary_row(result, "model-matches-qemu")[:6] == [1, 0, 0, 0, 1, 0]


def test_qemu_items_check_the_recorded_captures_without_a_binary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin runs what ``check`` runs: with no binary, the captures shipped with
    the package are the evidence (every one for the version and type: many examples)."""
    pytester.makeconftest(QEMU_SKIP_CONFTEST)
    monkeypatch.delenv("COMPATLAB_CORPORA", raising=False)
    result = run(
        pytester, "--compatlab", "--compatlab-versions", "2.5", "--compatlab-invariant",
        "model-matches-qemu", "--compatlab-device", "e1000",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    items, passed, *_, examples = summary_row(result, "model-matches-qemu")
    assert (items, passed) == (1, 1) and examples > 1
