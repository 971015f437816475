"""The schedule operations of the API (``Riaktq.add_schedule`` ...) and the CLI.

:class:`Schedules` works on a :class:`~riaktq_py.schedules.store.ScheduleStore`
and a clock; it needs no running scheduler (the scheduler's ``schedules`` step
reads the same store).
"""

from __future__ import annotations

import builtins
import collections
import itertools
from collections.abc import Callable
from typing import Any, Unpack

from riaktq_py import payload
from riaktq_py.clock import Clock
from riaktq_py.errors import ConfigError
from riaktq_py.schedules.events import Occurrence
from riaktq_py.schedules.model import (
    TIMING_FIELDS,
    Misfire,
    RecurringSchedule,
    ScheduleNotFound,
    ScheduleSettings,
    check_name,
)
from riaktq_py.schedules.report import Audit, audit
from riaktq_py.schedules.store import ScheduleStore

#: what :meth:`Schedules.update` may change
UPDATABLE = frozenset(
    {
        "cron",
        "timezone",
        "interval",
        "handler",
        "tags",
        "input",
        "priority",
        "retry",
        "misfire",
        "catchup",
        "overlap",
    }
)


class Schedules:
    """Create, read, update, pause, resume and delete schedules; read their occurrences.

    ``check_handler`` (optional) raises for a handler name that is not known.
    """

    def __init__(
        self,
        store: ScheduleStore,
        clock: Clock,
        *,
        max_payload: int = payload.DEFAULT_MAX_PAYLOAD,
        check_handler: Callable[[str], object] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_payload = max_payload
        self.check_handler = check_handler

    def add(self, name: str, **settings: Unpack[ScheduleSettings]) -> RecurringSchedule:
        """Store a new schedule; its first occurrence is the first one after now."""
        handler = settings.get("handler")
        if handler is not None and self.check_handler is not None:
            self.check_handler(handler)
        schedule = RecurringSchedule.new(
            name, now_us=self.clock.now_us(), max_payload=self.max_payload, **settings
        )
        self.store.add(schedule)
        return schedule

    def get(self, name: str) -> RecurringSchedule:
        schedule = self.store.get(check_name(name))
        if schedule is None:
            raise ScheduleNotFound(f"no schedule {name!r}")
        return schedule

    def list(self) -> list[RecurringSchedule]:
        return self.store.list()

    def update(self, name: str, **changes: Any) -> RecurringSchedule:
        """Change some of a schedule's settings (see :data:`UPDATABLE`).

        Changing ``cron``, ``timezone`` or ``interval`` restarts the timing now:
        the next occurrence is the first of the new timing after now.
        """
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ConfigError(
                f"cannot update {', '.join(sorted(unknown))} of a schedule;"
                f" updatable: {', '.join(sorted(UPDATABLE))}"
            )
        current = self.get(name)
        if changes.get("handler") is not None and self.check_handler is not None:
            self.check_handler(changes["handler"])
        fields = dict(changes)
        if "input" in fields:
            fields["input"] = payload.encode(
                fields["input"], limit=self.max_payload, what=f"input of schedule {name!r}"
            )
        if "tags" in fields:
            if isinstance(fields["tags"], str):
                raise ConfigError(f"tags must be a list of strings, not {fields['tags']!r}")
            fields["tags"] = frozenset(fields["tags"])
        if "cron" in fields and fields["cron"] is not None:
            fields.setdefault("interval", None)
        if "interval" in fields and fields["interval"] is not None:
            fields.setdefault("cron", None)
        if fields.get("misfire", current.misfire) != Misfire.ALL:
            fields.setdefault("catchup", None)
        timing = any(
            fields.get(f, getattr(current, f)) != getattr(current, f) for f in TIMING_FIELDS
        )
        if timing:
            fields["start"] = max(self.clock.now_us(), current.cursor)
        return self._write(current.replace(**fields))

    def pause(self, name: str) -> RecurringSchedule:
        """Stop opening its occurrences; those due while paused are recorded as skipped."""
        return self._write(self.get(name).replace(paused=True))

    def resume(self, name: str) -> RecurringSchedule:
        """Open its occurrences again, from now on (a paused one stays skipped)."""
        current = self.get(name)
        if not current.paused:
            return current
        return self._write(current.replace(paused=False, resumed_at=self.clock.now_us()))

    def delete(self, name: str) -> bool:
        """Remove a schedule and its occurrence records (its tasks stay)."""
        return self.store.delete(check_name(name))

    def occurrences(
        self, name: str, *, after: int | None = None, limit: int = 1000
    ) -> builtins.list[Occurrence]:
        """What happened to its occurrences, by due time (``after``: a due time, µs)."""
        self.get(name)
        return self.store.occurrences(name, after=after, limit=limit)

    def newest(self, name: str, limit: int) -> builtins.list[Occurrence]:
        """Its last ``limit`` occurrence records, by due time."""
        self.get(name)
        return builtins.list(collections.deque(self.store.iter_occurrences(name), maxlen=limit))

    def audit(self, name: str, *, since: int | None = None, until: int | None = None) -> Audit:
        """Did every run happen? Each occurrence due in ``(since, until]`` against its records.

        Defaults: from the start of the current timing (creation, or the last change
        of cron/timezone/interval) to now.
        """
        schedule = self.get(name)
        since = schedule.start if since is None else since
        until = self.clock.now_us() if until is None else until
        records = [
            r
            for r in itertools.takewhile(
                lambda r: r.due <= until, self.store.iter_occurrences(name)
            )
            if r.until > since
        ]
        return audit(schedule, records, since, until)

    def _write(self, schedule: RecurringSchedule) -> RecurringSchedule:
        if not self.store.update(schedule):
            raise ScheduleNotFound(f"no schedule {schedule.name!r} (deleted meanwhile)")
        stored = self.store.get(schedule.name)
        assert stored is not None
        return stored
