"""SqliteStore specifics beyond the contract: file layout and the single-open path."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from riaktq_py import ConfigError
from riaktq_py.store.sqlite import AUTOCHECKPOINT_BACKSTOP, SqliteStore
from riaktq_py.store.sqlite_rows import RowCodec, _row
from riaktq_py.task import Backoff, Status, Task
from riaktq_py.transitions import Assign, Cancel, Open, Rollback, Transition


def test_a_new_file_gets_small_pages_and_an_existing_file_keeps_its_own(tmp_path: Path) -> None:
    small = SqliteStore(str(tmp_path / "small.db"))
    big = SqliteStore(str(tmp_path / "big.db"), page_size=4096)
    assert small._read("PRAGMA page_size") == [(1024,)]
    assert big._read("PRAGMA page_size") == [(4096,)]
    big.close()
    again = SqliteStore(str(tmp_path / "big.db"))  # fixed when the file was made
    assert again._read("PRAGMA page_size") == [(4096,)]
    for store in (small, again):
        store.close()


def test_a_bad_page_size_is_named() -> None:
    with pytest.raises(ConfigError, match="page_size must be a power of two from 512 to 65536"):
        SqliteStore(page_size=1000)


def test_single_opens_continue_the_log_positions_after_a_prune() -> None:
    store = SqliteStore()
    [first] = store.apply([Open("a", b"\xc0", cat=1)], at=1)
    [second] = store.apply([Open("b", b"\xc0", cat=1)], at=2)
    assert (first.position, second.position) == (1, 2)
    assert store.prune_log(before=10, limit=100) == 2
    [third] = store.apply([Open("c", b"\xc0", cat=1)], at=11)
    assert third.position == 3  # never reused, even with an empty log
    [reopened] = store.apply([Open("a", b"\x01", cat=12)], at=12)  # an existing key
    assert reopened.position == 4 and reopened.task is not None
    assert reopened.task.input == b"\x01"
    assert [e.position for e in store.events_after(0, 10)] == [3, 4]


def test_a_transition_writes_only_the_columns_it_changed() -> None:
    store = SqliteStore()
    store.apply([Open("a", b"\xc0", cat=1, tags=frozenset({"x"}))], at=1)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    [event] = store.apply([Assign("a", "i-1")], at=2)
    store._db.set_trace_callback(None)
    [update] = [s for s in statements if s.startswith("UPDATE tasks")]
    assert update.startswith(
        "UPDATE tasks SET status = v.column2, assignee = v.column3, token = v.column4 FROM"
    )
    assert not any("REPLACE" in s for s in statements)
    assert store.get("a") == event.task


def test_task_replace_names_an_unknown_field() -> None:
    task = Task("a", Open("a", b"\xc0", cat=1).apply(None).status, b"\xc0", 1)
    assert task.replace(priority=3).priority == 3
    with pytest.raises(TypeError, match="Task has no field 'colour'"):
        task.replace(colour="red")


def test_the_row_codec_reuses_a_task_only_for_the_very_same_row() -> None:
    codec = RowCodec(size=2)
    task = Open("a", b"\xc0", cat=1, tags=frozenset({"x"})).apply(None)
    row = codec.row(task)
    assert row == _row(task)  # nothing seen yet: encoded afresh
    codec.remember(row, task)
    assert codec.task(tuple(row)) is task  # the row read back as written
    changed = (row[0], "nextup", *row[2:])
    assert codec.task(changed).status is Status.NEXTUP  # written by somebody else: decoded
    assigned = task.replace(status=Status.NEXTUP, assignee="i-1", token=1)
    assert codec.row(assigned) == _row(assigned)  # kept tags and history reused, same row
    for key in ("b", "c"):  # bounded: past its size it starts over
        codec.remember((key, *row[1:]), task.replace(key=key))
    assert codec.task(tuple(row)) is not task


def test_a_file_with_the_old_autoincrement_log_keeps_numbering_from_it(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE log (pos INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,"
        " transition TEXT NOT NULL, key TEXT NOT NULL, task BLOB, error TEXT)"
    )
    db.execute("INSERT INTO log VALUES (41, 1, 'open', 'gone', NULL, NULL)")
    db.execute("DELETE FROM log")  # pruned: only sqlite_sequence remembers 41
    db.commit()
    db.close()
    store = SqliteStore(path)
    [event] = store.apply([Open("a", b"\xc0", cat=1)], at=2)
    [assign] = store.apply([Assign("a", "i-1")], at=3)
    assert (event.position, assign.position) == (42, 43)
    store.close()


def test_the_scheduler_scans_use_small_indexes() -> None:
    store = SqliteStore()
    plans = {
        "nextup": "SELECT key, assignee FROM tasks WHERE status = 'nextup' AND key > ?"
        " ORDER BY key LIMIT ?",
        "restartable": "SELECT key FROM tasks WHERE status = 'failed' AND retry > 0"
        " ORDER BY key LIMIT ?",
    }
    for name, sql in plans.items():
        [(*_, plan)] = store._read("EXPLAIN QUERY PLAN " + sql, [1] * sql.count("?"))
        assert f"tasks_{name}" in plan


def _two_writers(tmp_path: Path) -> tuple[SqliteStore, SqliteStore]:
    """Two stores on one file, each with its own memory of rows (as two processes)."""
    path = str(tmp_path / "shared.db")
    return SqliteStore(path), SqliteStore(path)


def test_a_guess_made_before_the_lock_is_dropped_when_the_row_changed(tmp_path: Path) -> None:
    ours, theirs = _two_writers(tmp_path)
    ours.apply([Open("a", b"\xc0", cat=1)], at=1)
    guess = ours.prepare([Assign("a", "i-1")])  # from the row ours wrote: todo
    theirs.apply([Cancel("a", "changed my mind")], at=2)  # meanwhile, elsewhere
    [event] = ours.apply([Assign("a", "i-1")], at=3, prepared=guess)
    assert event.task is None and event.error is not None
    assert "expected todo, found canceled" in event.error
    assert ours.get("a").status is Status.CANCELED  # type: ignore[union-attr]


def test_a_refusal_guessed_before_the_lock_is_dropped_when_the_row_changed(
    tmp_path: Path,
) -> None:
    ours, theirs = _two_writers(tmp_path)
    ours.apply([Open("a", b"\xc0", cat=1)], at=1)
    ours.apply([Assign("a", "i-1")], at=2)
    guess = ours.prepare([Assign("a", "i-2")])  # from a nextup row: refused
    theirs.apply([Rollback("a", "lost")], at=3)  # back to todo, elsewhere
    [event] = ours.apply([Assign("a", "i-2")], at=4, prepared=guess)
    assert event.task is not None and event.task.assignee == "i-2" and event.task.token == 2


def test_a_guessed_open_of_a_key_that_appeared_meanwhile_reopens_it(tmp_path: Path) -> None:
    ours, theirs = _two_writers(tmp_path)
    guess = ours.prepare([Open("a", b"\x01", cat=5)])  # as if new
    theirs.apply([Open("a", b"\xc0", cat=1)], at=1)
    theirs.apply([Assign("a", "i-1")], at=2)
    [event] = ours.apply([Open("a", b"\x01", cat=5)], at=3, prepared=guess)
    assert event.task is not None and event.task.token == 1  # kept: a re-open, not a new task
    assert event.task.input == b"\x01" and event.position == 3


def test_a_store_can_borrow_another_stores_connection(tmp_path: Path) -> None:
    owner = SqliteStore(str(tmp_path / "q.db"))
    borrower = SqliteStore(bucket="task", share=owner)
    assert borrower._db is owner._db and borrower.path == owner.path
    [event] = owner.apply([Open("a", b"\xc0", cat=1)], at=1)
    assert borrower.get("a") is event.task  # its rows are known: read back, not decoded
    borrower.close()  # borrowed: left open
    assert owner.get("a") == event.task
    owner.close()


def test_a_batch_with_one_stale_guess_applies_each_transition_to_its_row_as_stored(
    tmp_path: Path,
) -> None:
    ours, theirs = _two_writers(tmp_path)
    ours.apply([Open(key, b"\xc0", cat=1) for key in "abc"], at=1)
    batch = [Assign(key, "i-1") for key in "abc"]
    fresh = ours.prepare(batch)
    [a, b, c] = ours.apply(batch, at=2, prepared=fresh)  # every guess holds
    assert [e.task.token for e in (a, b, c) if e.task] == [1, 1, 1]
    closes = [Rollback(key, "lost") for key in "abc"]
    guess = ours.prepare(closes)
    theirs.apply([Cancel("b", "meanwhile")], at=3)
    [a, b, c] = ours.apply(closes, at=4, prepared=guess)
    assert a.task is not None and c.task is not None and b.task is None
    assert b.error is not None and "expected nextup, found canceled" in b.error
    assert [e.position for e in (a, b, c)] == [8, 9, 10]  # after 3 opens, 3 assigns, 1 cancel
    assert {k: t.status for k, t in ours.get_many(list("abc")).items()} == {
        "a": Status.TODO,
        "b": Status.CANCELED,
        "c": Status.TODO,
    }


def test_rows_remembered_before_another_connection_wrote_are_not_trusted(
    tmp_path: Path,
) -> None:
    ours, theirs = _two_writers(tmp_path)
    ours.apply([Open(key, b"\xc0", cat=1) for key in ("a", "b")], at=1)
    assert [t.key for t in ours.todo(10)] == ["a", "b"]  # remembered as read
    theirs.apply([Cancel("a", "elsewhere")], at=2)
    ours.apply([Assign("b", "i-1")], at=3, prepared=ours.prepare([Assign("b", "i-1")]))
    # the write above saw that another connection wrote: nothing remembered is sure now
    batch = [Assign("a", "i-1")]
    [event] = ours.apply(batch, at=4, prepared=ours.prepare(batch))
    assert event.task is None and "found canceled" in (event.error or "")


def test_a_deleted_task_is_forgotten_so_opening_its_key_again_makes_a_new_task() -> None:
    store = SqliteStore()
    store.apply([Open("a", b"\xc0", cat=1)], at=1)
    store.apply([Assign("a", "i-1")], at=2)
    store.apply([Cancel("a")], at=3)
    assert store.delete("a")
    batch = [Open("a", b"\x01", cat=4)]
    [a] = store.apply(batch, at=4, prepared=store.prepare(batch))
    assert a.task is not None and a.task.token == 0 and a.task.history == ()
    assert store.get("a") == a.task


def test_a_file_store_checkpoints_its_wal_on_a_thread_of_its_own(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "wal.db"))
    checkpointer = store._checkpointer
    assert checkpointer is not None and checkpointer._thread.is_alive()
    assert store._read("PRAGMA wal_autocheckpoint") == [(AUTOCHECKPOINT_BACKSTOP,)]
    checkpointer.period = 3600.0  # from now on only the writers wake it
    before = checkpointer.checkpoints
    for n in range(checkpointer.every // 8 + 1):  # each commit counts as 8 pages
        store.apply([Open(f"k{n}", b"\xc0", cat=1)], at=1)
    assert checkpointer.wait_for(before + 1, timeout=10)  # woken by the writes
    store.close()
    assert not checkpointer._thread.is_alive()
    assert SqliteStore()._checkpointer is None  # in memory: no WAL to checkpoint


def test_a_batch_that_moves_one_task_twice_applies_both_in_order() -> None:
    store = SqliteStore()
    batch: list[Transition] = [
        Open("a", b"\xc0", cat=1),
        Assign("a", "i-1"),
        Open("b", b"\xc0", cat=1),
    ]
    [opened, assigned, other] = store.apply(batch, at=1, prepared=store.prepare(batch))
    assert opened.task is not None and assigned.task is not None and other.task is not None
    assert assigned.task.token == 1 and store.get("a") == assigned.task


def test_new_rows_bind_only_their_non_null_columns_and_read_back_whole() -> None:
    store = SqliteStore()
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    [plain] = store.apply([Open("a", b"\xc0", cat=1)], at=1)
    full_open = Open("b", b"\x01", 2, 3, 0, frozenset({"t"}), 9, "u", 1.5, Backoff())
    [full] = store.apply([full_open], at=2)
    batch = store.apply(  # one batch, two shapes of row, and a refusal in the log
        [Open("c", b"\xc0", cat=3), Open("d", b"\xc0", cat=3, run_at=5), Assign("x", "i-1")],
        at=3,
    )
    store._db.set_trace_callback(None)
    inserts = [s for s in statements if s.startswith("INSERT INTO tasks")]
    assert inserts[0].startswith("INSERT INTO tasks (key, status, priority, retry, tagkey,"
                                 " input, cat, attempts, token) VALUES")  # fmt: skip
    assert "run_at, unique_key, timeout, backoff" in inserts[1]
    assert len(inserts) == 4  # the batch: one statement per shape
    for event in (plain, full, *batch[:2]):
        assert event.task is not None and store.get(event.key) == event.task
    assert batch[2].error is not None
    logged = store.events_after(0, 10)
    assert [(e.key, e.ok) for e in logged] == [("a", True), ("b", True), ("c", True),
                                               ("d", True), ("x", False)]  # fmt: skip
    assert logged[4].error == batch[2].error and logged[1].task == full.task


def test_a_guessed_batch_with_a_refusal_logs_the_task_of_one_and_the_error_of_the_other() -> None:
    store = SqliteStore()
    store.apply([Open("a", b"\xc0", cat=1), Open("b", b"\xc0", cat=1)], at=1)
    store.apply([Assign("b", "i-1")], at=2)
    batch: list[Transition] = [Assign("a", "i-1"), Assign("b", "i-2")]
    prepared = store.prepare(batch)
    assert getattr(prepared, "writes", None) is not None  # every guess made: the fast path
    assigned, refused = store.apply(batch, at=3, prepared=prepared)
    assert assigned.task is not None and refused.task is None and refused.error
    logged = store.events_after(3, 10)  # after the two opens and the first assign
    assert [(e.key, e.task, e.error) for e in logged] == [
        ("a", assigned.task, None),
        ("b", None, refused.error),
    ]
