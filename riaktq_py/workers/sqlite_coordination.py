"""Coordination in the SQLite store's own file, in tables of its own.

:class:`SqliteCoordination` wraps a :class:`~riaktq_py.store.sqlite.SqliteStore`
and uses its connection, lock and ``BEGIN IMMEDIATE`` transactions, so a
worker's result and its assignment change in one transaction, and several
processes (or hosts sharing the file system SQLite locks work on) may share
the file. Reads that must agree with each other (an instance's queues) run in
one read transaction: one snapshot.

:class:`FencedSqliteStore` is the scheduler's store: a ``SqliteStore`` whose
every write transaction first runs a fence check (the lease's epoch, see
:meth:`SqliteCoordination.install_fence`). The check runs under SQLite's write
lock, which a takeover also needs, so a write either happens while the lease
is held or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from riaktq_py.actors.instance import Assignment, Result
from riaktq_py.errors import ConfigError, StoreError, StoreUnavailable
from riaktq_py.store.sqlite import TAG_SEPARATOR, SqliteStore
from riaktq_py.task import Outcome
from riaktq_py.workers.coordination import (
    Coordination,
    InstanceRecord,
    LeaseLost,
    LeaseRecord,
    Mailbox,
)

Fence = Callable[[sqlite3.Connection], None]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS riaktq_instances (
        name TEXT PRIMARY KEY, worker TEXT NOT NULL, tags TEXT NOT NULL,
        capacity INTEGER NOT NULL, interval_us INTEGER NOT NULL, beat INTEGER NOT NULL,
        beat_at INTEGER NOT NULL, draining INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS riaktq_assignments (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, instance TEXT NOT NULL, key TEXT NOT NULL,
        token INTEGER NOT NULL, input BLOB NOT NULL, tags TEXT NOT NULL,
        taken INTEGER NOT NULL DEFAULT 0, UNIQUE (instance, key, token)
    )""",
    """CREATE TABLE IF NOT EXISTS riaktq_results (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, instance TEXT NOT NULL, key TEXT NOT NULL,
        token INTEGER NOT NULL, outcome TEXT NOT NULL, sat INTEGER NOT NULL,
        laf INTEGER NOT NULL, out BLOB, error TEXT, UNIQUE (instance, key, token)
    )""",
    """CREATE TABLE IF NOT EXISTS riaktq_lease (
        name TEXT PRIMARY KEY, holder TEXT, epoch INTEGER NOT NULL, beat INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, released INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS riaktq_signals (
        name TEXT PRIMARY KEY, value INTEGER NOT NULL
    ) WITHOUT ROWID""",
)

_RECORD = "name, worker, tags, capacity, interval_us, beat, beat_at, draining"
_LEASE = "name, holder, epoch, beat, expires_at, released"


