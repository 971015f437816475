"""Observer, history and retention in the embedding API: mixed into Riaktq."""

from __future__ import annotations

from riaktq_py.actors.event_manager import Subscriber
from riaktq_py.clock import Clock
from riaktq_py.observer.embedded import Observing
from riaktq_py.observer.history import task_history
from riaktq_py.observer.observer import ObserverRun
from riaktq_py.observer.queries import Report, ReportResult
from riaktq_py.observer.retention import PruneResult, Retention
from riaktq_py.observer.schedule import Schedule
from riaktq_py.store.base import Store
from riaktq_py.task import Attempt


class ObserverOperations:
    """The observer verbs of :class:`~riaktq_py.Riaktq`."""

    store: Store
    clock: Clock
    _observing: Observing

    def observe(self, name: str, report: Report, schedule: Schedule) -> None:
        """Run ``report`` (a Query, StatusCounts, WindowStats, Retention...) on ``schedule``.

        Results go to :meth:`subscribe_queries` subscribers, keyed by ``name``.
        The observer ticks every ``interval`` seconds (by hand: :meth:`observer_tick`).
        """
        self._observing.observe(name, report, schedule)

    def subscribe_queries(self, subscriber: Subscriber) -> int:
        """Receive every observer result from now on; returns an unsubscribe number."""
        return self._observing.subscribe_queries(subscriber)

    def unsubscribe_queries(self, number: int) -> bool:
        return self._observing.unsubscribe_queries(number)

    def observer_tick(self, timeout: float = 60.0) -> ObserverRun | None:
        """Run the due observations now (None if a run was already going)."""
        return self._observing.tick(timeout)

    def report(self, *names: str) -> list[ReportResult]:
        """Run the named observations (default: all) now, ignoring their schedules."""
        return self._observing.report(names)

    def history(self, key: str) -> tuple[Attempt, ...]:
        """Every attempt of a task (assignee, sat, laf, outcome, out or error), oldest first."""
        return task_history(self.store, key)

    def prune(
        self,
        *,
        tasks_older_than: float | None = None,
        log_older_than: float | None = None,
        batch_size: int = 500,
        max_batches: int | None = None,
    ) -> PruneResult:
        """Delete final tasks and log entries older than the given ages (seconds), in batches."""
        retention = Retention(tasks_older_than, log_older_than, batch_size, max_batches)
        return retention.run(self.store, now_us=self.clock.now_us())
