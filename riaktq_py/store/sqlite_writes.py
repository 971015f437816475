"""The SQLite store's writes: planned from rows, run as few statements as possible.

Two things make a write cheap here. One statement carries many rows (see
:func:`_in_chunks`): each statement is one step of SQLite, and each step lets
another thread take the GIL while this one holds the write lock. And only
what is needed is bound: Python's ``sqlite3`` binds a ``None`` or ``bytes``
parameter through its adapter look-up (``__adapt__``/``__conform__``), a few
hundred ns each, so new rows name only their non-NULL columns, log entries
only their task or their error, and updates only the columns that changed.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Mapping, Sequence
from itertools import compress
from operator import is_not
from typing import Any

from riaktq_py.store.sqlite_rows import _COLUMN_NAMES

#: log entries of transitions that wrote a task, and of refused ones (the column left
#: out is NULL all the same)
_LOG_TASKS = "INSERT INTO log (pos, at, transition, key, task) VALUES"
_LOG_REFUSALS = "INSERT INTO log (pos, at, transition, key, error) VALUES"


def write_log(
    db: sqlite3.Connection, logged: Sequence[tuple[Any, ...]], refused: Sequence[tuple[Any, ...]]
) -> None:
    """Insert log rows: ``logged`` ``(pos, at, transition, key, task)`` of transitions that
    wrote a task, ``refused`` ``(pos, at, transition, key, error)`` of refused ones."""
    _in_chunks(db, _LOG_TASKS, logged)
    _in_chunks(db, _LOG_REFUSALS, refused)


def _non_null(row: tuple[Any, ...]) -> tuple[tuple[bool, ...], list[Any]]:
    """Which of a row's columns are not NULL, and their values."""
    present = tuple(map(is_not, row, _NULLS))
    return present, list(compress(row, present))


_NULLS = (None,) * len(_COLUMN_NAMES)


def _insert_texts(present: tuple[bool, ...]) -> tuple[str, str]:
    """``INSERT INTO tasks (the present columns) VALUES`` (the others are NULL) for rows
    of this shape, and the whole insert-if-new of one."""
    texts = _INSERT_TEXTS.get(present)
    if texts is None:
        head = f"INSERT INTO tasks ({', '.join(compress(_COLUMN_NAMES, present))}) VALUES"
        marks = ",".join("?" * sum(present))
        texts = head, f"{head} ({marks}) ON CONFLICT (key) DO NOTHING"
        if len(_INSERT_TEXTS) < 256:  # a few shapes recur (options set or not); bounded
            _INSERT_TEXTS[present] = texts
    return texts


_INSERT_TEXTS: dict[tuple[bool, ...], tuple[str, str]] = {}


def insert_new(db: sqlite3.Connection, row: tuple[Any, ...]) -> bool:
    """Insert a new task's row, binding only its non-NULL columns; False (and nothing
    written) when a task with its key exists."""
    present, values = _non_null(row)
    return bool(db.execute(_insert_texts(present)[1], values).rowcount == 1)


#: a batch's writes: the new rows, and the stored ones' changed columns by column set
Writes = tuple[list[tuple[Any, ...]], dict[tuple[int, ...], list[tuple[Any, ...]]]]


def plan_writes(
    stored: Mapping[str, Sequence[Any]], writes: Mapping[str, tuple[Any, ...]]
) -> Writes:
    """What to insert, and for stored rows only the columns that changed (an ``UPDATE``
    leaves the indexes of unchanged columns alone, a replace rewrites all)."""
    inserts: list[tuple[Any, ...]] = []
    updates: dict[tuple[int, ...], list[tuple[Any, ...]]] = {}
    for key, row in writes.items():
        old = stored.get(key)
        if old is None:
            inserts.append(row)
            continue
        changed = tuple([i for i in _DATA_COLUMNS if row[i] != old[i]])
        if changed:
            updates.setdefault(changed, []).append((key, *[row[i] for i in changed]))
    return inserts, updates


def run_writes(db: sqlite3.Connection, writes: Writes) -> None:
    """Carry out planned writes in multi-row statements (see :func:`_in_chunks`)."""
    inserts, updates = writes
    shapes: dict[tuple[bool, ...], list[list[Any]]] = {}
    for row in inserts:  # each shape of row (which columns are NULL) in statements of its own
        present, values = _non_null(row)
        shapes.setdefault(present, []).append(values)
    for present, new_rows in shapes.items():
        _in_chunks(db, _insert_texts(present)[0], new_rows)
    for changed, rows in updates.items():
        columns = ", ".join(f"{_COLUMN_NAMES[i]} = v.column{n}" for n, i in enumerate(changed, 2))
        _in_chunks(db, "UPDATE tasks SET " + columns + " FROM (VALUES", rows,
                   ") AS v WHERE tasks.key = v.column1")  # fmt: skip


_DATA_COLUMNS = range(1, len(_COLUMN_NAMES))  # all but the key
#: rows per statement: powers of two up to this, so few statement texts are ever made
_CHUNK = 64


def _in_chunks(
    db: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]], tail: str = ""
) -> None:
    """Run ``head VALUES-list tail`` over ``rows``, many rows per statement.

    One statement is one step of SQLite (an ``executemany`` steps once per row, and
    each step lets another thread take the GIL while this one holds the write lock).
    Chunks are powers of two (64, 32, ... 1) so the statement cache keeps up.
    """
    start, size, total = 0, _CHUNK, len(rows)
    while start < total:
        while size > total - start:
            size //= 2
        chunk = rows[start : start + size]
        marks = "(" + ",".join("?" * len(chunk[0])) + ")"
        db.execute(f"{head} {','.join([marks] * size)}{tail}", list(itertools.chain(*chunk)))
        start += size
