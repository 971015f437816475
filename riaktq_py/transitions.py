"""Every status transition, in one place.

The status graph (SPEC A1)::

    open      (any, or no task)  -> todo
    assign    todo               -> nextup     assignee set, token + 1
    close     nextup             -> done | failed   (token must match)
    restart   failed, retry > 0  -> todo       retry - 1, priority - 1
    rollback  nextup             -> todo       assignee removed

A transition is a typed value. ``apply(current)`` checks that the task is in
the status the transition expects and returns the new task, or raises
:class:`~riaktq_py.errors.TransitionError` ("expected X, found Y") without
acting. Stores apply transitions atomically (compare-and-set on the status the
transition read) but never decide what a transition does: that lives here.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from riaktq_py import payload
from riaktq_py.errors import TransitionError
from riaktq_py.task import Attempt, Outcome, Status, Task

#: Which transition moves a task from which statuses to which (documentation
#: and tests read this table; ``None`` in "from" means the task may not exist).
GRAPH: dict[str, tuple[frozenset[Status | None], frozenset[Status]]] = {
    "open": (frozenset({None, *Status}), frozenset({Status.TODO})),
    "assign": (frozenset({Status.TODO}), frozenset({Status.NEXTUP})),
    "close": (frozenset({Status.NEXTUP}), frozenset({Status.DONE, Status.FAILED})),
    "restart": (frozenset({Status.FAILED}), frozenset({Status.TODO})),
    "rollback": (frozenset({Status.NEXTUP}), frozenset({Status.TODO})),
}


class Transition(Protocol):
    """What every transition provides."""

    @property
    def name(self) -> str: ...

    @property
    def key(self) -> str: ...

    def apply(self, current: Task | None) -> Task: ...


def _found(task: Task | None) -> str:
    return "no task" if task is None else task.status.value


def _expect(name: str, key: str, task: Task | None, status: Status) -> Task:
    if task is None or task.status is not status:
        raise TransitionError(name, key, status.value, _found(task))
    return task


@dataclasses.dataclass(frozen=True, slots=True)
class Open:
    """Create a task, or re-open an existing one with new input (it runs again)."""

    key: str
    input: bytes
    cat: int
    priority: int = 0
    retry: int = 0
    tags: frozenset[str] = frozenset()
    #: create only: refused ("expected no task") when the key exists, so that a
    #: second attempt to open the same occurrence of a schedule is a no-op
    only_new: bool = False
    name: str = "open"

    def apply(self, current: Task | None) -> Task:
        if self.only_new and current is not None:
            raise TransitionError(self.name, self.key, "no task", current.status.value)
        kept_history = current.history if current is not None else ()
        kept_token = current.token if current is not None else 0
        return Task(
            key=self.key,
            status=Status.TODO,
            input=self.input,
            cat=self.cat,
            priority=self.priority,
            retry=self.retry,
            tags=self.tags,
            token=kept_token,  # monotonic, so results of an older run never close this one
            history=kept_history,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Assign:
    """Give a todo task to an instance."""

    key: str
    assignee: str
    name: str = "assign"

    def apply(self, current: Task | None) -> Task:
        task = _expect(self.name, self.key, current, Status.TODO)
        return task.replace(status=Status.NEXTUP, assignee=self.assignee, token=task.token + 1)


@dataclasses.dataclass(frozen=True, slots=True)
class Close:
    """Record an instance's result: done with output, or failed with a reason."""

    key: str
    assignee: str
    token: int
    outcome: Outcome
    sat: int
    laf: int
    out: bytes | None = None
    error: str | None = None
    name: str = "close"

    def apply(self, current: Task | None) -> Task:
        task = _expect(self.name, self.key, current, Status.NEXTUP)
        if task.token != self.token or task.assignee != self.assignee:
            raise TransitionError(
                self.name,
                self.key,
                f"nextup on {self.assignee} token {self.token}",
                f"nextup on {task.assignee} token {task.token}",
            )
        number = task.attempts + 1
        failed = self.outcome is Outcome.FAILED
        # riaktq keeps the failure reason in ``out``
        out = payload.encode(self.error or "", limit=2**62) if failed else self.out
        attempt = Attempt(
            number, self.assignee, self.token, self.outcome, self.sat, self.laf, out, self.error
        )
        return task.replace(
            status=Status.FAILED if failed else Status.DONE,
            out=out,
            sat=self.sat,
            laf=self.laf,
            attempts=number,
            error=self.error if failed else task.error,
            history=(*task.history, attempt),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Restart:
    """Put a failed task that has retries left back to todo, one priority lower."""

    key: str
    name: str = "restart"

    def apply(self, current: Task | None) -> Task:
        task = _expect(self.name, self.key, current, Status.FAILED)
        if task.retry <= 0:
            raise TransitionError(
                self.name, self.key, "failed with retries left", "failed with retry 0"
            )
        return task.replace(
            status=Status.TODO, retry=task.retry - 1, priority=task.priority - 1, assignee=None
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Rollback:
    """Return a nextup task whose instance lost it to todo."""

    key: str
    reason: str
    name: str = "rollback"

    def apply(self, current: Task | None) -> Task:
        task = _expect(self.name, self.key, current, Status.NEXTUP)
        lost = Attempt(
            task.attempts + 1, task.assignee or "", task.token, Outcome.LOST, error=self.reason
        )
        return task.replace(
            status=Status.TODO,
            assignee=None,
            attempts=task.attempts + 1,
            history=(*task.history, lost),
        )
