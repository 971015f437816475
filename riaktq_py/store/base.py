"""The store contract, in task terms.

A backend stores tasks and applies :mod:`~riaktq_py.transitions` to them. It
never decides what a transition does; it reads the task, calls
``transition.apply(current)`` and writes the result atomically with respect to
the status it read (compare-and-set), recording each transition in its log.
The one contract test suite in ``tests/store_contract.py`` runs against every
backend.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol

from riaktq_py.events import TaskEvent
from riaktq_py.task import Status, Task
from riaktq_py.transitions import Transition


class Queryable(Protocol):
    """What :meth:`TaskQuery.matches` reads: a Task, or an index entry describing one."""

    @property
    def status(self) -> Status: ...
    @property
    def cat(self) -> int: ...
    @property
    def tags(self) -> frozenset[str]: ...
    @property
    def assignee(self) -> str | None: ...
    @property
    def priority(self) -> int: ...


@dataclasses.dataclass(frozen=True, slots=True)
class TaskQuery:
    """Which tasks to find. Every criterion is optional; all given must hold."""

    status: Status | None = None
    created_before: int | None = None  # cat < this (µs)
    created_after: int | None = None  # cat >= this (µs)
    tags: frozenset[str] | None = None  # the task has all these tags
    assignee: str | None = None
    priority_min: int | None = None
    priority_max: int | None = None
    limit: int = 1000
    after_key: str | None = None

    def matches(self, task: Queryable) -> bool:
        """The same test in Python (for backends that filter after fetching, or on entries)."""
        return (
            (self.status is None or task.status is self.status)
            and (self.created_before is None or task.cat < self.created_before)
            and (self.created_after is None or task.cat >= self.created_after)
            and (self.tags is None or self.tags <= task.tags)
            and (self.assignee is None or task.assignee == self.assignee)
            and (self.priority_min is None or task.priority >= self.priority_min)
            and (self.priority_max is None or task.priority <= self.priority_max)
        )


class Store(abc.ABC):
    """What the scheduler, the API and the observer need from storage."""

    #: Name of the bucket the tasks live in (reported in events).
    bucket: str

    @abc.abstractmethod
    def apply(
        self, transitions: Sequence[Transition], *, at: int, prepared: object = None
    ) -> list[TaskEvent]:
        """Apply each transition atomically, in order; one event per transition.

        A refused transition (its ``apply`` raised ``TransitionError``) gives
        an event with ``error`` set and changes nothing; the others still apply.
        Backends batch the whole sequence into as few round trips as they can.
        ``prepared`` is what :meth:`prepare` returned for these transitions (or None).
        """

    def prepare(self, transitions: Sequence[Transition]) -> object:
        """Work ``apply`` may use, done before the caller takes its write lock (the
        engine's): a backend may guess outcomes here and check them in ``apply``, which
        must give the same result with or without it. The default prepares nothing.
        """
        return None

    @abc.abstractmethod
    def get(self, key: str) -> Task | None:
        """The task under ``key``, or ``None``."""

    @abc.abstractmethod
    def get_many(self, keys: Sequence[str]) -> dict[str, Task]:
        """The tasks that exist among ``keys``."""

    @abc.abstractmethod
    def todo(
        self, limit: int, *, tags: frozenset[str] | None = None, now: int | None = None
    ) -> list[Task]:
        """Up to ``limit`` todo tasks, priority descending then ``cat`` ascending.

        With ``tags``, only tasks whose tags are a subset of ``tags`` (those an
        instance with these tags may run). With ``now``, only tasks that are due
        (no ``run_at``, or ``run_at <= now``).
        """

    def active_with_unique(self, unique: str) -> Task | None:
        """The todo or nextup task holding uniqueness key ``unique``, if any.

        Backends that can, also refuse (in ``apply``) an open whose uniqueness
        key another active task holds, atomically; this default only finds it.
        """
        for status in (Status.TODO, Status.NEXTUP):
            after: str | None = None
            while True:
                page = self.find(TaskQuery(status=status, limit=1000, after_key=after))
                for task in page:
                    if task.unique == unique:
                        return task
                if len(page) < 1000:
                    break
                after = page[-1].key
        return None

    def nextup(self, limit: int, after_key: str | None = None) -> list[tuple[str, str | None]]:
        """(key, assignee) of up to ``limit`` nextup tasks, by key, after ``after_key``.

        What the rollback step needs, without the tasks' payloads.
        """
        query = TaskQuery(status=Status.NEXTUP, limit=limit, after_key=after_key)
        return [(task.key, task.assignee) for task in self.find(query)]

    def canceled_among(self, keys: Sequence[str]) -> list[tuple[str, int]]:
        """(key, token) of the canceled tasks among ``keys``: what a tick tells instances."""
        return [
            (task.key, task.token)
            for task in self.get_many(keys).values()
            if task.status is Status.CANCELED
        ]

    def waiting(self, since_before: int, limit: int) -> list[Task]:
        """Up to ``limit`` todo tasks waiting since before ``since_before`` (µs).

        "Waiting since" is when priority aging last raised the task
        (``aged_at``), else its creation (``cat``); oldest first.
        """
        found: list[Task] = []
        after: str | None = None
        while True:
            query = TaskQuery(
                status=Status.TODO, created_before=since_before, limit=1000, after_key=after
            )
            page = self.find(query)
            found += [t for t in page if (t.aged_at or t.cat) < since_before]
            if len(page) < 1000:
                break
            after = page[-1].key
        found.sort(key=lambda t: (t.aged_at or t.cat, t.key))
        return found[:limit]

    @abc.abstractmethod
    def find(self, query: TaskQuery) -> list[Task]:
        """Tasks matching ``query``, ordered by key, after ``query.after_key``.

        At most ``query.limit`` tasks: callers page with ``after_key`` to reach
        every match (no silent caps).
        """

    @abc.abstractmethod
    def count(self, query: TaskQuery) -> int:
        """How many tasks match ``query`` (``limit`` and ``after_key`` ignored)."""

    @abc.abstractmethod
    def restartable(self, limit: int) -> list[Task]:
        """Up to ``limit`` failed tasks that still have retries."""

    @abc.abstractmethod
    def count_by_status(self) -> dict[Status, int]:
        """How many tasks are in each status (every status present, 0 if none)."""

    @abc.abstractmethod
    def events_after(self, position: int, limit: int) -> list[TaskEvent]:
        """Logged events with a position greater than ``position``, in order."""

    @abc.abstractmethod
    def prune_log(self, before: int, limit: int) -> int:
        """Remove up to ``limit`` log entries recorded before ``before``; how many went."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove a task; ``True`` if it existed."""

    # -- added for the observer and retention; concrete so older backends keep working --

    def get_meta(self, name: str) -> bytes | None:
        """The small value stored under ``name`` (observer state, cursors), or ``None``."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement get_meta(name), the store metadata"
            " the observer and replay cursors persist their positions in"
        )

    def set_meta(self, name: str, value: bytes) -> None:
        """Store ``value`` under ``name``, replacing any earlier value."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement set_meta(name, value), the store"
            " metadata the observer and replay cursors persist their positions in"
        )

    def delete_if(self, keys: Sequence[str], predicate: Callable[[Task], bool]) -> list[str]:
        """Delete those of ``keys`` whose task, as read at deletion, satisfies ``predicate``.

        Each check and its delete are atomic (a task re-opened meanwhile is seen
        as it is now and kept). Returns the deleted keys. Used by retention.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement delete_if(keys, predicate),"
            " the conditional delete retention prunes finished tasks with"
        )

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The store is unusable afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
