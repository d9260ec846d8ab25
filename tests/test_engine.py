"""The run engine: planning, one task's run, outcomes, the failure corpus, reproduce."""

from __future__ import annotations

import dataclasses
import json
import pickle
import shlex
from pathlib import Path
from typing import Any

import pytest

from compatlab.cli.main import build_parser
from compatlab.config import Config, parse_device_string
from compatlab.engine import (
    Context,
    Finding,
    Request,
    Status,
    Task,
    plan,
    promote,
    replay_corpus,
    reproduce_command,
    run_task,
)
from compatlab.engine.corpus import load_findings
from compatlab.engine.tasks import Shared
from compatlab.invariants import Case, Failure, get
from compatlab.results import ResultRecord, append, read_records
from compatlab.versions import ALL_VERSIONS, Version

V = Version.parse


def _request(
    *names: str,
    versions: tuple[Version, ...] = ALL_VERSIONS,
    devices: tuple[str | None, ...] = (None,),
    targets: tuple[Version, ...] | None = None,
    **context: Any,
) -> Request:
    return Request(
        invariants=names,
        versions=versions,
        devices=devices,
        targets=targets,
        context=Context(profile="dev", seed=1, **context),
    )


def test_the_plan_covers_every_ordered_pair() -> None:
    n = len(ALL_VERSIONS)
    assert len(plan(_request("same-version-round-trip"))) == n
    assert len(plan(_request("upgrade-round-trip"))) == n * (n - 1) // 2
    chain = plan(_request("upgrade-chain"))
    assert len(chain) == n * (n - 1) // 2
    assert all(V(u) < V(w) and V(u) <= V(v) <= V(w) for u, v, w in (t.versions for t in chain))
    # the middles are drawn, not fixed at one end
    assert len({t.versions[1] for t in chain}) > n // 2
    per_device = plan(
        _request("upgrade-round-trip", versions=(V("7.2"), V("10.0")), devices=("e1000", "nvme"))
    )
    assert [(t.versions, t.drivers) for t in per_device] == [
        (("7.2", "10.0"), ("e1000",)),
        (("7.2", "10.0"), ("nvme",)),
    ]


def test_a_device_type_a_version_lacks_plans_no_task() -> None:
    # vmxnet3 appeared after 1.4: no guest of 1.4 can have one.
    tasks = plan(
        _request("upgrade-round-trip", versions=(V("1.4"), V("10.0")), devices=("vmxnet3",))
    )
    assert tasks == []


def test_targets_pair_every_older_version_with_the_target_newest_first() -> None:
    tasks = plan(
        _request("upgrade-round-trip", versions=(V("9.0"), V("9.1"), V("9.2")), targets=(V("9.2"),))
    )
    assert [t.versions for t in tasks] == [("9.1", "9.2"), ("9.0", "9.2")]
    one = plan(
        _request("same-version-round-trip", versions=(V("9.0"), V("9.2")), targets=(V("9.2"),))
    )
    assert [t.versions for t in one] == [("9.2",)]


def test_tasks_are_plain_data() -> None:
    (task,) = plan(_request("upgrade-chain", versions=(V("2.4"), V("10.0")), devices=("nvme",)))
    assert pickle.loads(pickle.dumps(task)) == task
    # A shared counterexample travels with the task, guest writes and all.
    case = Case(
        (V("2.4"), V("9.0"), V("10.0")),
        Config((parse_device_string("nvme,id=d,serial=x"),)),
        {"writes": [(0x88, 1, 0x0F)]},
    )
    replaying = dataclasses.replace(task, shrink=False, replay=Shared(case, "elsewhere"))
    assert pickle.loads(pickle.dumps(replaying)) == replaying
    assert hash(replaying) == hash(dataclasses.replace(replaying, replay=None))


def _replan(command: str) -> list[Task]:
    """Plan what a ``compatlab check`` reproduce command asks for, as cmd_check does."""
    args = build_parser().parse_args(shlex.split(command)[1:])
    from compatlab.versions import version_range

    return plan(
        Request(
            invariants=tuple(args.invariant),
            versions=version_range(args.versions),
            context=Context(profile=args.profile, seed=args.seed),
            devices=tuple(args.device) or (None,),
        )
    )


@pytest.mark.parametrize(
    ("name", "devices"),
    [("same-version-round-trip", (None,)), ("upgrade-round-trip", ("e1000", "nvme")),
     ("upgrade-chain", ("nvme",)), ("upgrade-chain", (None,))],
)  # fmt: skip
def test_a_reproduce_command_plans_exactly_its_task(
    name: str, devices: tuple[str | None, ...]
) -> None:
    for task in plan(_request(name, devices=devices))[::97]:
        assert _replan(reproduce_command(task)) == [task]


