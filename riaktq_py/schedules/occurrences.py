"""When a schedule's occurrences are due, and what to do with them: pure functions.

Times are Unix microseconds. A cron expression is matched against *local wall
time* in the schedule's timezone (croniter on naive datetimes: plain calendar
arithmetic), and each matching local time is mapped to one instant:

- a local time that exists once is that instant;
- a local time skipped by a spring-forward change (02:30 on the night clocks go
  from 02:00 to 03:00) runs once, at the instant the gap ends (03:00 local);
- a local time repeated by a fall-back change (02:30 comes twice) runs once,
  at its first instance.

Instants are strictly increasing, so when several local times map to the same
instant (every local time in a gap, and the real time where the gap ends) it
runs once. croniter 7 given aware datetimes runs a repeated local time twice
(``tests/test_schedules_dst.py`` shows it); hence this mapping.

:func:`plan` decides, for one schedule at ``now``, which due occurrences to
open and which to skip (paused, misfire). The overlap policy needs the store
and is applied by the step.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from riaktq_py.schedules.model import Misfire, RecurringSchedule

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
#: the most occurrences counted when summing up a range of skipped ones
COUNT_CAP = 10_000


def _us(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // _US


def _utc(time_us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=time_us)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_wall_time(time_us: int, tz: ZoneInfo) -> dt.datetime:
    """The naive local wall time of an instant."""
    return _utc(time_us).astimezone(tz).replace(tzinfo=None)


def instant_of(local: dt.datetime, tz: ZoneInfo) -> int:
    """The instant (µs) a naive local wall time runs at; see the module docstring."""
    first = local.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)
    if first.astimezone(tz).replace(tzinfo=None) == local:
        return _us(first)  # exists (once, or twice and this is the first)
    # in a gap: fold=1 reads it with the offset after the change (an instant before the
    # change), fold=0 with the offset before (an instant after it); find the change
    before = _us(local.replace(tzinfo=tz, fold=1).astimezone(dt.UTC)) // 1_000_000
    after = _us(first) // 1_000_000
    new_offset = first.astimezone(tz).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if _utc(middle * 1_000_000).astimezone(tz).utcoffset() == new_offset:
            after = middle
        else:
            before = middle
    return after * 1_000_000


def cron_times(
    expression: str, timezone: str, after_us: int, until_us: int, limit: int
) -> list[int]:
    """Up to ``limit`` instants of a cron expression in ``(after_us, until_us]``, in order."""
    tz = zone(timezone)
    found: list[int] = []
    last = after_us
    matches = croniter(expression, local_wall_time(after_us, tz))
    while len(found) < limit:
        try:
            local = matches.get_next(dt.datetime)
        except CroniterBadDateError:
            break  # croniter found no further match within its search horizon
        instant = instant_of(local, tz)
        if instant > until_us:
            break
        if instant > last:
            found.append(instant)
            last = instant
    return found


def cron_last(expression: str, timezone: str, until_us: int) -> int | None:
    """The latest instant of a cron expression at or before ``until_us``."""
    tz = zone(timezone)
    moment = _utc(until_us).astimezone(tz)
    upper = moment.replace(tzinfo=None)
    if moment.fold:  # in a repeated hour: later local times may map to its first pass
        first_offset = moment.replace(fold=0).utcoffset()
        second_offset = moment.utcoffset()
        assert first_offset is not None and second_offset is not None
        upper += first_offset - second_offset
    matches = croniter(expression, upper + _US)
    while True:
        try:
            local = matches.get_prev(dt.datetime)
        except CroniterBadDateError:
            return None
        instant = instant_of(local, tz)
        if instant <= until_us:
            return instant


def times(schedule: RecurringSchedule, after_us: int, until_us: int, limit: int) -> list[int]:
    """Up to ``limit`` occurrences of ``schedule`` in ``(after_us, until_us]``, in order."""
    if until_us <= after_us or limit <= 0:
        return []
    if schedule.cron is not None:
        return cron_times(schedule.cron, schedule.timezone, after_us, until_us, limit)
    every = _every(schedule)
    anchor = _anchor(schedule)
    first = anchor + (max(after_us - anchor, 0) // every + 1) * every
    return list(range(first, until_us + 1, every)[:limit])


def _every(schedule: RecurringSchedule) -> int:
    assert schedule.interval is not None
    return schedule.interval * 1_000_000


def _anchor(schedule: RecurringSchedule) -> int:
    """Interval occurrences are ``anchor + k * interval`` (k >= 1): the start, in whole seconds."""
    return schedule.start - schedule.start % 1_000_000


def last_time(schedule: RecurringSchedule, until_us: int) -> int | None:
    """The latest occurrence at or before ``until_us`` (after the schedule's start)."""
    if schedule.cron is not None:
        found = cron_last(schedule.cron, schedule.timezone, until_us)
    else:
        every = _every(schedule)
        found = _anchor(schedule) + (until_us - _anchor(schedule)) // every * every
    return found if found is not None and found > schedule.start else None


@dataclasses.dataclass(frozen=True, slots=True)
class Span:
    """Occurrences ``first`` .. ``last``; ``count`` is None when above :data:`COUNT_CAP`."""

    first: int
    last: int
    count: int | None


def span(schedule: RecurringSchedule, after_us: int, until_us: int) -> Span | None:
    """The occurrences in ``(after_us, until_us]``, summed up, or None if there are none."""
    head = times(schedule, after_us, until_us, 1)
    if not head:
        return None
    last = last_time(schedule, until_us)
    assert last is not None and last >= head[0]
    if schedule.interval is not None:
        count: int | None = (last - head[0]) // _every(schedule) + 1
    else:
        counted = len(times(schedule, after_us, until_us, COUNT_CAP + 1))
        count = counted if counted <= COUNT_CAP else None
    return Span(head[0], last, count)


class Action(enum.StrEnum):
    OPEN = "open"
    SKIP = "skip"


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """Open one occurrence, or skip ``due`` .. ``last_due`` (``count`` of them)."""

    action: Action
    due: int
    reason: str
    last_due: int
    count: int | None = 1


def _skip(found: Span, reason: str) -> Decision:
    return Decision(Action.SKIP, found.first, reason, found.last, found.count)


def _open(due: int, now_us: int, grace_us: int) -> Decision:
    late = now_us - due
    reason = "on time" if late <= grace_us else f"catch-up: late by {late // 1_000_000} s"
    return Decision(Action.OPEN, due, reason, due)


def plan(
    schedule: RecurringSchedule, now_us: int, grace_us: int, limit: int = 1000
) -> list[Decision]:
    """What to do with the occurrences of ``schedule`` due by ``now_us``, in order.

    An occurrence later than ``grace_us`` is a misfire (no tick ran in time, the
    scheduler was down). At most ``limit`` occurrences are opened per call; the
    rest are due at the next call, which starts after the last decision.
    """
    cursor = schedule.cursor
    decisions: list[Decision] = []
    paused_until = now_us if schedule.paused else schedule.resumed_at
    if paused_until is not None and paused_until > cursor:
        found = span(schedule, cursor, min(paused_until, now_us))
        if found is not None:
            decisions.append(_skip(found, "paused"))
            cursor = found.last
        cursor = max(cursor, min(paused_until, now_us))
    if schedule.paused or cursor >= now_us:
        return decisions
    horizon = grace_us
    if schedule.misfire is Misfire.ALL:
        assert schedule.catchup is not None
        horizon = max(grace_us, schedule.catchup * 1_000_000)
    missed_until = now_us - horizon - 1  # later than the horizon: a misfire
    recent = times(schedule, max(cursor, missed_until), now_us, limit)
    missed = span(schedule, cursor, missed_until) if missed_until > cursor else None
    if missed is not None:
        if schedule.misfire is Misfire.LATEST and not recent:
            earlier = span(schedule, cursor, missed.last - 1)
            if earlier is not None:
                decisions.append(
                    _skip(earlier, "misfire: superseded by the latest missed occurrence")
                )
            decisions.append(_open(missed.last, now_us, grace_us))
        elif schedule.misfire is Misfire.LATEST:
            decisions.append(_skip(missed, "misfire: superseded by a later occurrence"))
        elif schedule.misfire is Misfire.ALL:
            decisions.append(
                _skip(missed, f"misfire: older than the catch-up window of {schedule.catchup} s")
            )
        else:
            decisions.append(_skip(missed, f"misfire: late by more than {grace_us // 1_000_000} s"))
    decisions.extend(_open(due, now_us, grace_us) for due in recent)
    return decisions
