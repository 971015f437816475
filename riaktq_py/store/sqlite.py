"""The embedded store: one SQLite file (or memory), WAL mode, atomic transitions.

Each :meth:`SqliteStore.apply` call is one ``BEGIN IMMEDIATE`` transaction: the
tasks are read and written under SQLite's write lock, so the status a
transition checks is the status it replaces (compare-and-set), also when
several processes share the file. Every transition is appended to the ``log``
table in the same transaction.
"""

from __future__ import annotations

import heapq
import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import msgpack

from riaktq_py.errors import ConfigError, StoreError, StoreUnavailable
from riaktq_py.events import TaskEvent
from riaktq_py.store.base import Store, TaskQuery
from riaktq_py.store.sqlite_apply import (
    Prepared,
    apply_prepared,
    create_prepared,
    known_rows,
    prepare,
)
from riaktq_py.store.sqlite_checkpoint import Checkpointer
from riaktq_py.store.sqlite_rows import (
    _COLUMNS,
    _LAST_POSITION,
    _LAST_POSITION_OLD,
    _LOG_INSERT,
    _SCHEMA,
    MAX_INDEXED_TAGS,
    TAG_SEPARATOR,
    RowCodec,
    _log_append,
    _order,
    _subsets,
    _task,
    _where,
    tagkey,
)
from riaktq_py.task import (
    Status,
    Task,
)
from riaktq_py.transitions import MAY_CREATE, Transition

__all__ = ["TAG_SEPARATOR", "SqliteStore", "tagkey"]


_DUE = "(run_at IS NULL OR run_at <= ?)"
_NEVER = 2**62  # "due" bound when the caller gives no time: every task


#: WAL pages after which a commit checkpoints by itself (the Checkpointer thread does it
#: long before, off the writers' path)
AUTOCHECKPOINT_BACKSTOP = 50_000