def test_a_passing_run_records_its_examples() -> None:
    (task,) = plan(
        _request("upgrade-round-trip", versions=(V("7.2"), V("10.0")), devices=("e1000",))
    )
    outcome = run_task(task)
    assert outcome.status is Status.PASS
    assert outcome.examples >= 5  # the dev profile's budget
    assert outcome.failure is None
    record = outcome.record()
    assert (record.status, record.device, record.versions) == ("pass", "e1000", "7.2..10.0")
    assert record.reproduce == reproduce_command(task)


NVME_FINDING = Finding(("upgrade-round-trip",), "nvme", V("9.1"), "deverr enables became writable")


def _nvme_task(tmp_path: Path, **kw: Any) -> Task:
    (task,) = plan(
        _request(
            "upgrade-round-trip", versions=(V("7.2"), V("10.0")), devices=("nvme",),
            failures_dir=str(tmp_path / "failures"), **kw,
        )
    )  # fmt: skip
    return task


def test_a_real_compat_bug_fails_and_a_known_one_is_marked(tmp_path: Path) -> None:
    failed = run_task(_nvme_task(tmp_path))
    assert failed.status is Status.FAIL and failed.failed()
    assert failed.failure is not None
    assert failed.failure.driver == "nvme" and failed.failure.offset == 0x88
    assert failed.failure.config == (
        "nvme,id=dev0,serial=deadbeef",
    )  # shrunk to the minimal config
    # It carries the device's bytes on 10.0, to name the register without realizing.
    from compatlab.report.registers import field_name

    assert failed.failure.space_bytes is not None
    assert field_name(0x88, failed.failure.space_bytes).startswith(
        "capability area: PCI Express capability at "
    )
    (saved,) = (tmp_path / "failures" / "upgrade-round-trip").glob("*.json")
    assert failed.promoted == str(saved)
    assert json.loads(saved.read_text())["reproduce"] == failed.reproduce
    findings = tmp_path / "findings.toml"
    findings.write_text(
        '[[finding]]\ninvariants = ["upgrade-round-trip"]\ndriver = "nvme"\n'
        'changed_in = "9.1"\nreason = "deverr enables became writable"\n'
    )
    known = run_task(_nvme_task(tmp_path, findings=str(findings)))
    assert known.status is Status.KNOWN and known.note == NVME_FINDING.reason
    assert not known.failed() and known.failed(strict=True)


def test_a_task_that_does_not_shrink_gives_its_first_failure_as_found(tmp_path: Path) -> None:
    task = _nvme_task(tmp_path)
    found = run_task(dataclasses.replace(task, shrink=False))
    shrunk = run_task(task)
    assert found.status is shrunk.status is Status.FAIL
    assert not found.shrunk and shrunk.shrunk
    # The same search from the same seed, stopped before it shrank.
    assert found.examples < shrunk.examples
    assert found.case is not None and found.failure is not None
    assert found.failure.config == tuple(found.case.config.device_strings())
    assert found.promoted is None  # the corpus keeps minimal cases
    assert shrunk.promoted is not None


def test_a_focused_task_counts_only_failures_on_its_device_type(tmp_path: Path) -> None:
    task = _nvme_task(tmp_path)
    focused = run_task(dataclasses.replace(task, focus="nvme"))
    assert focused.status is Status.FAIL and focused.failure is not None
    assert focused.failure.driver == "nvme"
    # Every failure of this task is nvme's: focused elsewhere, none counts.
    assert run_task(dataclasses.replace(task, focus="e1000")).status is Status.PASS


def _other_nvme_task(*versions: str) -> Task:
    (task,) = plan(
        _request("upgrade-round-trip", versions=tuple(map(V, versions)), devices=("nvme",))
    )
    return task


def test_a_shared_counterexample_is_replayed_on_the_tasks_own_versions(tmp_path: Path) -> None:
    shrunk = run_task(_nvme_task(tmp_path))
    assert shrunk.case is not None and shrunk.failure is not None
    other = _other_nvme_task("8.0", "10.0")
    outcome = run_task(
        dataclasses.replace(other, shrink=False, replay=Shared(shrunk.case, shrunk.task.label))
    )
    assert outcome.status is Status.FAIL and outcome.failure is not None
    assert outcome.shared_from == shrunk.task.label
    assert shrunk.task.label in (outcome.note or "")
    assert not outcome.shrunk and outcome.examples == 1  # replayed, nothing searched
    assert outcome.failure.versions == ("8.0", "10.0")
    assert outcome.failure.config == shrunk.failure.config
    assert outcome.case is not None and outcome.case.versions == (V("8.0"), V("10.0"))


