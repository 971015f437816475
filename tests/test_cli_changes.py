"""``riaktq open --delay/--unique``, ``update``, ``cancel``, ``retry``, ``delete``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from riaktq_py import SqliteStore, Status
from riaktq_py.cli import main
from riaktq_py.task import Outcome
from riaktq_py.transitions import Assign, Close


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip().startswith("{") else out, err


def test_open_with_delay_and_unique_then_update_cancel_delete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "t.db")
    code, task, _ = run(
        capsys, "--store", db, "open", "a", "1", "--delay", "60", "--unique", "u", "--json"
    )
    assert code == 0 and task["run_at"] is not None and task["unique"] == "u"
    code, dup, _ = run(capsys, "--store", db, "open", "b", "2", "--unique", "u", "--json")
    assert code == 0 and dup["key"] == "a"
    code, task, _ = run(
        capsys, "--store", db, "update", "a", "--priority", "4", "--input", '{"n": 2}', "--json"
    )
    assert (task["priority"], task["in"]) == (4, {"n": 2})
    code, task, _ = run(capsys, "--store", db, "cancel", "a", "--reason", "nope", "--json")
    assert (task["status"], task["error"]) == ("canceled", "nope")
    code, task, _ = run(capsys, "--store", db, "retry", "a", "--retries", "2", "--json")
    assert (task["status"], task["retry"]) == ("todo", 2)
    code, _, err = run(capsys, "--store", db, "delete", "a")
    assert code == 1 and "delete 'a': expected done, failed or canceled, found todo" in err
    run(capsys, "--store", db, "cancel", "a")
    code, out, _ = run(capsys, "--store", db, "delete", "a")
    assert code == 0 and "deleted a" in out
    code, _, err = run(capsys, "--store", db, "delete", "a")
    assert code == 1 and "no task 'a'" in err


def test_retry_a_failed_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "t.db")
    run(capsys, "--store", db, "open", "f", "1")
    store = SqliteStore(db)
    store.apply([Assign("f", "i"), Close("f", "i", 1, Outcome.FAILED, 1, 1, error="x")], at=5)
    store.close()
    code, task, _ = run(capsys, "--store", db, "retry", "f", "--json")
    assert code == 0 and task["status"] == Status.TODO.value and task["attempts"] == 1


@pytest.mark.parametrize(
    ("argv", "message", "exit_code"),
    [
        (["update", "k"], "give at least one of", 1),
        (["update", "k", "--run-at", "2030"], "not an ISO 8601 time", 2),
        (["update", "k", "--run-at", "2030-01-01T00:00:00"], "give a UTC offset", 2),
        (["cancel", "missing"], "no task 'missing'", 1),
        (["open", "k", "--delay", "-5"], "delay must be", 1),
    ],
)
def test_bad_change_arguments(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
    exit_code: int,
) -> None:
    code, _, err = run(capsys, "--store", str(tmp_path / "t.db"), *argv)
    assert code == exit_code and message in err
