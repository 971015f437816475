"""How SqliteStore applies transitions: a guess made before the write lock, checked under it.

Most of the work of a transition is Python (the transition itself, encoding the
row and its log entry) and does not need the database, only the task as it is
now. :func:`prepare` does it before the caller takes its write lock, from the
row the store last read or wrote for the key (its :class:`RowCodec`), and plans
the batch's writes. Under the lock, the stored rows are read again (or, by
:func:`known_rows`, known without reading when no other connection wrote since),
and :func:`apply_prepared` keeps each guess whose row is still the one it was
made from (compared whole); any other transition is applied there and then, as
if no guess had been made. Either way the outcome is what
``transition.apply(current)`` gives for the task as stored: the guess only
moves work out of the critical section.
"""

from __future__ import annotations

import dataclasses
import itertools
import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

from riaktq_py.errors import TransitionError
from riaktq_py.events import TaskEvent
from riaktq_py.store.sqlite_rows import RowCodec, _check_unique, _pack
from riaktq_py.store.sqlite_writes import Writes, insert_new, plan_writes, run_writes, write_log
from riaktq_py.task import Task
from riaktq_py.transitions import MAY_CREATE, Transition

Row = tuple[Any, ...]


class Guess(NamedTuple):
    """A transition's outcome, assuming its task's row is ``base`` (None: no task)."""

    base: Sequence[Any] | None
    task: Task | None  # None: refused, with ``error``
    row: Row | None = None
    blob: bytes | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Prepared:
    """What :func:`prepare` made of a batch: a guess per transition and, when every
    transition has one, the batch's writes as they follow from the guesses."""

    guesses: list[Guess | None]
    writes: Writes | None = None


def prepare(codec: RowCodec, transitions: Sequence[Transition]) -> Prepared:
    """A guess per transition (None where there is nothing to guess from)."""
    if len(transitions) == 1:
        repeated: set[str] = set()
    else:
        keys = [t.key for t in transitions]
        repeated = set() if len(set(keys)) == len(keys) else _repeated(keys)
    guesses: list[Guess | None] = []
    bases: dict[str, Sequence[Any]] = {}  # the rows the guesses start from, and end with
    rows: dict[str, Row] = {}
    complete = True
    for transition in transitions:
        key = transition.key
        again = key in repeated  # no guess: the batch itself changes the task
        seen = None if again else codec.peek(key)
        if seen is None and (again or transition.name not in MAY_CREATE):
            guesses.append(None)
            complete = False
            continue
        base, current = (None, None) if seen is None else seen
        try:
            task = transition.apply(current)
        except TransitionError as exc:
            guesses.append(Guess(base, None, error=str(exc)))
            continue
        if task.unique is not None:  # checked against the table, under the lock
            guesses.append(None)
            complete = False
            continue
        row = codec.row(task)
        guesses.append(Guess(base, task, row, _pack(row)))
        rows[key] = row
        if base is not None:
            bases[key] = base
    if not complete or (len(transitions) == 1 and guesses[0] and guesses[0].base is None):
        return Prepared(guesses)  # (a single create is written as one insert-if-new)
    return Prepared(guesses, plan_writes(bases, rows))


def _repeated(keys: list[str]) -> set[str]:
    """The keys that come more than once."""
    seen: set[str] = set()
    twice: set[str] = set()
    for key in keys:
        if key in seen:
            twice.add(key)
        seen.add(key)
    return twice


def _holds(guess: Guess | None, now: Sequence[Any] | None) -> bool:
    """The guess was made from the row stored now (or from no row, and there is none)."""
    return guess is not None and (guess.base is None if now is None else guess.base == now)


def create_prepared(
    db: sqlite3.Connection,
    codec: RowCodec,
    guess: Guess | None,
    log_append: str,
    bucket: str,
    name: str,
    at: int,
) -> TaskEvent | None:
    """A single guessed create (an open of a new key): one insert that does nothing if
    the key exists, and one log append. None when the key exists (or there is no such
    guess): the caller applies the transition the general way, in the same transaction.
    """
    if guess is None or guess.base is not None or guess.task is None or guess.row is None:
        return None
    if not insert_new(db, guess.row):
        return None
    task = guess.task
    codec.remember(guess.row, task)
    position = db.execute(log_append, (at, name, task.key, guess.blob)).lastrowid
    assert position is not None
    return TaskEvent(name, bucket, task.key, at, task, None, position)