def test_a_shared_counterexample_that_holds_or_is_refused_leaves_the_task_to_search(
    tmp_path: Path,
) -> None:
    shrunk = run_task(_nvme_task(tmp_path))
    assert shrunk.case is not None
    # From 9.2 nvme does not change any more: the case holds, the task searches.
    holds = run_task(
        dataclasses.replace(_other_nvme_task("9.2", "10.0"), replay=Shared(shrunk.case, "x"))
    )
    assert holds.status is Status.PASS and holds.examples > 1 and holds.shared_from is None
    # A case the task's oldest version refuses is not the task's: it searches too.
    vmxnet3 = Case((V("10.0"), V("10.1")), Config((parse_device_string("vmxnet3,id=v"),)))
    (e1000,) = plan(
        _request("upgrade-round-trip", versions=(V("1.4"), V("10.0")), devices=("e1000",))
    )
    refused = run_task(dataclasses.replace(e1000, replay=Shared(vmxnet3, "x")))
    assert refused.status in (Status.PASS, Status.FAIL) and refused.shared_from is None
    assert refused.examples > 1


def test_a_profile_that_saves_writes_the_example_database(tmp_path: Path) -> None:
    database = tmp_path / "examples"
    run_task(_nvme_task(tmp_path, database=str(database)))  # dev: no database
    assert not database.exists()
    task = _nvme_task(tmp_path, database=str(database))
    outcome = run_task(
        dataclasses.replace(task, context=dataclasses.replace(task.context, profile="nightly"))
    )
    assert outcome.status is Status.FAIL
    assert any(p.is_file() for p in database.rglob("*"))


def test_an_error_is_an_outcome_not_a_verdict(tmp_path: Path) -> None:
    def broken(case: Case) -> bool:
        raise RuntimeError("a defect in a check")

    outcome = run_task(_nvme_task(tmp_path), excuse=broken)
    assert outcome.status is Status.ERROR and outcome.failed()
    assert "a defect in a check" in (outcome.note or "")


def test_findings_explain_only_upgrades_across_their_window() -> None:
    def failure(*versions: str, driver: str = "nvme") -> Failure:
        return Failure("upgrade-round-trip", versions, "dev0", "x", driver=driver)

    assert NVME_FINDING.explains(failure("7.2", "10.0"))
    assert not NVME_FINDING.explains(failure("9.1", "10.0"))
    assert not NVME_FINDING.explains(failure("7.2", "10.0", driver="e1000"))
    fixed = Finding(("upgrade-round-trip",), "nvme", V("6.0"), "msix", V("7.2"))
    assert fixed.explains(failure("5.2", "6.1"))
    assert not fixed.explains(failure("5.2", "7.2"))


def test_a_broken_findings_file_is_bad_input(tmp_path: Path) -> None:
    from compatlab.errors import InputError

    bad = tmp_path / "findings.toml"
    bad.write_text("[[finding]]\ninvariants = 3\n")
    with pytest.raises(InputError, match="not a findings file"):
        load_findings(str(bad))


def test_the_failure_corpus_is_replayed_as_still_failing_or_fixed(tmp_path: Path) -> None:
    inv = get("upgrade-round-trip")
    nvme = Case((V("7.2"), V("10.0")), Config((parse_device_string("nvme,id=d,serial=x"),)))
    e1000 = Case((V("7.2"), V("10.0")), Config((parse_device_string("e1000,id=e"),)))
    stub = Failure(inv.name, ("7.2", "10.0"), "d", "seeded")
    promote(inv.name, nvme, stub, tmp_path)
    promote(inv.name, e1000, stub, tmp_path)  # this one holds: reported fixed
    entries = {r.path.read_text().count("nvme") > 0: r for r in replay_corpus(tmp_path)}
    assert entries[True].still_failing
    assert not entries[False].still_failing and entries[False].detail == "fixed"
    saved = json.loads(next(tmp_path.glob("*/*.json")).read_text())
    assert set(saved) == {"invariant", "versions", "config", "extra", "failure", "reproduce"}


def test_guest_writes_survive_the_corpus(tmp_path: Path) -> None:
    inv = get("guest-write-equivalence")
    case = Case(
        (V("7.2"), V("10.0")),
        Config((parse_device_string("nvme,id=d,serial=x"),)),
        {"writes": [(0x88, 1, 0x0F)]},
    )
    promote(inv.name, case, Failure(inv.name, ("7.2", "10.0"), "d", "seeded"), tmp_path)
    (replay,) = replay_corpus(tmp_path)
    assert replay.still_failing  # the deverr write sticks on 10.0 only


