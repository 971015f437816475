"""The coordination contract in a SQLite store's own file, in tables of its own.

:class:`SqliteCoordination` takes the :class:`~riaktq_py.store.sqlite.SqliteStore`
the tasks live in and uses its connection, lock and transactions (see
:mod:`~riaktq_py.workers.sqlite_access`): a worker's result replaces its
assignment in one transaction, and an instance's record and queues are read
in one snapshot. The lease lives in :mod:`~riaktq_py.workers.sqlite_lease`.
The scheduler opens its store as a
:class:`~riaktq_py.workers.sqlite_access.FencedSqliteStore`, so every write
it makes here is fenced by the lease too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from riaktq_py.actors.instance import Assignment, Result
from riaktq_py.errors import ConfigError
from riaktq_py.store.sqlite import TAG_SEPARATOR
from riaktq_py.task import Outcome
from riaktq_py.workers.coordination import Coordination, InstanceRecord, Mailbox
from riaktq_py.workers.sqlite_access import FencedSqliteStore
from riaktq_py.workers.sqlite_lease import LEASE_SCHEMA, SqliteLeases

__all__ = ["FencedSqliteStore", "SqliteCoordination"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS riaktq_instances (
        name TEXT PRIMARY KEY, worker TEXT NOT NULL, tags TEXT NOT NULL,
        capacity INTEGER NOT NULL, interval_us INTEGER NOT NULL, beat INTEGER NOT NULL,
        beat_at INTEGER NOT NULL, draining INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS riaktq_assignments (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, instance TEXT NOT NULL, key TEXT NOT NULL,
        token INTEGER NOT NULL, input BLOB NOT NULL, tags TEXT NOT NULL, timeout REAL,
        taken INTEGER NOT NULL DEFAULT 0, UNIQUE (instance, key, token)
    )""",
    """CREATE TABLE IF NOT EXISTS riaktq_results (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, instance TEXT NOT NULL, key TEXT NOT NULL,
        token INTEGER NOT NULL, outcome TEXT NOT NULL, sat INTEGER NOT NULL,
        laf INTEGER NOT NULL, out BLOB, error TEXT, UNIQUE (instance, key, token)
    )""",
    """CREATE TABLE IF NOT EXISTS riaktq_signals (
        name TEXT PRIMARY KEY, value INTEGER NOT NULL
    ) WITHOUT ROWID""",
)

_RECORD = "name, worker, tags, capacity, interval_us, beat, beat_at, draining"


def _tags(tags: frozenset[str]) -> str:
    return TAG_SEPARATOR.join(sorted(tags))


def _tag_set(text: str) -> frozenset[str]:
    return frozenset(text.split(TAG_SEPARATOR)) if text else frozenset()


def _record(row: Sequence[Any]) -> InstanceRecord:
    name, worker, tags, capacity, interval_us, beat, beat_at, draining = row
    return InstanceRecord(
        name, worker, _tag_set(tags), capacity, interval_us, beat, beat_at, bool(draining)
    )


def _marks(items: Sequence[object]) -> str:
    return ",".join("?" * len(items))


class SqliteCoordination(SqliteLeases, Coordination):
    """The coordination contract on a SqliteStore's file (see the module docstring)."""

    SCHEMA = (*_SCHEMA, *LEASE_SCHEMA)

    def __repr__(self) -> str:
        return f"SqliteCoordination({self.store.path!r})"

    @staticmethod
    def _bump(db: sqlite3.Connection, name: str) -> None:
        db.execute(
            "INSERT INTO riaktq_signals (name, value) VALUES (?, 1)"
            " ON CONFLICT (name) DO UPDATE SET value = value + 1",
            (name,),
        )

    # -- worker side ----------------------------------------------------------------

    def register(self, records: Sequence[InstanceRecord], *, replace: bool = False) -> None:
        names = [r.name for r in records]
        with self._write("register") as db:
            taken = db.execute(
                f"SELECT name, worker FROM riaktq_instances WHERE name IN ({_marks(names)})",
                names,
            ).fetchall()
            if taken and not replace:
                raise ConfigError(
                    "instance name(s) already registered: "
                    + ", ".join(f"{name} (worker {worker})" for name, worker in taken)
                    + "; give this worker another name, or wait until the scheduler"
                    " finds the old one dead"
                )
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
                f" WHERE instance IN ({_marks(names)})",
                list(names),
            ).fetchall()
        if not waiting:
            return {}
        taken: dict[str, Assignment] = {}
        with self._write("take") as db:
            for (name,) in waiting:
                # an assignment taken before but not finished was lost on the way
                # (the instance is idle): it is given again, before any new one
                row = db.execute(
                    "SELECT seq, key, token, input, tags, timeout FROM riaktq_assignments"
                    " WHERE instance = ? ORDER BY taken DESC, seq LIMIT 1",
                    (name,),
                ).fetchone()
                if row is None:
                    continue
                seq, key, token, data, tags, timeout = row
                db.execute("UPDATE riaktq_assignments SET taken = 1 WHERE seq = ?", (seq,))
                taken[name] = Assignment(key, token, bytes(data), _tag_set(tags), timeout)
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
                "INSERT OR IGNORE INTO riaktq_assignments"
                " (instance, key, token, input, tags, timeout) VALUES (?,?,?,?,?,?)",
                [(name, a.key, a.token, a.input, _tags(a.tags), a.timeout) for a in assignments],
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

    def cancel(self, name: str, entries: Sequence[tuple[str, int]]) -> list[str]:
        if not entries:
            return []
        dropped: list[str] = []
        with self._write("cancel assignments") as db:
            for key, token in entries:
                cursor = db.execute(
                    "DELETE FROM riaktq_assignments"
                    " WHERE instance = ? AND key = ? AND token = ? AND taken = 0",
                    (name, key, token),
                )
                if cursor.rowcount:
                    dropped.append(key)
        return dropped

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