def apply_prepared(
    db: sqlite3.Connection,
    codec: RowCodec,
    transitions: Sequence[Transition],
    prepared: Prepared,
    stored: dict[str, Row],
    first_position: int,
    bucket: str,
    at: int,
) -> list[TaskEvent]:
    """Apply ``transitions`` to the ``stored`` rows (read under the write lock)."""
    guesses = prepared.guesses
    if prepared.writes is not None and all(
        _holds(guess, stored.get(t.key)) for t, guess in zip(transitions, guesses, strict=True)
    ):
        return _apply_guessed(db, codec, transitions, prepared, first_position, bucket, at)
    events: list[TaskEvent] = []
    current: dict[str, Task] = {}
    writes: dict[str, Row] = {}
    logged: list[Row] = []
    refused: list[Row] = []
    for position, transition, guess in zip(
        itertools.count(first_position), transitions, guesses, strict=False
    ):
        name, key = transition.name, transition.key
        now = stored.get(key)
        if _holds(guess, now):
            assert guess is not None
            if guess.task is None:
                refused.append((position, at, name, key, guess.error))
                events.append(TaskEvent(name, bucket, key, at, None, guess.error, position))
                continue
            task, row, blob = guess.task, guess.row, guess.blob
        else:
            before = current.get(key)
            if before is None and now is not None:
                before = codec.task(now)
            try:
                task = transition.apply(before)
                if task.unique is not None:
                    _check_unique(db, name, task, current, writes)
            except TransitionError as exc:
                error = str(exc)
                refused.append((position, at, name, key, error))
                events.append(TaskEvent(name, bucket, key, at, None, error, position))
                continue
            row = codec.row(task)
            blob = _pack(row)
        assert row is not None
        current[key] = task
        writes[key] = row
        logged.append((position, at, name, key, blob))
        events.append(TaskEvent(name, bucket, key, at, task, None, position))
    run_writes(db, plan_writes(stored, writes))
    write_log(db, logged, refused)
    for key, row in writes.items():
        codec.remember(row, current[key])
    return events


def _apply_guessed(
    db: sqlite3.Connection,
    codec: RowCodec,
    transitions: Sequence[Transition],
    prepared: Prepared,
    first_position: int,
    bucket: str,
    at: int,
) -> list[TaskEvent]:
    """Every guess holds: write what :func:`prepare` planned, log and report it."""
    assert prepared.writes is not None
    events: list[TaskEvent] = []
    logged: list[Row] = []
    refused: list[Row] = []
    for position, transition, guess in zip(
        itertools.count(first_position), transitions, prepared.guesses, strict=False
    ):
        assert guess is not None
        name, key, task = transition.name, transition.key, guess.task
        if task is None:
            refused.append((position, at, name, key, guess.error))
        else:
            logged.append((position, at, name, key, guess.blob))
        events.append(TaskEvent(name, bucket, key, at, task, guess.error, position))
    run_writes(db, prepared.writes)
    write_log(db, logged, refused)
    for guess in prepared.guesses:
        assert guess is not None
        if guess.task is not None and guess.row is not None:
            codec.remember(guess.row, guess.task)
    return events


def known_rows(
    db: sqlite3.Connection,
    codec: RowCodec,
    transitions: Sequence[Transition],
    prepared: Prepared,
) -> dict[str, Row] | None:
    """The stored rows of the transitions' tasks without reading them (under the write
    lock), or None when they must be read.

    Known when no other connection wrote since this one's last write transaction
    (``PRAGMA data_version``) and every guess was made from the row still remembered
    for its key: this connection's own writes all pass through the codec.
    """
    [(version,)] = db.execute("PRAGMA data_version").fetchall()
    if version != codec.version:  # somebody else wrote: no remembered row is sure
        codec.reset()
        codec.version = version
        return None
    if prepared.writes is None:
        return None
    known: dict[str, Row] = {}
    for transition, guess in zip(transitions, prepared.guesses, strict=True):
        seen = codec.peek(transition.key)
        # a key not remembered may still be stored (forgotten): that needs a read
        if guess is None or seen is None or guess.base is not seen[0]:
            return None
        known[transition.key] = tuple(seen[0])
    return known