def test_a_corrupt_corpus_entry_is_bad_input(tmp_path: Path) -> None:
    from compatlab.errors import InputError

    (tmp_path / "upgrade-round-trip").mkdir()
    (tmp_path / "upgrade-round-trip" / "x.json").write_text('{"invariant": "upgrade-round-trip"')
    with pytest.raises(InputError, match=r"x\.json: not a failure-corpus entry"):
        replay_corpus(tmp_path)


def test_records_of_a_killed_run_are_kept(tmp_path: Path) -> None:
    (task,) = plan(_request("same-version-round-trip", versions=(V("10.0"),)))
    record = run_task(task).record()
    append(tmp_path / "records-1.jsonl", record)
    with (tmp_path / "records-1.jsonl").open("a") as fh:
        fh.write('{"run_id": "torn')  # the process died mid-line
    assert list(read_records(tmp_path)) == [record]
    assert ResultRecord.from_json(record.to_json()) == record


def test_a_pool_never_has_more_workers_than_tasks_or_cpus_allow() -> None:
    from compatlab.engine.execute import pool_size, worker_limit

    assert pool_size(8, 3) == 3
    assert pool_size(10_000, 10**6) == worker_limit() >= 2
    assert pool_size(0, 5) == pool_size(1, 5) == 1  # here, in this process
    assert pool_size(4, 0) == 1


def _workers_of(pid: int) -> set[int]:
    """The pool workers (spawned interpreters) among the children of ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(ppid) == pid and state != "Z" and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_closing_execute_early_ends_its_workers_at_once(tmp_path: Path) -> None:
    """What the gate's --fail-fast does: the tasks not started are cancelled, the
    running ones terminated, no worker is left and no record written after."""
    import os

    from compatlab.engine.execute import execute

    tasks = plan(_request("same-version-round-trip", versions=ALL_VERSIONS))
    outcomes = execute(tasks, workers=2, run_dir=tmp_path)
    first = next(outcomes)
    workers = _workers_of(os.getpid())
    assert len(workers) == 2  # never more than asked, and both started
    outcomes.close()
    assert not _workers_of(os.getpid()) & workers
    written = sorted(read_records(tmp_path), key=lambda r: r.versions)
    assert first.record() in written and len(written) < len(tasks)
    assert {int(f.stem.removeprefix("records-")) for f in tmp_path.iterdir()} <= workers


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_execute_starts_no_more_workers_than_tasks(tmp_path: Path) -> None:
    import os

    from compatlab.engine.execute import execute

    tasks = plan(_request("same-version-round-trip", versions=(V("9.0"), V("10.0"))))
    seen: set[int] = set()
    for outcome in execute(tasks, workers=8, run_dir=tmp_path):
        seen |= _workers_of(os.getpid())
        assert outcome.status is Status.PASS
    assert 1 <= len(seen) <= len(tasks) == 2
    assert len(list(read_records(tmp_path))) == 2


def test_a_failing_config_keeps_its_vcpus_in_the_corpus_and_in_its_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure of a config with more vCPUs records them (``Failure.vcpus``, the
    corpus entry's ``vcpus``), prints them as ``-smp N`` and replays with them; an
    entry without them replays on one vCPU, as entries written before vcpus did."""
    from compatlab.engine.corpus import _vcpus

    devices = (parse_device_string("virtio-blk-pci,id=b,drive=d0"),)
    case = Case((Version(11, 1),), Config(devices, vcpus=4))
    failure = Failure(
        "same-version-round-trip",
        ("11.1",),
        "b",
        "x",
        config=("virtio-blk-pci,id=b,drive=d0",),
        vcpus=4,
    )
    assert Failure.from_json(json.loads(json.dumps(failure.to_json()))) == failure
    assert failure.options() == ["-smp 4", "-device virtio-blk-pci,id=b,drive=d0"]
    assert failure.minimal_config() == Config(devices, vcpus=4)
    four = promote("same-version-round-trip", case, failure, tmp_path)
    entry = json.loads(four.read_text())
    assert entry["vcpus"] == 4 and _vcpus(entry) == 4
    none = promote(
        "same-version-round-trip", Case(case.versions, Config(devices)), failure, tmp_path
    )
    assert none != four and "vcpus" not in json.loads(none.read_text())
    seen: list[int | None] = []
    inv = get("same-version-round-trip")
    monkeypatch.setattr(type(inv), "run", lambda self, c, system=None: seen.append(c.config.vcpus))
    replay_corpus(tmp_path)
    assert sorted(seen, key=str) == [4, None]
