"""Recurring schedules: cron (in an IANA timezone) or fixed-interval tasks, opened exactly once.

- :mod:`.model`: :class:`RecurringSchedule`, its policies and validation;
- :mod:`.occurrences`: when occurrences are due (DST rules) and what to do with them;
- :mod:`.store`: :class:`ScheduleStore` (SQLite tables, or in memory);
- :mod:`.step`: :class:`ScheduleStep`, the tick step that opens them;
- :mod:`.events`: :class:`Occurrence` records and :class:`ScheduleEvent`.
"""

from riaktq_py.schedules.events import Occurrence, OccurrenceOutcome, ScheduleEvent
from riaktq_py.schedules.model import (
    Misfire,
    Overlap,
    RecurringSchedule,
    ScheduleExists,
    ScheduleNotFound,
    ScheduleSettings,
    occurrence_key,
)
from riaktq_py.schedules.step import ScheduleStep
from riaktq_py.schedules.store import (
    MemoryScheduleStore,
    ScheduleStore,
    SqliteScheduleStore,
    schedule_store_for,
)

__all__ = [
    "MemoryScheduleStore",
    "Misfire",
    "Occurrence",
    "OccurrenceOutcome",
    "Overlap",
    "RecurringSchedule",
    "ScheduleEvent",
    "ScheduleExists",
    "ScheduleNotFound",
    "ScheduleSettings",
    "ScheduleStep",
    "ScheduleStore",
    "SqliteScheduleStore",
    "occurrence_key",
    "schedule_store_for",
]
