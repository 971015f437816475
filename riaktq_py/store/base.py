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
from collections.abc import Sequence

from riaktq_py.events import TaskEvent
from riaktq_py.task import Status, Task
from riaktq_py.transitions import Transition


class Store(abc.ABC):
    """What the scheduler, the API and the observer need from storage."""

    #: Name of the bucket the tasks live in (reported in events).
    bucket: str

    @abc.abstractmethod
    def apply(self, transitions: Sequence[Transition], *, at: int) -> list[TaskEvent]:
        """Apply each transition atomically, in order; one event per transition.

        A refused transition (its ``apply`` raised ``TransitionError``) gives
        an event with ``error`` set and changes nothing; the others still apply.
        Backends batch the whole sequence into as few round trips as they can.
        """

    @abc.abstractmethod
    def get(self, key: str) -> Task | None:
        """The task under ``key``, or ``None``."""

    @abc.abstractmethod
    def get_many(self, keys: Sequence[str]) -> dict[str, Task]:
        """The tasks that exist among ``keys``."""

    @abc.abstractmethod
    def todo(self, limit: int, *, tags: frozenset[str] | None = None) -> list[Task]:
        """Up to ``limit`` todo tasks, priority descending then ``cat`` ascending.

        With ``tags``, only tasks whose tags are a subset of ``tags`` (those an
        instance with these tags may run).
        """

    @abc.abstractmethod
    def with_status(
        self,
        status: Status,
        *,
        limit: int,
        after_key: str | None = None,
        created_before: int | None = None,
    ) -> list[Task]:
        """Tasks in ``status`` ordered by key, after ``after_key`` (for paging).

        With ``created_before``, only tasks whose ``cat`` is earlier.
        """

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
    def delete(self, key: str) -> bool:
        """Remove a task; ``True`` if it existed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The store is unusable afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
