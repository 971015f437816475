"""The tick step ``schedules``: turns due occurrences into tasks, exactly once.

For each schedule, every tick: :func:`~riaktq_py.schedules.occurrences.plan`
says which due occurrences to open and which to skip (paused, misfire); the
overlap policy then skips an occurrence while the previous occurrence's task is
todo or nextup. Each occurrence is opened as the task
``sched:<name>:<UTC ISO time>`` with ``Open(only_new=True)``: a second attempt
(a scheduler that crashed before recording it, a restart, a failover) is
refused by the store and opens nothing. Finally the occurrences are recorded
and the schedule's ``last_due`` moves forward, in one store transaction.

Opened occurrences are the ``open`` transitions (logged and published by the
engine); skipped ones are published as :class:`ScheduleEvent` and logged here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

from riaktq_py.engine import Engine
from riaktq_py.errors import ConfigError
from riaktq_py.log import get_logger
from riaktq_py.schedules.events import Occurrence, OccurrenceOutcome, ScheduleEvent
from riaktq_py.schedules.model import Overlap, RecurringSchedule, occurrence_key
from riaktq_py.schedules.occurrences import Action, Decision, plan, times
from riaktq_py.schedules.store import ScheduleStore
from riaktq_py.task import Backoff, Status, Task
from riaktq_py.transitions import Open

ACTIVE = frozenset({Status.TODO, Status.NEXTUP})
#: how far ahead the step looks for a schedule's next occurrence between checks
_LOOK_AHEAD_US = 24 * 3600 * 1_000_000
#: a handler's default (timeout, backoff) for the tasks it runs
HandlerDefaults = Callable[[str], tuple[float | None, Backoff | None]]


class ScheduleStep:
    """The tick step named ``schedules``; ``run`` returns how many tasks it opened.

    ``grace`` (seconds): an occurrence found later than this is a misfire. Keep
    it above the tick interval. ``limit``: at most this many occurrences of one
    schedule are opened per tick (the rest at the next ticks). ``defaults``: the
    timeout and backoff of a schedule's handler, given to the tasks it opens.
    """

    name = "schedules"

    def __init__(
        self,
        schedules: ScheduleStore,
        *,
        grace: float = 60.0,
        limit: int = 1000,
        defaults: HandlerDefaults | None = None,
    ) -> None:
        if not grace >= 0:
            raise ConfigError(f"grace must be >= 0 seconds, got {grace}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"limit must be an integer >= 1, got {limit!r}")
        self.schedules = schedules
        self.grace_us = round(grace * 1_000_000)
        self.limit = limit
        self.defaults = defaults
        self._log = get_logger(component="schedules")
        #: per schedule name: the schedule as last read, and when its next occurrence is due
        self._idle_until: dict[str, tuple[RecurringSchedule, int]] = {}

    def run(self, engine: Engine) -> int:
        now = engine.clock.now_us()
        opened = 0
        listed = self.schedules.list()
        for name in self._idle_until.keys() - {s.name for s in listed}:
            del self._idle_until[name]
        for schedule in listed:
            try:
                opened += self.run_schedule(engine, schedule, now)
            except Exception as exc:  # one broken schedule does not stop the others
                self._log.error(
                    "schedule failed", schedule=schedule.name, error=f"{type(exc).__name__}: {exc}"
                )
        return opened

    def run_schedule(self, engine: Engine, schedule: RecurringSchedule, now: int) -> int:
        idle = self._idle_until.get(schedule.name)
        if idle is not None and idle[0] == schedule and now < idle[1]:
            return 0  # unchanged, and nothing due before idle[1]
        decisions = plan(schedule, now, self.grace_us, self.limit)
        if not decisions:
            upcoming = times(schedule, schedule.cursor, now + _LOOK_AHEAD_US, 1)
            self._idle_until[schedule.name] = (
                schedule,
                upcoming[0] if upcoming else now + _LOOK_AHEAD_US,
            )
            return 0
        records, last_task = self._carry_out(engine, schedule, decisions, now)
        if not self.schedules.advance(schedule, decisions[-1].last_due, last_task, records):
            self._log.warning("schedule changed during the tick", schedule=schedule.name)
            return 0
        self._report(engine, records, now)
        return sum(
            r.outcome is OccurrenceOutcome.OPENED and r.reason != "already opened" for r in records
        )

    def _carry_out(
        self, engine: Engine, schedule: RecurringSchedule, decisions: Sequence[Decision], now: int
    ) -> tuple[list[Occurrence], str | None]:
        records: list[Occurrence] = []
        last_task: str | None = None
        watch = schedule.overlap is Overlap.SKIP  # only then does a running task matter
        running = self._running(engine, schedule.last_task) if watch else None
        for decision in decisions:
            key = occurrence_key(schedule.name, decision.due)
            if decision.action is Action.SKIP:
                records.append(_record(schedule, decision, now, OccurrenceOutcome.SKIPPED))
            elif running is not None:
                reason = f"overlap: previous occurrence {running[0]!r} is {running[1]}"
                records.append(
                    _record(schedule, decision, now, OccurrenceOutcome.SKIPPED, reason=reason)
                )
            else:
                [event] = engine.apply([self._open(schedule, key, now)])
                reason = decision.reason if event.ok else "already opened"
                records.append(
                    _record(schedule, decision, now, OccurrenceOutcome.OPENED, key, reason)
                )
                last_task = key
                if watch:  # the task just opened, or (refused) the one opened before
                    running = _active(event.task) if event.ok else self._running(engine, key)
        return records, last_task

    def _open(self, schedule: RecurringSchedule, key: str, now: int) -> Open:
        timeout, backoff = None, None
        if schedule.handler is not None and self.defaults is not None:
            with contextlib.suppress(LookupError):  # not a handler here: no defaults
                timeout, backoff = self.defaults(schedule.handler)
        return Open(
            key,
            schedule.input,
            cat=now,
            priority=schedule.priority,
            retry=schedule.retry,
            tags=schedule.task_tags,
            timeout=timeout,
            backoff=backoff,
            only_new=True,
        )

    def _running(self, engine: Engine, key: str | None) -> tuple[str, str] | None:
        return _active(None if key is None else engine.store.get(key))

    def _report(self, engine: Engine, records: Sequence[Occurrence], now: int) -> None:
        skipped = [r for r in records if r.outcome is OccurrenceOutcome.SKIPPED]
        for record in records:
            self._log.info(
                f"occurrence {record.outcome.value}",
                schedule=record.schedule,
                due=record.due,
                last_due=record.until,
                count=record.count,
                reason=record.reason,
                key=record.task_key,
            )
        if skipped and engine.events is not None:
            engine.events.publish(
                [
                    ScheduleEvent(
                        "occurrence_skipped", r.schedule, occurrence_key(r.schedule, r.due), now, r
                    )
                    for r in skipped
                ]
            )


def _active(task: Task | None) -> tuple[str, str] | None:
    """(key, status) of a todo or nextup task, else None."""
    if task is None or task.status not in ACTIVE:
        return None
    return task.key, task.status.value


def _record(
    schedule: RecurringSchedule,
    decision: Decision,
    now: int,
    outcome: OccurrenceOutcome,
    key: str | None = None,
    reason: str | None = None,
) -> Occurrence:
    return Occurrence(
        schedule.name,
        decision.due,
        outcome,
        decision.reason if reason is None else reason,
        now,
        key,
        decision.last_due,
        decision.count,
    )
