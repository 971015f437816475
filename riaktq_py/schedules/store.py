"""Where schedules and their occurrence records live.

:class:`ScheduleStore` is the contract; :class:`SqliteScheduleStore` keeps them
in two tables of a :class:`~riaktq_py.store.sqlite.SqliteStore`'s database (so
they share its file, its lock and its transactions), and
:class:`MemoryScheduleStore` in this process only (tests, or a store with no
schedule tables: not durable). The Riak store has no schedule storage yet:
:func:`schedule_store_for` says so with a :class:`~riaktq_py.errors.ConfigError`.

Writers: the API writes definitions (:meth:`~ScheduleStore.add`,
:meth:`~ScheduleStore.update`, :meth:`~ScheduleStore.delete`); the scheduler's
step writes state (:meth:`~ScheduleStore.advance`). The two touch different
fields, so neither overwrites the other.
"""

from __future__ import annotations

import abc
import builtins
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from riaktq_py.errors import ConfigError, StoreError
from riaktq_py.schedules.events import Occurrence, OccurrenceOutcome
from riaktq_py.schedules.model import RecurringSchedule, ScheduleExists, occurrence_key
from riaktq_py.store.base import Store
from riaktq_py.store.sqlite import SqliteStore


class ScheduleStore(abc.ABC):
    """Schedules by name, and what happened to each of their occurrences."""

    @abc.abstractmethod
    def add(self, schedule: RecurringSchedule) -> None:
        """Store a new schedule; :class:`ScheduleExists` if the name is taken."""

    @abc.abstractmethod
    def update(self, schedule: RecurringSchedule) -> bool:
        """Replace the definition, ``start`` and ``resumed_at`` of a stored schedule.

        ``last_due`` and ``last_task`` (the step's) are kept. ``False`` if no
        schedule of that name and ``created`` exists.
        """

    @abc.abstractmethod
    def get(self, name: str) -> RecurringSchedule | None: ...

    @abc.abstractmethod
    def list(self) -> list[RecurringSchedule]:
        """Every schedule, by name."""

    @abc.abstractmethod
    def delete(self, name: str) -> bool:
        """Remove a schedule and its occurrence records; ``True`` if it existed."""

    @abc.abstractmethod
    def advance(
        self,
        schedule: RecurringSchedule,
        last_due: int,
        last_task: str | None,
        records: Sequence[Occurrence],
    ) -> bool:
        """Record occurrences and move ``last_due`` forward (never back), atomically.

        ``last_task`` replaces the stored one when given. A record for an
        occurrence already recorded is ignored (the first record stands).
        ``False`` (and nothing written) if the schedule was deleted or replaced.
        """

    @abc.abstractmethod
    def occurrences(
        self, name: str, *, after: int | None = None, limit: int = 1000
    ) -> builtins.list[Occurrence]:
        """Records of ``name`` with ``due`` after ``after``, by due time, at most ``limit``."""

    def iter_occurrences(
        self, name: str, *, after: int | None = None, page_size: int = 1000
    ) -> Iterator[Occurrence]:
        """Every record of ``name`` with ``due`` after ``after``, by due time, read by pages."""
        while True:
            page = self.occurrences(name, after=after, limit=page_size)
            yield from page
            if len(page) < page_size:
                return
            after = page[-1].due


class MemoryScheduleStore(ScheduleStore):
    """Schedules in this process only: for tests, and stores with no schedule tables."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._schedules: dict[str, RecurringSchedule] = {}
        self._records: dict[str, dict[int, Occurrence]] = {}

    def add(self, schedule: RecurringSchedule) -> None:
        with self._lock:
            if schedule.name in self._schedules:
                raise ScheduleExists(f"a schedule named {schedule.name!r} exists already")
            self._schedules[schedule.name] = schedule
            self._records[schedule.name] = {}

    def update(self, schedule: RecurringSchedule) -> bool:
        with self._lock:
            stored = self._schedules.get(schedule.name)
            if stored is None or stored.created != schedule.created:
                return False
            self._schedules[schedule.name] = schedule.replace(
                last_due=stored.last_due, last_task=stored.last_task
            )
            return True

    def get(self, name: str) -> RecurringSchedule | None:
        with self._lock:
            return self._schedules.get(name)

    def list(self) -> list[RecurringSchedule]:
        with self._lock:
            return [self._schedules[name] for name in sorted(self._schedules)]

    def delete(self, name: str) -> bool:
        with self._lock:
            self._records.pop(name, None)
            return self._schedules.pop(name, None) is not None

    def advance(
        self,
        schedule: RecurringSchedule,
        last_due: int,
        last_task: str | None,
        records: Sequence[Occurrence],
    ) -> bool:
        with self._lock:
            stored = self._schedules.get(schedule.name)
            if stored is None or stored.created != schedule.created:
                return False
            self._schedules[schedule.name] = stored.replace(
                last_due=max(last_due, stored.last_due or last_due),
                last_task=last_task or stored.last_task,
            )
            kept = self._records[schedule.name]
            for record in records:
                kept.setdefault(record.due, record)
            return True

    def occurrences(
        self, name: str, *, after: int | None = None, limit: int = 1000
    ) -> builtins.list[Occurrence]:
        with self._lock:
            kept = self._records.get(name, {})
            dues = sorted(d for d in kept if after is None or d > after)
            return [kept[d] for d in dues[:limit]]


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS schedules (
        name TEXT PRIMARY KEY, definition BLOB NOT NULL, created INTEGER NOT NULL,
        start INTEGER NOT NULL, last_due INTEGER, last_task TEXT, resumed_at INTEGER
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS schedule_occurrences (
        schedule TEXT NOT NULL, due INTEGER NOT NULL, last_due INTEGER NOT NULL,
        count INTEGER, outcome TEXT NOT NULL, reason TEXT NOT NULL, task_key TEXT,
        recorded INTEGER NOT NULL, PRIMARY KEY (schedule, due)
    ) WITHOUT ROWID""",
)
_SCHEDULE_COLUMNS = "name, definition, created, start, last_due, last_task, resumed_at"
_OCCURRENCE_COLUMNS = "schedule, due, last_due, count, outcome, reason, task_key, recorded"


