"""Every status transition, in one place.

The status graph (SPEC A1)::

    open      (any, or no task)  -> todo
    assign    todo               -> nextup     assignee set, token + 1
    close     nextup             -> done | failed   (token must match)
              canceled           -> canceled   a late result joins the history
    restart   failed, retry > 0  -> todo       retry - 1, priority - 1, run_at = backoff
    rollback  nextup             -> todo       assignee removed
    cancel    todo | nextup      -> canceled
    update    todo               -> todo       input, priority, tags, run_at replaced
    retry     failed | canceled  -> todo       by hand, with new retries
    age       todo               -> todo       priority + 1 (priority aging)

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
from riaktq_py.frozen import quick_init
from riaktq_py.task import Attempt, Backoff, Outcome, Status, Task

#: Which transition moves a task from which statuses to which (documentation
#: and tests read this table; ``None`` in "from" means the task may not exist).
GRAPH: dict[str, tuple[frozenset[Status | None], frozenset[Status]]] = {
    "open": (frozenset({None, *Status}), frozenset({Status.TODO})),
    "assign": (frozenset({Status.TODO}), frozenset({Status.NEXTUP})),
    "close": (
        frozenset({Status.NEXTUP, Status.CANCELED}),
        frozenset({Status.DONE, Status.FAILED, Status.CANCELED}),
    ),
    "restart": (frozenset({Status.FAILED}), frozenset({Status.TODO})),
    "rollback": (frozenset({Status.NEXTUP}), frozenset({Status.TODO})),
    "cancel": (frozenset({Status.TODO, Status.NEXTUP}), frozenset({Status.CANCELED})),
    "update": (frozenset({Status.TODO}), frozenset({Status.TODO})),
    "retry": (frozenset({Status.FAILED, Status.CANCELED}), frozenset({Status.TODO})),
    "age": (frozenset({Status.TODO}), frozenset({Status.TODO})),
}


#: transitions that may find no task (they create it)
MAY_CREATE = frozenset(name for name, (sources, _) in GRAPH.items() if None in sources)


class Transition(Protocol):
    """What every transition provides."""

    @property
    def name(self) -> str: ...

    @property
    def key(self) -> str: ...

    def apply(self, current: Task | None) -> Task: ...


def _found(task: Task | None) -> str:
    return "no task" if task is None else task.status.value


def _expect(name: str, key: str, task: Task | None, *statuses: Status) -> Task:
    if task is None or task.status not in statuses:
        expected = " or ".join(s.value for s in statuses)
        raise TransitionError(name, key, expected, _found(task))
    return task


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class Open:
    """Create a task, or re-open an existing one with new input (it runs again)."""

    key: str
    input: bytes
    cat: int
    priority: int = 0
    retry: int = 0
    tags: frozenset[str] = frozenset()
    run_at: int | None = None
    unique: str | None = None
    timeout: float | None = None
    backoff: Backoff | None = None
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
            run_at=self.run_at,
            unique=self.unique,
            timeout=self.timeout,
            backoff=self.backoff,
        )


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class Assign:
    """Give a todo task to an instance."""

    key: str
    assignee: str
    name: str = "assign"

    def apply(self, current: Task | None) -> Task:
        task = _expect(self.name, self.key, current, Status.TODO)
        return task.replace(status=Status.NEXTUP, assignee=self.assignee, token=task.token + 1)


@quick_init
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
        task = _expect(self.name, self.key, current, Status.NEXTUP, Status.CANCELED)
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
        if task.status is Status.CANCELED:  # canceled while it ran: keep the result in history
            return task.replace(attempts=number, history=(*task.history, attempt))
        return task.replace(
            status=Status.FAILED if failed else Status.DONE,
            out=out,
            sat=self.sat,
            laf=self.laf,
            attempts=number,
            error=self.error if failed else task.error,
            history=(*task.history, attempt),
        )


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class Restart:
    """Put a failed task that has retries left back to todo, one priority lower."""

    key: str
    #: not before this time (µs): the retry's backoff, computed by the scheduler
    run_at: int | None = None
    name: str = "restart"

    def apply(self, current: Task | None) -> Task:
        task = _expect(self.name, self.key, current, Status.FAILED)
        if task.retry <= 0:
            raise TransitionError(
                self.name, self.key, "failed with retries left", "failed with retry 0"
            )
        return task.replace(
            status=Status.TODO,
            retry=task.retry - 1,
            priority=task.priority - 1,
            assignee=None,
            run_at=self.run_at,
        )


@quick_init
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


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel a todo task, or a nextup one cooperatively (its instance is told)."""

    key: str
    reason: str = "canceled"
    name: str = "cancel"

    def apply(self, current: Task | None) -> Task:
        task = _expect(self.name, self.key, current, Status.TODO, Status.NEXTUP)
        return task.replace(status=Status.CANCELED, error=self.reason)


#: "leave this field as it is" for :class:`Update`
KEEP: object = object()


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class Update:
    """Change a todo task's input, priority, tags or run_at (``KEEP`` leaves one as it is)."""

    key: str
    input: bytes | object = KEEP
    priority: int | object = KEEP
    tags: frozenset[str] | object = KEEP
    run_at: int | object | None = KEEP
    name: str = "update"

    def apply(self, current: Task | None) -> Task:
        task = _expect(self.name, self.key, current, Status.TODO)
        changes = {
            field: value
            for field, value in (
                ("input", self.input),
                ("priority", self.priority),
                ("tags", self.tags),
                ("run_at", self.run_at),
            )
            if value is not KEEP
        }
        return task.replace(**changes)


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class Retry:
    """Run a failed (or canceled) task again, by hand, with ``retry`` restarts left."""

    key: str
    retry: int = 0
    name: str = "retry"

    def apply(self, current: Task | None) -> Task:
        task = _expect(self.name, self.key, current, Status.FAILED, Status.CANCELED)
        return task.replace(status=Status.TODO, retry=self.retry, assignee=None, run_at=None)


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class Age:
    """Priority aging: a todo task that waited long gains ``step`` priority."""

    key: str
    at: int
    step: int = 1
    name: str = "age"

    def apply(self, current: Task | None) -> Task:
        task = _expect(self.name, self.key, current, Status.TODO)
        return task.replace(priority=task.priority + self.step, aged_at=self.at)
