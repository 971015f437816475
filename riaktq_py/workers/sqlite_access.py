"""Access to a SqliteStore's file for coordination: transactions, snapshots, a fenced store.

:class:`SqliteAccess` uses the store's own connection, lock and ``BEGIN
IMMEDIATE`` transactions (so coordination tables change atomically with each
other, and several processes may share the file), translates driver errors
into :class:`~riaktq_py.errors.StoreUnavailable` / ``StoreError``, and reads
that must agree with each other in one read transaction: one snapshot.

:class:`FencedSqliteStore` is the scheduler's store: a ``SqliteStore`` whose
every write transaction first runs a fence check (the lease's epoch, see
:meth:`~riaktq_py.workers.sqlite_lease.SqliteLeases.install_fence`). The check
runs under SQLite's write lock, which a takeover also needs, so a write either
happens while the lease is held or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from riaktq_py.errors import ConfigError, StoreError, StoreUnavailable
from riaktq_py.store.sqlite import SqliteStore

Fence = Callable[[sqlite3.Connection], None]


class FencedSqliteStore(SqliteStore):
    """A SqliteStore whose write transactions first run a fence check (none until set)."""

    def __init__(self, path: str = ":memory:", **options: Any) -> None:
        self._fence: Fence | None = None
        super().__init__(path, **options)

    def set_fence(self, fence: Fence | None) -> None:
        self._fence = fence

    def _begin(self) -> None:
        super()._begin()
        fence = self._fence
        if fence is not None:
            try:
                fence(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def unfenced_write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction without the fence (the lease's own writes)."""
        with self._write(lambda: SqliteStore._begin(self)) as db:
            yield db


class SqliteAccess:
    """Transactions on a SqliteStore's file, for the coordination tables."""

    #: statements creating this class's tables (run once, unfenced)
    SCHEMA: Sequence[str] = ()

    def __init__(self, store: SqliteStore) -> None:
        if not isinstance(store, SqliteStore):
            raise ConfigError(f"coordination needs a SqliteStore, got {type(store).__name__}")
        if store.path == ":memory:" or not store.path:
            raise ConfigError(
                "workers and schedulers in other processes need a SQLite file, not ':memory:'"
            )
        self.store = store
        with self._unfenced() as db:
            for statement in self.SCHEMA:
                db.execute(statement)

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