class SqliteStore(Store):
    """Tasks in one SQLite database. ``path`` is a file, or ``":memory:"``."""

    path: str
    _db: sqlite3.Connection
    _lock: threading.RLock
    _codec: RowCodec
    _last_position: str
    _log_append: str
    _checkpointer: Checkpointer | None

    def __init__(
        self,
        path: str = ":memory:",
        *,
        bucket: str = "task",
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
        page_size: int = 1024,
        share: SqliteStore | None = None,
    ) -> None:
        """``page_size`` applies to a new file only (SQLite fixes it at creation): small
        pages suit small task rows, since every commit writes each page it changed whole.

        ``share``: another store of this process on the same file, whose connection (and
        its lock) this one borrows instead of opening its own, so that the two never
        contend inside SQLite and each knows the rows the other wrote; ``close`` leaves a
        borrowed connection to its owner (the other options are then the owner's).
        """
        if share is not None:
            self.path, self.bucket = share.path, bucket
            self._lock, self._db, self._codec = share._lock, share._db, share._codec
            self._last_position, self._log_append = share._last_position, share._log_append
            self._checkpointer = share._checkpointer
            self._owns_connection = False
            return
        self._owns_connection = True
        if busy_timeout < 0:
            raise ConfigError(f"busy_timeout must be >= 0 seconds, got {busy_timeout}")
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ConfigError(
                f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}"
            )
        if page_size not in {512, 1024, 2048, 4096, 8192, 16384, 32768, 65536}:
            raise ConfigError(
                f"page_size must be a power of two from 512 to 65536, got {page_size}"
            )
        self.path = path
        self.bucket = bucket
        self._lock = threading.RLock()
        self._codec = RowCodec()
        self._checkpointer = None
        try:
            self._db = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute(f"PRAGMA page_size={page_size}")  # before the file is made
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            # checkpoints run on a thread of their own (a Checkpointer, for a file); the
            # automatic one, inside a commit, only if that thread falls far behind
            self._db.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_BACKSTOP}")
            with self._write() as db:
                for statement in _SCHEMA:
                    db.execute(statement)
                [(log_table,)] = db.execute(
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'log'"
                ).fetchall()
            old_log = "AUTOINCREMENT" in log_table.upper()
            self._checkpointer = (
                None if path in ("", ":memory:") or path.startswith("file::memory:")
                else Checkpointer(path)
            )  # fmt: skip
            self._last_position = _LAST_POSITION_OLD if old_log else _LAST_POSITION
            self._log_append = _log_append(self._last_position)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite store {path!r}: cannot open: {exc}") from exc

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, bucket={self.bucket!r})"

    # -- plumbing ---------------------------------------------------------

    @contextmanager
    def _write(self, begin: Callable[[], None] | None = None) -> Iterator[sqlite3.Connection]:
        """A write transaction, started by ``begin`` (default: ``self._begin``)."""
        with self._lock:
            (begin or self._begin)()
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._commit()

    def _begin(self) -> None:
        """Start a write transaction (the caller holds ``self._lock``)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"sqlite store {self.path!r}: cannot write: {exc}") from exc

    def _commit(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.wrote(8)  # about what an open writes; a batch, a few more
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._db.execute("ROLLBACK")
            raise StoreUnavailable(f"sqlite store {self.path!r}: commit failed: {exc}") from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"sqlite store {self.path!r}: read failed: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite store {self.path!r}: read failed: {exc}") from exc

    def _fetch(self, db: sqlite3.Connection, keys: Sequence[str]) -> dict[str, Task]:
        return {key: self._codec.task(row) for key, row in self._fetch_rows(db, keys).items()}

    def _fetch_rows(
        self, db: sqlite3.Connection, keys: Sequence[str]
    ) -> dict[str, tuple[Any, ...]]:
        found: dict[str, tuple[Any, ...]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE key IN ({marks})", chunk):
                found[row[0]] = row
        return found

    # -- the contract -----------------------------------------------------

    def prepare(self, transitions: Sequence[Transition]) -> Prepared:
        """Guess each transition's outcome before the write lock (see
        :mod:`riaktq_py.store.sqlite_apply`); ``apply`` keeps the guesses that hold."""
        return prepare(self._codec, transitions)

    def apply(
        self, transitions: Sequence[Transition], *, at: int, prepared: object = None
    ) -> list[TaskEvent]:
        if not transitions:
            return []
        if not isinstance(prepared, Prepared):
            prepared = Prepared([None] * len(transitions))
        with self._lock:  # what _write does, without a generator: this is the hot path
            self._begin()
            try:
                events = self._apply(self._db, transitions, prepared, at)
            except BaseException as exc:
                self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"sqlite store {self.path!r}: apply failed: {exc}") from exc
                raise
            self._commit()
        return events

    def _apply(
        self,
        db: sqlite3.Connection,
        transitions: Sequence[Transition],
        prepared: Prepared,
        at: int,
    ) -> list[TaskEvent]:
        if len(transitions) == 1:
            [guess] = prepared.guesses
            if guess is None and transitions[0].name in MAY_CREATE:
                [guess] = prepare(self._codec, transitions).guesses
            created = create_prepared(
                db, self._codec, guess, self._log_append, self.bucket, transitions[0].name, at
            )
            if created is not None:
                return [created]
        # positions are ours to give: we hold the write lock until commit
        [(last,)] = db.execute(self._last_position).fetchall()
        stored = known_rows(db, self._codec, transitions, prepared)
        if stored is None:
            stored = self._fetch_rows(db, [t.key for t in transitions])
        return apply_prepared(
            db, self._codec, transitions, prepared, stored, last + 1, self.bucket, at
        )

    def append_log(
        self, db: sqlite3.Connection, entries: Sequence[tuple[int, str, str, str]]
    ) -> None:
        """Log (at, transition, key, reason) entries that change no task, such as a
        skipped occurrence of a schedule, inside the caller's write transaction
        (``with store._write() as db``). They read back as events without a task.
        """
        [(last,)] = db.execute(self._last_position).fetchall()
        db.executemany(
            _LOG_INSERT,
            [
                (position, at, name, key, None, reason)
                for position, (at, name, key, reason) in enumerate(entries, start=last + 1)
            ],
        )

    def get(self, key: str) -> Task | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, Task]:
        with self._lock:
            try:
                return self._fetch(self._db, keys)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"sqlite store {self.path!r}: read failed: {exc}") from exc

    def todo(
        self, limit: int, *, tags: frozenset[str] | None = None, now: int | None = None
    ) -> list[Task]:
        if limit <= 0:
            return []
        # one statement text whatever ``now`` is, so SQLite's statement cache serves it
        due = _NEVER if now is None else now
        base = f"SELECT {_COLUMNS} FROM tasks WHERE status = 'todo' AND {_DUE}"
        order = " ORDER BY priority DESC, cat, key LIMIT ?"
        if tags is None:
            return [self._codec.task(r) for r in self._read(base + order, (due, limit))]
        if len(tags) > MAX_INDEXED_TAGS:
            return self._todo_scan(limit, tags, due)
        per_subset = [
            [
                self._codec.task(r)
                for r in self._read(base + " AND tagkey = ?" + order, (due, tagkey(s), limit))
            ]
            for s in _subsets(tags)
        ]
        return list(itertools.islice(heapq.merge(*per_subset, key=_order), limit))

    def _todo_scan(self, limit: int, tags: frozenset[str], due: int) -> list[Task]:
        chosen: list[Task] = []
        offset = 0
        page = max(limit, 256)
        while len(chosen) < limit:
            rows = self._read(
                f"SELECT {_COLUMNS} FROM tasks WHERE status = 'todo' AND {_DUE}"
                " ORDER BY priority DESC, cat, key LIMIT ? OFFSET ?",
                (due, page, offset),
            )
            chosen.extend(t for t in map(_task, rows) if t.tags <= tags)
            if len(rows) < page:
                break
            offset += page
        return chosen[:limit]

    def find(self, query: TaskQuery) -> list[Task]:
        where, params = _where(query)
        sql = f"SELECT {_COLUMNS} FROM tasks WHERE {where} AND key > ? ORDER BY key LIMIT ?"
        return [_task(r) for r in self._read(sql, [*params, query.after_key or "", query.limit])]

    def count(self, query: TaskQuery) -> int:
        where, params = _where(query)
        [(n,)] = self._read(f"SELECT count(*) FROM tasks WHERE {where}", params)
        return int(n)

    def active_with_unique(self, unique: str) -> Task | None:
        rows = self._read(
            f"SELECT {_COLUMNS} FROM tasks WHERE unique_key = ? AND status IN ('todo', 'nextup')"
            " LIMIT 1",
            (unique,),
        )
        return _task(rows[0]) if rows else None

    def nextup(self, limit: int, after_key: str | None = None) -> list[tuple[str, str | None]]:
        rows = self._read(
            "SELECT key, assignee FROM tasks WHERE status = 'nextup' AND key > ?"
            " ORDER BY key LIMIT ?",
            (after_key or "", limit),
        )
        return [(key, assignee) for key, assignee in rows]

    def canceled_among(self, keys: Sequence[str]) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found += self._read(
                f"SELECT key, token FROM tasks WHERE status = 'canceled' AND key IN ({marks})",
                chunk,
            )
        return [(key, token) for key, token in found]

    def waiting(self, since_before: int, limit: int) -> list[Task]:
        rows = self._read(
            f"SELECT {_COLUMNS} FROM tasks WHERE status = 'todo'"
            " AND coalesce(aged_at, cat) < ? ORDER BY coalesce(aged_at, cat) LIMIT ?",
            (since_before, limit),
        )
        return [_task(r) for r in rows]

    def restartable(self, limit: int) -> list[Task]:
        rows = self._read(
            f"SELECT {_COLUMNS} FROM tasks WHERE status = 'failed' AND retry > 0"
            " ORDER BY key LIMIT ?",
            (limit,),
        )
        return [_task(r) for r in rows]

    def count_by_status(self) -> dict[Status, int]:
        counts = dict.fromkeys(Status, 0)
        for status, count in self._read("SELECT status, count(*) FROM tasks GROUP BY status"):
            counts[Status(status)] = count
        return counts

    def events_after(self, position: int, limit: int) -> list[TaskEvent]:
        rows = self._read(
            "SELECT pos, at, transition, key, task, error FROM log"
            " WHERE pos > ? ORDER BY pos LIMIT ?",
            (position, limit),
        )
        return [
            TaskEvent(
                transition,
                self.bucket,
                key,
                at,
                task=None if blob is None else _task(msgpack.unpackb(blob)),
                error=error,
                position=pos,
            )
            for pos, at, transition, key, blob, error in rows
        ]

    def prune_log(self, before: int, limit: int) -> int:
        with self._write() as db:
            [(last,)] = db.execute(self._last_position).fetchall()
            cursor = db.execute(
                "DELETE FROM log WHERE pos IN"
                " (SELECT pos FROM log WHERE at < ? ORDER BY pos LIMIT ?)",
                (before, limit),
            )
            if cursor.rowcount > 0:  # the next position follows ``last``, whatever is left
                db.execute(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES ('log:floor', ?)",
                    (str(last).encode(),),
                )
            return cursor.rowcount

    def delete(self, key: str) -> bool:
        with self._write() as db:
            self._codec.forget([key])
            return db.execute("DELETE FROM tasks WHERE key = ?", (key,)).rowcount > 0

    def get_meta(self, name: str) -> bytes | None:
        rows = self._read("SELECT value FROM meta WHERE name = ?", (name,))
        return bytes(rows[0][0]) if rows else None

    def set_meta(self, name: str, value: bytes) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def delete_if(self, keys: Sequence[str], predicate: Callable[[Task], bool]) -> list[str]:
        if not keys:
            return []
        with self._write() as db:
            doomed = [key for key, task in self._fetch(db, keys).items() if predicate(task)]
            self._codec.forget(doomed)
            db.executemany("DELETE FROM tasks WHERE key = ?", [(key,) for key in doomed])
        return doomed

    def close(self) -> None:
        if not self._owns_connection:
            return
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._db.close()
