"""Schedule health: is each recurring schedule keeping up, and how are its tasks doing?

For every recurring schedule (:mod:`riaktq_py.schedules`), at ``now``:

- ``behind``: an occurrence came more than ``grace`` seconds ago and the
  scheduler's schedule step has not handled it yet (no scheduler running, or
  one that cannot keep up); paused schedules are never behind;
- ``opened`` / ``skipped``: its occurrences in the last ``window`` seconds,
  from the occurrence records (skipped ones: paused, misfire, overlap);
- ``last_task`` and its current status (a failing job shows up here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from riaktq_py.observer.queries import US, _seconds
from riaktq_py.schedules.events import OccurrenceOutcome
from riaktq_py.schedules.model import RecurringSchedule, iso_utc
from riaktq_py.schedules.occurrences import COUNT_CAP, times
from riaktq_py.schedules.store import ScheduleStore, schedule_store_for
from riaktq_py.store.base import Store
from riaktq_py.task import Task


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleHealthEntry:
    name: str
    timing: str
    paused: bool
    last_due: int | None  # the last occurrence the schedule step handled
    overdue: int | None  # the first occurrence due but not handled, if any
    behind: bool
    opened: int
    skipped: int
    last_task: str | None
    last_task_status: str | None

    def to_dict(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        fields["last_due_iso"] = None if self.last_due is None else iso_utc(self.last_due)
        return fields


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleHealthResult:
    key: str
    at: int
    start: int  # of the window the opened/skipped counts cover
    schedules: tuple[ScheduleHealthEntry, ...]

    @property
    def behind(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.schedules if s.behind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "at": self.at,
            "start": self.start,
            "behind": list(self.behind),
            "schedules": [s.to_dict() for s in self.schedules],
        }


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleHealth:
    """The health of every recurring schedule; see the module docstring.

    ``schedule_store``: where the schedules are (default: the one that goes
    with the task store, :func:`~riaktq_py.schedules.schedule_store_for`).
    """

    window: float = 86_400.0
    grace: float = 120.0
    schedule_store: ScheduleStore | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        _seconds("window", self.window, positive=True)
        _seconds("grace", self.grace)

    def run(self, store: Store, *, key: str, now_us: int) -> ScheduleHealthResult:
        schedules = self.schedule_store or schedule_store_for(store)
        start = now_us - round(self.window * US)
        listed = schedules.list()
        last_tasks = store.get_many([s.last_task for s in listed if s.last_task is not None])
        entries = tuple(
            self._entry(schedules, schedule, last_tasks, start, now_us) for schedule in listed
        )
        return ScheduleHealthResult(key, now_us, start, entries)

    def _entry(
        self,
        schedules: ScheduleStore,
        schedule: RecurringSchedule,
        last_tasks: Mapping[str, Task],
        start: int,
        now_us: int,
    ) -> ScheduleHealthEntry:
        due = times(schedule, schedule.cursor, now_us, 1)
        overdue = due[0] if due else None
        behind = (
            not schedule.paused
            and overdue is not None
            and overdue <= now_us - round(self.grace * US)
        )
        opened = skipped = 0
        for record in schedules.iter_occurrences(schedule.name, after=start):
            if record.due > now_us:
                break
            if record.outcome is OccurrenceOutcome.OPENED:
                opened += 1
            else:
                skipped += COUNT_CAP if record.count is None else record.count
        task = None if schedule.last_task is None else last_tasks.get(schedule.last_task)
        return ScheduleHealthEntry(
            schedule.name,
            schedule.timing,
            schedule.paused,
            schedule.last_due,
            overdue,
            behind,
            opened,
            skipped,
            schedule.last_task,
            None if task is None else task.status.value,
        )
