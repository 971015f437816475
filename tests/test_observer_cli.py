"""``riaktq report | events | history`` on a file store, in process and as a subprocess."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from riaktq_py import Riaktq, SqliteScheduleStore, SqliteStore
from riaktq_py.cli import main
from riaktq_py.observer import Query
from riaktq_py.observer.replay import read_log
from riaktq_py.task import Status
from riaktq_py.testing import drive

ROOT = Path(__file__).resolve().parent.parent
T = 60.0


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A file store with 4 done tasks (one after a failed attempt), 1 failed, 2 todo."""
    path = str(tmp_path / "tasks.db")
    store = SqliteStore(path)
    attempts: dict[str, int] = {}

    def work(value: Any) -> Any:
        attempts[value["key"]] = attempts.get(value["key"], 0) + 1
        if value.get("fail", 0) >= attempts[value["key"]]:
            raise RuntimeError(f"{value['key']} attempt {attempts[value['key']]} failed")
        return value["key"].upper()

    tq = Riaktq(store, interval=None, debounce=None)  # the real clock: report uses it too
    tq.add_handler("work", work)
    with tq:
        for key in ("a", "b", "c"):
            tq.open(key, {"key": key}, handler="work")
        tq.open("retried", {"key": "retried", "fail": 1}, retry=1, handler="work")
        tq.open("broken", {"key": "broken", "fail": 9}, handler="work")
        drive(tq)
    tq.open("later-1", {"key": "x"}, tags=["gpu"])
    tq.open("later-2", {"key": "y"}, tags=["gpu"], priority=5)
    store.close()
    capsys.readouterr()  # the library's logs while preparing the store
    return path


