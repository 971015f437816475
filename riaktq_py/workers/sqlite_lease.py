"""The lease table: leases with an epoch, taken by compare-and-set, and the write fence."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from riaktq_py.errors import ConfigError
from riaktq_py.workers.coordination import LeaseLost, LeaseRecord
from riaktq_py.workers.sqlite_access import FencedSqliteStore, SqliteAccess

_LEASE = "name, holder, epoch, beat, expires_at, released"

LEASE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS riaktq_lease (
        name TEXT PRIMARY KEY, holder TEXT, epoch INTEGER NOT NULL, beat INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, released INTEGER NOT NULL
    ) WITHOUT ROWID""",
)


def _lease(row: Sequence[Any]) -> LeaseRecord:
    name, holder, epoch, beat, expires_at, released = row
    return LeaseRecord(name, holder, epoch, beat, expires_at, bool(released))


class SqliteLeases(SqliteAccess):
    """The lease half of the coordination contract, on a SqliteStore's file."""

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
