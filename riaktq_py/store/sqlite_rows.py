"""The SQLite store's table layout: schema, row <-> Task conversion, query helpers."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import msgpack

from riaktq_py.errors import TransitionError
from riaktq_py.store.base import TaskQuery
from riaktq_py.task import (
    ACTIVE,
    Status,
    Task,
    decode_backoff,
    decode_history,
    encode_backoff,
    encode_history,
)

TAG_SEPARATOR = "\x1f"
#: Instances with more tags than this are matched by scanning instead of by index.
MAX_INDEXED_TAGS = 6

_COLUMNS = (
    "key, status, priority, retry, tagkey, assignee, input, output, cat, sat, laf,"
    " attempts, token, error, history, run_at, unique_key, timeout, backoff, aged_at"
)
#: the last log position: positions never go back, also after a prune removed the newest
#: entries (older files keep an AUTOINCREMENT log, whose sqlite_sequence says it; newer
#: files keep the floor in ``meta`` and spare every commit that extra page)
_LAST_POSITION_OLD = (
    "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'log'), 0),"
    " coalesce((SELECT max(pos) FROM log), 0))"
)
_LAST_POSITION = (
    "SELECT max(coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE name = 'log:floor'), 0),"
    " coalesce((SELECT max(pos) FROM log), 0))"
)
_LOG_VALUES = "INSERT INTO log (pos, at, transition, key, task, error) VALUES"
_LOG_INSERT = _LOG_VALUES + " (?,?,?,?,?,?)"
_COLUMN_NAMES = tuple(name.strip() for name in _COLUMNS.split(","))


def _log_append(last_position: str) -> str:
    """One log entry of a task at the next position (read it back as the cursor's
    ``lastrowid``: ``pos`` is the rowid, and no RETURNING row costs one more step)."""
    return (
        f"INSERT INTO log (pos, at, transition, key, task) VALUES (({last_position}) + 1,"
        " ?, ?, ?, ?)"
    )


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS tasks (
        key TEXT PRIMARY KEY, status TEXT NOT NULL, priority INTEGER NOT NULL,
        retry INTEGER NOT NULL, tagkey TEXT NOT NULL, assignee TEXT, input BLOB NOT NULL,
        output BLOB, cat INTEGER NOT NULL, sat INTEGER, laf INTEGER,
        attempts INTEGER NOT NULL, token INTEGER NOT NULL, error TEXT, history BLOB,
        run_at INTEGER, unique_key TEXT, timeout REAL, backoff BLOB, aged_at INTEGER
    ) WITHOUT ROWID""",
    """CREATE INDEX IF NOT EXISTS tasks_active_unique
        ON tasks (unique_key) WHERE unique_key IS NOT NULL AND status IN ('todo', 'nextup')""",
    """CREATE INDEX IF NOT EXISTS tasks_todo_waiting
        ON tasks (coalesce(aged_at, cat)) WHERE status = 'todo'""",
    # the scheduler always asks by tags (tasks_todo_by_tags): an untagged order index
    # only cost every write (SQLite's planner did not even use it)
    "DROP INDEX IF EXISTS tasks_todo_order",
    """CREATE INDEX IF NOT EXISTS tasks_todo_by_tags
        ON tasks (tagkey, priority DESC, cat, key) WHERE status = 'todo'""",
    # what the scheduler scans every tick: the nextup tasks (rollback) and the failed ones
    # with retries left (restart), each in a small index of its own. Whole-status indexes
    # cost every open and transition two more pages; finding or counting tasks by status
    # (reports, the CLI, retention) pages through the table by key instead
    "DROP INDEX IF EXISTS tasks_status_key",
    "DROP INDEX IF EXISTS tasks_status_cat",
    "CREATE INDEX IF NOT EXISTS tasks_nextup ON tasks (key) WHERE status = 'nextup'",
    """CREATE INDEX IF NOT EXISTS tasks_restartable
        ON tasks (key) WHERE status = 'failed' AND retry > 0""",
    """CREATE TABLE IF NOT EXISTS log (
        pos INTEGER PRIMARY KEY, at INTEGER NOT NULL, transition TEXT NOT NULL,
        key TEXT NOT NULL, task BLOB, error TEXT
    )""",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
)


_STATUS = {status.value: status for status in Status}
_STATUS_TEXT = {status: status.value for status in Status}


def tagkey(tags: frozenset[str]) -> str:
    """The canonical text of a tag set (sorted, joined by a unit separator)."""
    text = _TAG_KEYS.get(tags)
    if text is None:
        text = TAG_SEPARATOR.join(sorted(tags))
        if len(_TAG_KEYS) < 4096:  # the same few sets come again and again; bounded
            _TAG_KEYS[tags] = text
    return text


_TAG_KEYS: dict[frozenset[str], str] = {}


def _row(task: Task, seen: tuple[Sequence[Any], Task] | None = None) -> tuple[Any, ...]:
    """The task's row; with ``seen`` (a row and its Task), the encoded tags, history and
    backoff are taken from that row where the task still has the very same values."""
    if seen is None:
        tags, history, backoff = (
            tagkey(task.tags), _history_blob(task.history), encode_backoff(task.backoff)
        )
    else:
        old, before = seen
        tags = old[4] if task.tags is before.tags else tagkey(task.tags)
        history = old[14] if task.history is before.history else _history_blob(task.history)
        backoff = old[18] if task.backoff is before.backoff else encode_backoff(task.backoff)
    return (
        task.key,
        _STATUS_TEXT[task.status],
        task.priority,
        task.retry,
        tags,
        task.assignee,
        task.input,
        task.out,
        task.cat,
        task.sat,
        task.laf,
        task.attempts,
        task.token,
        task.error,
        history,
        task.run_at,
        task.unique,
        task.timeout,
        backoff,
        task.aged_at,
    )