def test_report_defaults_to_status_counts_and_window_stats(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    """Without queries: counts per status and the last day's done/failed statistics."""
    code, out, _ = run(capsys, "--store", db, "report", "--json")
    assert code == 0
    counts, window = json.loads(out)
    assert counts["key"] == "status"
    assert counts["counts"] == {"todo": 2, "nextup": 0, "done": 4, "failed": 1, "canceled": 0}
    assert (window["done"], window["failed"]) == (4, 1)
    assert window["failure_rate"] == pytest.approx(0.2)
    code, out, _ = run(capsys, "--store", db, "report")
    assert code == 0
    assert "failure rate 20.0%" in out and "done          4" in out


def test_report_with_criteria_equals_a_direct_query(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    """--status/--tag/--limit run one query; its tasks and exact count match the store's."""
    code, out, _ = run(
        capsys, "--store", db, "report", "--status", "todo", "--tag", "gpu", "--key", "gpu",
        "--json",
    )  # fmt: skip
    assert code == 0
    [result] = json.loads(out)
    store = SqliteStore(db)
    direct = Query(status=Status.TODO, tags=frozenset({"gpu"})).run(store, key="gpu", now_us=0)
    store.close()
    assert result["tasks"] == [list(pair) for pair in direct.tasks]
    assert result["count"] == direct.count == 2
    code, out, _ = run(capsys, "--store", db, "report", "--status", "done", "--limit", "1")
    assert code == 0
    assert "query (at " in out and ": 4 task(s), 1 shown" in out


def test_report_runs_the_queries_of_a_file(
    capsys: pytest.CaptureFixture[str], db: str, tmp_path: Path
) -> None:
    """--queries FILE runs each entry now, whatever its schedule; a bad entry is named."""
    queries = tmp_path / "queries.json"
    queries.write_text(
        json.dumps(
            [
                {"key": "failed", "status": "failed", "schedule": {"daily": "06:00"}},
                {"key": "counts", "report": "status_counts"},
            ]
        )
    )
    code, out, _ = run(capsys, "--store", db, "report", "--queries", str(queries), "--json")
    assert code == 0
    failed, counts = json.loads(out)
    assert (failed["key"], failed["count"], failed["tasks"]) == ("failed", 1, [["task", "broken"]])
    assert counts["counts"]["done"] == 4
    queries.write_text(json.dumps([{"key": "x", "status": "running"}]))
    code, _, err = run(capsys, "--store", db, "report", "--queries", str(queries))
    assert code == 1
    assert "observation 'x': status must be one of" in err
    code, _, err = run(capsys, "--store", db, "report", "--queries", str(tmp_path / "none.json"))
    assert code == 1 and "cannot read queries from" in err


def test_events_prints_the_log_after_a_position(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    """Every line starts with its position; --from skips up to it; --json is one object a line."""
    store = SqliteStore(db)
    logged = list(read_log(store, 0))
    store.close()
    code, out, _ = run(capsys, "--store", db, "events")
    assert code == 0
    lines = out.splitlines()
    assert [int(line.split()[0]) for line in lines] == [e.position for e in logged]
    middle = logged[5].position
    code, out, _ = run(capsys, "--store", db, "events", "--from", str(middle), "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["position"] for r in rows] == [e.position for e in logged[6:]]
    assert [(r["transition"], r["key"]) for r in rows] == [
        (e.transition, e.key) for e in logged[6:]
    ]
    code, _, err = run(capsys, "--store", db, "events", "--from", "-1")
    assert code == 1 and "--from must be a log position >= 0" in err


def test_history_shows_every_attempt(capsys: pytest.CaptureFixture[str], db: str) -> None:
    """The failed attempt and the successful retry, as a table and as JSON; unknown keys fail."""
    code, out, _ = run(capsys, "--store", db, "history", "retried", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["status"] == "done"
    assert [(a["number"], a["outcome"]) for a in info["attempts"]] == [(1, "failed"), (2, "done")]
    assert "retried attempt 1 failed" in info["attempts"][0]["error"]
    assert info["attempts"][1]["out"] == "RETRIED"
    code, out, _ = run(capsys, "--store", db, "history", "retried")
    assert code == 0
    assert out.splitlines()[0] == "retried: done, 2 attempt(s)"
    assert "work-1    failed" in out and '"RETRIED"' in out
    code, _, err = run(capsys, "--store", db, "history", "missing")
    assert code == 1 and "no task 'missing'" in err


def test_events_follow_prints_new_transitions_until_a_signal(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    """``events --follow`` (a subprocess) sees a task another process opens; SIGTERM ends it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "riaktq_py", "--store", db, "events", "--follow", "--poll", "0.05"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while "later-2" not in lines.get(timeout=T):
            pass  # the recorded log comes first
        assert run(capsys, "--store", db, "open", "fresh", "1")[0] == 0
        while "fresh" not in (line := lines.get(timeout=T)):
            pass
        assert line.split()[2:] == ["open", "fresh", "->", "todo"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=T) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=T)
    assert proc.stderr is not None and "Traceback" not in proc.stderr.read()


def test_report_includes_schedule_health_when_there_are_schedules(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    """A store with recurring schedules gets a third default report: their health."""
    tq = Riaktq(SqliteStore(db), interval=None, debounce=None)
    tq.add_schedule("hourly", cron="0 * * * *", tags=["reports"], input={"key": "h"})
    tq.store.close()
    code, out, _ = run(capsys, "--store", db, "report", "--json")
    assert code == 0
    *_, health = json.loads(out)
    assert health["key"] == "schedules" and health["behind"] == []
    assert [s["name"] for s in health["schedules"]] == ["hourly"]
    code, out, _ = run(capsys, "--store", db, "report")
    assert code == 0
    assert "hourly    cron '0 * * * *' in UTC  ok" in out


def test_report_builds_the_schedule_store_once(
    capsys: pytest.CaptureFixture[str], db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its construction is a write (CREATE TABLE IF NOT EXISTS): the health report reuses it."""
    tq = Riaktq(SqliteStore(db), interval=None, debounce=None)
    tq.add_schedule("hourly", cron="0 * * * *", tags=["reports"])
    tq.store.close()
    built: list[object] = []
    real = SqliteScheduleStore.__init__

    def counted(self: SqliteScheduleStore, store: SqliteStore) -> None:
        built.append(store)
        real(self, store)

    monkeypatch.setattr(SqliteScheduleStore, "__init__", counted)
    code, out, _ = run(capsys, "--store", db, "report", "--json")
    assert code == 0 and json.loads(out)[-1]["key"] == "schedules"
    assert len(built) == 1
