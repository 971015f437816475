"""A task's history: every attempt (assignee, sat, laf, outcome, out or error), read back.

riaktq lost the output, start time and duration of a failed attempt when the
task was restarted (SPEC B6); riaktq-py keeps one :class:`~riaktq_py.task.Attempt`
per attempt in the task, in order, and this module reads them back.
"""

from __future__ import annotations

from typing import Any

from riaktq_py import payload
from riaktq_py.errors import TaskNotFound, UndecodablePayload
from riaktq_py.store.base import Store
from riaktq_py.task import Attempt, jsonable


def task_history(store: Store, key: str) -> tuple[Attempt, ...]:
    """Every attempt of the task under ``key``, oldest first."""
    task = store.get(key)
    if task is None:
        raise TaskNotFound(f"no task {key!r}")
    return task.history


def attempt_summary(attempt: Attempt) -> dict[str, Any]:
    """A JSON-friendly view of one attempt (``out`` decoded, bytes as hex)."""
    out: Any = None
    if attempt.out is not None:
        try:
            out = payload.decode(attempt.out, what=f"output of attempt {attempt.number}")
        except UndecodablePayload:
            out = attempt.out
    return {
        "number": attempt.number,
        "assignee": attempt.assignee,
        "token": attempt.token,
        "outcome": attempt.outcome.value,
        "sat": attempt.sat,
        "laf": attempt.laf,
        "out": jsonable(out),
        "error": attempt.error,
    }