class FencedSqliteStore(SqliteStore):
    """A SqliteStore whose write transactions first run a fence check (none until set)."""

    def __init__(self, path: str = ":memory:", **options: Any) -> None:
        self._fence: Fence | None = None
        super().__init__(path, **options)

    def set_fence(self, fence: Fence | None) -> None:
        self._fence = fence

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with super()._write() as db:
            fence = self._fence
            if fence is not None:
                fence(db)
            yield db

    @contextmanager
    def unfenced_write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction without the fence (the lease's own writes)."""
        with SqliteStore._write(self) as db:
            yield db


def _tags(tags: frozenset[str]) -> str:
    return TAG_SEPARATOR.join(sorted(tags))


def _tag_set(text: str) -> frozenset[str]:
    return frozenset(text.split(TAG_SEPARATOR)) if text else frozenset()


def _record(row: Sequence[Any]) -> InstanceRecord:
    name, worker, tags, capacity, interval_us, beat, beat_at, draining = row
    return InstanceRecord(
        name, worker, _tag_set(tags), capacity, interval_us, beat, beat_at, bool(draining)
    )


def _lease(row: Sequence[Any]) -> LeaseRecord:
    name, holder, epoch, beat, expires_at, released = row
    return LeaseRecord(name, holder, epoch, beat, expires_at, bool(released))


def _marks(items: Sequence[object]) -> str:
    return ",".join("?" * len(items))


class SqliteCoordination(Coordination):
    """The coordination contract on a SqliteStore's file (see the module docstring)."""

    def __init__(self, store: SqliteStore) -> None:
        if not isinstance(store, SqliteStore):
            raise ConfigError(f"SqliteCoordination needs a SqliteStore, got {type(store).__name__}")
        if store.path == ":memory:" or not store.path:
            raise ConfigError(
                "workers and schedulers in other processes need a SQLite file, not ':memory:'"
            )
        self.store = store
        with self._unfenced() as db:
            for statement in _SCHEMA:
                db.execute(statement)

    def __repr__(self) -> str:
        return f"SqliteCoordination({self.store.path!r})"

    # -- plumbing -------------------------------------------------------------------

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"sqlite store {self.store.path!r}: {what}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.store.path!r}: {what}: {exc}") from exc

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._errors(what), self.store._write() as db:
            yield db

    @contextmanager
    def _unfenced(self) -> Iterator[sqlite3.Connection]:
        store = self.store
        writer = store.unfenced_write if isinstance(store, FencedSqliteStore) else store._write
        with self._errors("lease"), writer() as db:
            yield db

    @contextmanager
    def _snapshot(self, what: str) -> Iterator[sqlite3.Connection]:
        """One read transaction: every statement inside sees the same committed state."""
        with self._errors(what), self.store._lock:
            db = self.store._db
            db.execute("BEGIN")
            try:
                yield db
            finally:
                db.execute("COMMIT")

    @staticmethod
    def _bump(db: sqlite3.Connection, name: str) -> None:
        db.execute(
            "INSERT INTO riaktq_signals (name, value) VALUES (?, 1)"
            " ON CONFLICT (name) DO UPDATE SET value = value + 1",
            (name,),
        )

    # -- worker side ----------------------------------------------------------------

    def register(self, records: Sequence[InstanceRecord]) -> None:
        with self._write("register") as db:
            db.executemany(
                f"INSERT OR REPLACE INTO riaktq_instances ({_RECORD}) VALUES (?,?,?,?,?,?,?,?)",
                [
                    (
                        r.name,
                        r.worker,
                        _tags(r.tags),
                        r.capacity,
                        r.interval_us,
                        r.beat,
                        r.beat_at,
                        int(r.draining),
                    )
                    for r in records
                ],
            )
            self._bump(db, "workers")

    def beat(self, names: Sequence[str], at: int) -> list[str]:
        missing: list[str] = []
        with self._write("heartbeat") as db:
            for name in names:
                cursor = db.execute(
                    "UPDATE riaktq_instances SET beat = beat + 1, beat_at = ? WHERE name = ?",
                    (at, name),
                )
                if cursor.rowcount == 0:
                    missing.append(name)
        return missing

    def take(self, names: Sequence[str]) -> dict[str, Assignment]:
        if not names:
            return {}
        with self._errors("take"), self.store._lock:
            waiting = self.store._db.execute(
                "SELECT DISTINCT instance FROM riaktq_assignments"
                f" WHERE taken = 0 AND instance IN ({_marks(names)})",
                list(names),
            ).fetchall()
        if not waiting:
            return {}
        taken: dict[str, Assignment] = {}
        with self._write("take") as db:
            for (name,) in waiting:
                row = db.execute(
                    "SELECT seq, key, token, input, tags FROM riaktq_assignments"
                    " WHERE instance = ? AND taken = 0 ORDER BY seq LIMIT 1",
                    (name,),
                ).fetchone()
                if row is None:
                    continue
                seq, key, token, data, tags = row
                db.execute("UPDATE riaktq_assignments SET taken = 1 WHERE seq = ?", (seq,))
                taken[name] = Assignment(key, token, bytes(data), _tag_set(tags))
        return taken

    def finish(self, results: Sequence[tuple[str, Result]]) -> None:
        if not results:
            return
        with self._write("hand in results") as db:
            for name, r in results:
                db.execute(
                    "INSERT OR REPLACE INTO riaktq_results"
                    " (instance, key, token, outcome, sat, laf, out, error)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (name, r.key, r.token, r.outcome.value, r.sat, r.laf, r.out, r.error),
                )
                db.execute(
                    "DELETE FROM riaktq_assignments WHERE instance = ? AND key = ? AND token = ?",
                    (name, r.key, r.token),
                )
            self._bump(db, "workers")

    def drain(self, names: Sequence[str]) -> list[str]:
        if not names:
            return []
        marks = _marks(names)
        with self._write("drain") as db:
            db.execute(
                f"UPDATE riaktq_instances SET draining = 1 WHERE name IN ({marks})", list(names)
            )
            keys = [
                key
                for (key,) in db.execute(
                    "SELECT key FROM riaktq_assignments"
                    f" WHERE taken = 0 AND instance IN ({marks}) ORDER BY seq",
                    list(names),
                )
            ]
            if keys:
                db.execute(
                    f"DELETE FROM riaktq_assignments WHERE taken = 0 AND instance IN ({marks})",
                    list(names),
                )
            self._bump(db, "workers")
        return keys

    def leave(self, names: Sequence[str]) -> None:
        if not names:
            return
        marks = _marks(names)
        with self._write("leave") as db:
            db.execute(f"DELETE FROM riaktq_instances WHERE name IN ({marks})", list(names))
            db.execute(f"DELETE FROM riaktq_assignments WHERE instance IN ({marks})", list(names))
            self._bump(db, "workers")

    # -- scheduler side ---------------------------------------------------------------

    def directory(self) -> dict[str, InstanceRecord | None]:
        with self._snapshot("read the registry") as db:
            found: dict[str, InstanceRecord | None] = {
                row[0]: _record(row)
                for row in db.execute(f"SELECT {_RECORD} FROM riaktq_instances")
            }
            for (name,) in db.execute("SELECT DISTINCT instance FROM riaktq_results"):
                found.setdefault(name, None)
        return found

    def mailbox(self, name: str) -> Mailbox:
        with self._snapshot("read a mailbox") as db:
            row = db.execute(
                f"SELECT {_RECORD} FROM riaktq_instances WHERE name = ?", (name,)
            ).fetchone()
            queued = db.execute(
                "SELECT key, taken FROM riaktq_assignments WHERE instance = ? ORDER BY seq",
                (name,),
            ).fetchall()
            results = db.execute(
                "SELECT key, token, outcome, sat, laf, out, error FROM riaktq_results"
                " WHERE instance = ? ORDER BY seq",
                (name,),
            ).fetchall()
        return Mailbox(
            None if row is None else _record(row),
            tuple(key for key, _ in queued),
            tuple(key for key, taken in queued if taken),
            tuple(
                Result(
                    key,
                    token,
                    Outcome(outcome),
                    sat,
                    laf,
                    None if out is None else bytes(out),
                    error,
                )
                for key, token, outcome, sat, laf, out, error in results
            ),
        )

    def put(self, name: str, assignments: Sequence[Assignment]) -> list[str]:
        if not assignments:
            return []
        with self._write("put assignments") as db:
            row = db.execute(
                "SELECT draining FROM riaktq_instances WHERE name = ?", (name,)
            ).fetchone()
            if row is None or row[0]:
                return []
            db.executemany(
                "INSERT OR IGNORE INTO riaktq_assignments (instance, key, token, input, tags)"
                " VALUES (?,?,?,?,?)",
                [(name, a.key, a.token, a.input, _tags(a.tags)) for a in assignments],
            )
        return [a.key for a in assignments]

    def commit(self, name: str, entries: Sequence[tuple[str, int]]) -> int:
        if not entries:
            return 0
        with self._write("commit results") as db:
            return sum(
                db.execute(
                    "DELETE FROM riaktq_results WHERE instance = ? AND key = ? AND token = ?",
                    (name, key, token),
                ).rowcount
                for key, token in entries
            )

    def forget(self, name: str) -> int:
        with self._write("forget an instance") as db:
            dropped = db.execute(
                "DELETE FROM riaktq_assignments WHERE instance = ?", (name,)
            ).rowcount
            db.execute("DELETE FROM riaktq_instances WHERE name = ?", (name,))
        return dropped

    def signal(self) -> tuple[int, ...]:
        with self._snapshot("read signals") as db:
            (position,) = db.execute("SELECT coalesce(max(pos), 0) FROM log").fetchone()
            row = db.execute("SELECT value FROM riaktq_signals WHERE name = 'workers'").fetchone()
        return (int(position), 0 if row is None else int(row[0]))

    # -- the lease ---------------------------------------------------------------------

    def lease_get(self, name: str) -> LeaseRecord | None:
        with self._snapshot("read the lease") as db:
            row = db.execute(f"SELECT {_LEASE} FROM riaktq_lease WHERE name = ?", (name,))
            found = row.fetchone()
        return None if found is None else _lease(found)

    def lease_acquire(
        self, name: str, holder: str, expected: LeaseRecord | None, now: int, duration_us: int
    ) -> LeaseRecord | None:
        with self._unfenced() as db:
            row = db.execute(f"SELECT {_LEASE} FROM riaktq_lease WHERE name = ?", (name,))
            found = row.fetchone()
            current = None if found is None else _lease(found)
            if current != expected:
                return None  # someone moved first
            epoch = 1 if current is None else current.epoch + 1
            taken = LeaseRecord(name, holder, epoch, 0, now + duration_us, False)
            db.execute(
                f"INSERT OR REPLACE INTO riaktq_lease ({_LEASE}) VALUES (?,?,?,?,?,?)",
                (name, holder, epoch, 0, taken.expires_at, 0),
            )
        return taken

    def lease_renew(self, name: str, holder: str, epoch: int, now: int, duration_us: int) -> bool:
        with self._unfenced() as db:
            cursor = db.execute(
                "UPDATE riaktq_lease SET beat = beat + 1, expires_at = ?"
                " WHERE name = ? AND holder = ? AND epoch = ? AND released = 0",
                (now + duration_us, name, holder, epoch),
            )
            return cursor.rowcount == 1

    def lease_release(self, name: str, holder: str, epoch: int) -> bool:
        with self._unfenced() as db:
            cursor = db.execute(
                "UPDATE riaktq_lease SET released = 1, beat = beat + 1"
                " WHERE name = ? AND holder = ? AND epoch = ? AND released = 0",
                (name, holder, epoch),
            )
            return cursor.rowcount == 1

    def install_fence(self, name: str, current: Callable[[], tuple[str, int] | None]) -> None:
        store = self.store
        if not isinstance(store, FencedSqliteStore):
            raise ConfigError(
                f"fencing needs a FencedSqliteStore, got {type(store).__name__}:"
                " open the scheduler's store with FencedSqliteStore(path)"
            )

        def check(db: sqlite3.Connection) -> None:
            mine = current()
            if mine is None:
                raise LeaseLost(f"write refused: this process does not hold lease {name!r}")
            row = db.execute(
                "SELECT holder, epoch, released FROM riaktq_lease WHERE name = ?", (name,)
            ).fetchone()
            if row is None or (row[0], row[1], row[2]) != (mine[0], mine[1], 0):
                now = "nobody" if row is None else f"{row[0]} at epoch {row[1]}"
                raise LeaseLost(
                    f"write refused: lease {name!r} is held by {now}"
                    f"{' (released)' if row is not None and row[2] else ''},"
                    f" not by {mine[0]} at epoch {mine[1]}"
                )

        store.set_fence(check)
