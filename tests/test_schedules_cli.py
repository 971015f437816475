"""``riaktq schedule ...`` against a SQLite file, and a queue that runs what it stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riaktq_py import SqliteStore
from riaktq_py.cli import main
from riaktq_py.store.url import open_store
from riaktq_py.testing import FakeClock, drive
from tests.backends import riak_double
from tests.schedule_helpers import SECOND, queue


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "tasks.db")


def test_add_get_list_update_pause_resume_delete(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    code, out, err = run(
        capsys, "--store", db, "schedule", "add", "nightly", "--cron", "30 2 * * *",
        "--timezone", "Europe/Berlin", "--handler", "echo", "--input", '{"x": 1}',
        "--priority", "4", "--misfire", "all", "--catchup", "3600", "--json",
    )  # fmt: skip
    assert (code, err) == (0, "")
    added = json.loads(out)
    assert added["cron"] == "30 2 * * *" and added["timezone"] == "Europe/Berlin"
    assert (added["input"], added["priority"], added["misfire"], added["catchup"]) == (
        {"x": 1}, 4, "all", 3600,
    )  # fmt: skip
    assert added["next_due"] > added["created"]
    got = json.loads(run(capsys, "--store", db, "schedule", "get", "nightly", "--json")[1])
    assert got == added
    code, out, _ = run(capsys, "--store", db, "schedule", "list")
    assert code == 0 and out.splitlines()[0].split() == [
        "name", "timing", "route", "paused", "last", "due", "next", "due",
    ]  # fmt: skip
    assert "cron '30 2 * * *' in Europe/Berlin" in out
    code, out, _ = run(
        capsys, "--store", db, "schedule", "update", "nightly", "--interval", "600", "--json"
    )
    updated = json.loads(out)
    assert (updated["interval"], updated["cron"], updated["priority"]) == (600, None, 4)
    paused = json.loads(run(capsys, "--store", db, "schedule", "pause", "nightly", "--json")[1])
    assert paused["paused"] is True and paused["next_due"] is None
    code, out, _ = run(capsys, "--store", db, "schedule", "resume", "nightly")
    assert code == 0 and "paused     no" in out
    assert run(capsys, "--store", db, "schedule", "delete", "nightly")[1] == (
        "deleted schedule 'nightly'\n"
    )
    code, out, err = run(capsys, "--store", db, "schedule", "list", "--json")
    assert (code, json.loads(out)) == (0, [])


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["add", "s", "--cron", "61 * * * *", "--handler", "e"], 1, "invalid cron expression"),
        (["add", "s", "--cron", "* * * * *", "--timezone", "Nowhere/City", "--tags", "a"], 1,
         "unknown timezone 'Nowhere/City'"),
        (["add", "s", "--interval", "0", "--tags", "a"], 2, "must be >= 1"),
        (["add", "s", "--tags", "a"], 2, "one of the arguments --cron --interval is required"),
        (["add", "s", "--cron", "* * * * *", "--interval", "5"], 2, "not allowed with argument"),
        (["add", "s", "--interval", "5"], 1, "needs a handler or tags"),
        (["add", "s", "--interval", "5", "--tags", "a", "--misfire", "all"], 1,
         "misfire 'all' needs a catch-up window"),
        (["get", "missing"], 1, "no schedule 'missing'"),
        (["delete", "missing"], 1, "no schedule 'missing'"),
        (["occurrences", "missing"], 1, "no schedule 'missing'"),
    ],
)  # fmt: skip
def test_bad_arguments_give_a_clear_error(
    capsys: pytest.CaptureFixture[str], db: str, argv: list[str], code: int, message: str
) -> None:
    got, _, err = run(capsys, "--store", db, "schedule", *argv)
    assert got == code and message in err


def test_occurrences_of_a_schedule_the_cli_stored_and_a_queue_ran(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    """The CLI stores a schedule; a queue on the same file (fake clock) opens its runs."""
    assert run(capsys, "--store", db, "schedule", "add", "tick", "--interval", "60",
               "--handler", "echo")[0] == 0  # fmt: skip
    created = json.loads(run(capsys, "--store", db, "schedule", "get", "tick", "--json")[1])
    start = created["start"] - created["start"] % SECOND
    clock = FakeClock(start)
    with queue(SqliteStore(db), clock) as tq:
        for seconds in (60, 120, 610):
            clock.set(start + seconds * SECOND)
            drive(tq)
    capsys.readouterr()  # the queue's own logs
    code, out, _ = run(capsys, "--store", db, "schedule", "occurrences", "tick", "--json")
    records = json.loads(out)["occurrences"]
    assert [(r["outcome"], r["reason"].split(":")[0], r["count"]) for r in records] == [
        ("opened", "on time", 1), ("opened", "on time", 1), ("skipped", "misfire", 7),
        ("opened", "on time", 1),
    ]  # fmt: skip
    store = open_store(db)
    try:
        assert all(store.get(r["task_key"]) is not None for r in records if r["task_key"])
    finally:
        store.close()
    code, out, _ = run(capsys, "--store", db, "schedule", "occurrences", "tick", "--limit", "2")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split()[:4] == ["due", "until", "count", "outcome"] and len(lines) == 4
    assert "misfire: late by more than 60 s" in lines[2]


def test_audit_reports_occurrences_no_scheduler_handled(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    """Runs due while no scheduler ran are "not handled" until one does."""
    run(capsys, "--store", db, "schedule", "add", "a", "--interval", "1", "--tags", "x")
    code, out, _ = run(capsys, "--store", db, "schedule", "occurrences", "a", "--audit", "--json")
    audit = json.loads(out)["audit"]
    assert code == 0 and audit["expected"] == audit["unrecorded_count"]
    assert audit["opened"] == audit["skipped"] == 0


def test_a_riak_store_says_schedules_are_not_stored_there(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with riak_double(tmp_path) as store:
        monkeypatch.setattr("riaktq_py.cli.schedules.open_store", lambda url: store)
        code, _, err = run(capsys, "--store", "riak://x:1/t/b", "schedule", "list")
    assert code == 1 and "RiakStore has no schedule storage yet" in err