#: tag sets by their stored text: the same few sets come back on every row
_TAG_SETS: dict[str, frozenset[str]] = {}


def _tags(text: str) -> frozenset[str]:
    tags = _TAG_SETS.get(text)
    if tags is None:
        tags = frozenset(text.split(TAG_SEPARATOR)) if text else frozenset()
        if len(_TAG_SETS) < 4096:  # bounded: many distinct sets are merely not cached
            _TAG_SETS[text] = tags
    return tags


def _task(row: Sequence[Any]) -> Task:
    (key, status, priority, retry, tags, assignee, inp, out, cat, sat, laf, attempts, token,
     error, history, run_at, unique, timeout, backoff, aged_at) = row  # fmt: skip
    return Task(
        key,
        _STATUS[status],
        inp if type(inp) is bytes else bytes(inp),
        cat,
        priority,
        retry,
        _tags(tags),
        assignee,
        None if out is None else bytes(out),
        sat,
        laf,
        attempts,
        token,
        error,
        () if history is None else decode_history(history),
        run_at,
        unique,
        timeout,
        None if backoff is None else decode_backoff(bytes(backoff)),
        aged_at,
    )


class RowCodec:
    """Rows <-> Tasks for one store, remembering the last row of recently seen keys.

    A task moves through a few transitions in quick succession (read by the
    scheduler, assigned, closed), so the row a transaction reads back is most often
    the row this store read or wrote last: then the Task made from it then is reused
    (rows are compared whole, so a row changed by anybody else is decoded afresh),
    and so are the encoded tags, history and backoff of a task that kept them.
    Bounded, in two generations: keys remembered since the last turn, and those of the
    generation before; a turn (every ``size // 2`` keys) forgets the older one, so a
    key is kept for at least ``size // 2`` newer keys (a clear-all would forget the
    tasks in flight together with the old ones).
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._seen: dict[str, tuple[Sequence[Any], Task]] = {}
        self._older: dict[str, tuple[Sequence[Any], Task]] = {}
        #: the connection's ``PRAGMA data_version`` at its last write transaction: while
        #: it stays the same, no other connection wrote, and every row remembered here is
        #: the row stored (this connection's own writes all pass through here)
        self.version: int | None = None

    def peek(self, key: str) -> tuple[Sequence[Any], Task] | None:
        """The last row seen for ``key`` and its Task, if still remembered."""
        seen = self._seen.get(key)
        return self._older.get(key) if seen is None else seen

    def task(self, row: Sequence[Any]) -> Task:
        seen = self.peek(row[0])
        if seen is not None and seen[0] == row:
            return seen[1]
        task = _task(row)
        self.remember(row, task)
        return task

    def row(self, task: Task) -> tuple[Any, ...]:
        return _row(task, self.peek(task.key))

    def reset(self) -> None:
        """Another connection wrote: forget every row (any may have changed)."""
        self._seen, self._older = {}, {}

    def forget(self, keys: Sequence[str]) -> None:
        """These tasks were deleted (through this connection)."""
        for key in keys:
            self._seen.pop(key, None)
            self._older.pop(key, None)

    def remember(self, row: Sequence[Any], task: Task) -> None:
        seen = self._seen
        if len(seen) >= self.size // 2:  # a turn (each swap is atomic for other threads)
            self._older, self._seen = seen, {}
            seen = self._seen
        seen[task.key] = (row, task)


def _history_blob(history: tuple[Any, ...]) -> bytes | None:
    return encode_history(history) if history else None


def _subsets(tags: frozenset[str]) -> Iterator[frozenset[str]]:
    ordered = sorted(tags)
    for size in range(len(ordered) + 1):
        for combo in itertools.combinations(ordered, size):
            yield frozenset(combo)


def _order(task: Task) -> tuple[int, int, str]:
    return (-task.priority, task.cat, task.key)


def _check_unique(
    db: sqlite3.Connection,
    name: str,
    task: Task,
    current: dict[str, Task],
    writes: dict[str, tuple[Any, ...]],
) -> None:
    """Refuse a task whose uniqueness key another active task holds (same transaction)."""
    if task.status not in ACTIVE:
        return
    stored = [
        key
        for (key,) in db.execute(
            "SELECT key FROM tasks WHERE unique_key = ? AND status IN ('todo', 'nextup')"
            " AND key != ?",
            (task.unique, task.key),
        )
    ]
    # as this transaction left them: rows written earlier in it win over the table
    holders = [key for key in stored if key not in writes or current[key].status in ACTIVE]
    holders += [
        key
        for key in writes
        if key != task.key and current[key].unique == task.unique and current[key].status in ACTIVE
    ]
    if holders:
        raise TransitionError(
            name, task.key, f"unique key {task.unique!r} free", f"held by {min(holders)!r}"
        )


def _where(query: TaskQuery) -> tuple[str, list[Any]]:
    clauses = ["1"]
    params: list[Any] = []
    for clause, value in (
        ("status = ?", None if query.status is None else query.status.value),
        ("cat < ?", query.created_before),
        ("cat >= ?", query.created_after),
        ("assignee = ?", query.assignee),
        ("priority >= ?", query.priority_min),
        ("priority <= ?", query.priority_max),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    for tag in sorted(query.tags or ()):
        # tags are stored as a separator-joined sorted list; match one whole element
        clauses.append("instr(? || tagkey || ?, ?) > 0")
        params += [TAG_SEPARATOR, TAG_SEPARATOR, f"{TAG_SEPARATOR}{tag}{TAG_SEPARATOR}"]
    return " AND ".join(clauses), params


def _pack(row: tuple[Any, ...]) -> bytes:
    blob: bytes = msgpack.packb(row)  # defaults as in riaktq_py.payload
    return blob
