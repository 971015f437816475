"""Recurring schedules in the embedding API: :class:`ScheduleOperations`, mixed into Riaktq."""

from __future__ import annotations

from typing import Any, Unpack

from riaktq_py.actors.scheduler import SchedulerConfig
from riaktq_py.clock import Clock
from riaktq_py.engine import Engine
from riaktq_py.errors import ConfigError
from riaktq_py.schedules import (
    Occurrence,
    RecurringSchedule,
    ScheduleSettings,
    ScheduleStep,
    schedule_store_for,
)
from riaktq_py.schedules.api import Schedules
from riaktq_py.store.base import Store
from riaktq_py.task import Backoff

CALL_TIMEOUT = 10.0


class ScheduleOperations:
    """The schedule verbs of :class:`~riaktq_py.Riaktq`."""

    store: Store
    clock: Clock
    engine: Engine
    config: SchedulerConfig
    max_payload: int

    def _handler_defaults(self, handler: str) -> tuple[float | None, Backoff | None]:
        raise NotImplementedError

    @property
    def schedules(self) -> Schedules:
        """The schedule operations on this queue's store (SQLite tables; created on first use).

        :class:`~riaktq_py.errors.ConfigError` for a store without schedule storage (Riak).
        """
        found: Schedules | None = getattr(self, "_schedule_ops", None)
        if found is None:
            found = Schedules(
                schedule_store_for(self.store),
                self.clock,
                max_payload=self.max_payload,
                check_handler=self._handler_defaults,
            )
            self._schedule_ops = found
        return found

    def add_schedule(self, name: str, **settings: Unpack[ScheduleSettings]) -> RecurringSchedule:
        """Store a recurring schedule: ``cron`` (5 fields, read in ``timezone``) or ``interval``.

        Each occurrence opens the task ``sched:<name>:<UTC ISO time>``, exactly once.
        ``misfire``: skip | latest | all (with ``catchup`` seconds); ``overlap``: skip | allow.
        The settings and their defaults: :class:`~riaktq_py.schedules.ScheduleSettings`.
        """
        return self.schedules.add(name, **settings)

    def get_schedule(self, name: str) -> RecurringSchedule:
        return self.schedules.get(name)

    def list_schedules(self) -> list[RecurringSchedule]:
        return self.schedules.list()

    def update_schedule(self, name: str, **changes: Any) -> RecurringSchedule:
        """Change settings (as :meth:`add_schedule`); a new cron/interval applies from now."""
        return self.schedules.update(name, **changes)

    def pause_schedule(self, name: str) -> RecurringSchedule:
        return self.schedules.pause(name)

    def resume_schedule(self, name: str) -> RecurringSchedule:
        return self.schedules.resume(name)

    def delete_schedule(self, name: str) -> bool:
        return self.schedules.delete(name)

    def occurrences(
        self, name: str, *, after: int | None = None, limit: int = 1000
    ) -> list[Occurrence]:
        """What happened to each occurrence of a schedule (opened, or skipped and why)."""
        return self.schedules.occurrences(name, after=after, limit=limit)

    def _start_schedules(self, scheduler: Any) -> None:
        """Add the ``schedules`` tick step (not for a store without schedule storage)."""
        try:
            store = self.schedules.store
        except ConfigError:
            return
        grace = max(60.0, 2 * self.config.interval) if self.config.interval else 60.0
        step = ScheduleStep(store, grace=grace, defaults=self._handler_defaults)
        scheduler.add_step(step).get(timeout=CALL_TIMEOUT)