def _schedule(row: Sequence[Any]) -> RecurringSchedule:
    name, definition, created, start, last_due, last_task, resumed_at = row
    return RecurringSchedule.from_parts(
        name,
        bytes(definition),
        created=created,
        start=start,
        last_due=last_due,
        last_task=last_task,
        resumed_at=resumed_at,
    )


def _occurrence(row: Sequence[Any]) -> Occurrence:
    schedule, due, last_due, count, outcome, reason, task_key, recorded = row
    return Occurrence(
        schedule, due, OccurrenceOutcome(outcome), reason, recorded, task_key, last_due, count
    )


class SqliteScheduleStore(ScheduleStore):
    """Schedules in the tables ``schedules`` and ``schedule_occurrences`` of a SQLite store.

    It uses the store's connection, lock and ``BEGIN IMMEDIATE`` transactions
    (its ``_write``/``_read`` helpers), so several processes can share the file.
    """

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        with self._write() as db:
            for statement in _SCHEMA:
                db.execute(statement)

    def __repr__(self) -> str:
        return f"SqliteScheduleStore({self.store!r})"

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with self.store._write() as db:
                yield db
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.store.path!r}: schedules: {exc}") from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> builtins.list[Any]:
        return self.store._read(sql, params)

    def add(self, schedule: RecurringSchedule) -> None:
        with self._write() as db:
            exists = db.execute("SELECT 1 FROM schedules WHERE name = ?", (schedule.name,))
            if exists.fetchone() is not None:
                raise ScheduleExists(f"a schedule named {schedule.name!r} exists already")
            db.execute(
                f"INSERT INTO schedules ({_SCHEDULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    schedule.name,
                    schedule.encode_definition(),
                    schedule.created,
                    schedule.start,
                    schedule.last_due,
                    schedule.last_task,
                    schedule.resumed_at,
                ),
            )

    def update(self, schedule: RecurringSchedule) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE schedules SET definition = ?, start = ?, resumed_at = ?"
                " WHERE name = ? AND created = ?",
                (
                    schedule.encode_definition(),
                    schedule.start,
                    schedule.resumed_at,
                    schedule.name,
                    schedule.created,
                ),
            )
            return cursor.rowcount > 0

    def get(self, name: str) -> RecurringSchedule | None:
        rows = self._read(f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE name = ?", (name,))
        return _schedule(rows[0]) if rows else None

    def list(self) -> list[RecurringSchedule]:
        rows = self._read(f"SELECT {_SCHEDULE_COLUMNS} FROM schedules ORDER BY name")
        return [_schedule(row) for row in rows]

    def delete(self, name: str) -> bool:
        with self._write() as db:
            db.execute("DELETE FROM schedule_occurrences WHERE schedule = ?", (name,))
            return db.execute("DELETE FROM schedules WHERE name = ?", (name,)).rowcount > 0

    def advance(
        self,
        schedule: RecurringSchedule,
        last_due: int,
        last_task: str | None,
        records: Sequence[Occurrence],
    ) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE schedules SET last_due = max(coalesce(last_due, ?), ?),"
                " last_task = coalesce(?, last_task) WHERE name = ? AND created = ?",
                (last_due, last_due, last_task, schedule.name, schedule.created),
            )
            if cursor.rowcount == 0:
                return False
            db.executemany(
                f"INSERT OR IGNORE INTO schedule_occurrences ({_OCCURRENCE_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (r.schedule, r.due, r.until, r.count, r.outcome.value, r.reason,
                     r.task_key, r.recorded)
                    for r in records
                ],
            )  # fmt: skip
            # skipped occurrences change no task: they go to the transition log as such
            self.store.append_log(
                db,
                [
                    (r.recorded, "occurrence_skipped", occurrence_key(r.schedule, r.due), r.reason)
                    for r in records
                    if r.outcome is OccurrenceOutcome.SKIPPED
                ],
            )
            return True

    def occurrences(
        self, name: str, *, after: int | None = None, limit: int = 1000
    ) -> builtins.list[Occurrence]:
        rows = self._read(
            f"SELECT {_OCCURRENCE_COLUMNS} FROM schedule_occurrences"
            " WHERE schedule = ? AND due > ? ORDER BY due LIMIT ?",
            (name, -(2**62) if after is None else after, limit),
        )
        return [_occurrence(row) for row in rows]


def schedule_store_for(store: Store) -> ScheduleStore:
    """The schedule storage that goes with a task store."""
    if isinstance(store, SqliteStore):
        return SqliteScheduleStore(store)
    raise ConfigError(
        f"recurring schedules are stored in SQLite; {type(store).__name__} has no schedule"
        " storage yet (Riak: not implemented). Pass a ScheduleStore explicitly"
        " (MemoryScheduleStore() keeps schedules in this process only)"
    )
