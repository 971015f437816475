"""When an observed query runs: daily at a UTC time of day, on a cron expression, or every N s.

A schedule speaks in *slots*: UTC instants (µs) that each deserve one run. The
observer keeps, per query, the last slot it served (persisted in the store) and
asks :meth:`Schedule.due` on every tick whether a newer slot has come::

    Daily("06:00")                   riaktq's rule: the first tick at or after 06:00 UTC,
                                     once per day, also when started later that day
    Cron("30 2 * * *", "Europe/Berlin")  wall-clock time in an IANA timezone
    Interval(300)                    every 300 s, the first run at the first tick

Cron occurrences are matched on local wall-clock time, with the DST rules of
recurring schedules: a local time skipped by spring-forward runs once, shifted
to the instant the gap ends (02:30 → 03:00 summer time); a local time repeated
by fall-back runs once, the first time it is reached.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Protocol

from riaktq_py.errors import ConfigError
from riaktq_py.schedules.model import check_cron, check_timezone
from riaktq_py.schedules.occurrences import cron_last

US = 1_000_000
DAY_US = 86_400 * US
_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


class Schedule(Protocol):
    """When a query runs, in slots (UTC µs instants)."""

    def due(self, now_us: int, last_slot: int | None) -> int | None:
        """The slot to serve at ``now_us``, or ``None`` when nothing is due.

        ``last_slot`` is the last slot served (``None``: never ran).
        """
        ...

    def initial_slot(self, now_us: int) -> int | None:
        """The slot a query first seen at ``now_us`` counts as served (``None``: none)."""
        ...

    def describe(self) -> str: ...


def parse_time_of_day(value: object) -> dt.time:
    """A UTC time of day from ``"HH:MM"``, ``"HH:MM:SS"``, ``(h, m[, s])`` or ``time``.

    Every field is range-checked, seconds included (riaktq checked minutes twice
    and never seconds: SPEC B8).
    """
    if isinstance(value, dt.time):
        if value.tzinfo is not None and value.utcoffset() != dt.timedelta(0):
            raise ConfigError(f"time of day must be UTC (no offset), got {value!r}")
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        match = _TIME_OF_DAY.fullmatch(value.strip())
        if match is None:
            raise ConfigError(f"time of day must look like HH:MM or HH:MM:SS, got {value!r}")
        parts: tuple[object, ...] = tuple(int(p) for p in match.groups(default="0"))
    elif isinstance(value, tuple | list) and len(value) in (2, 3):
        parts = tuple(value) + (0,) * (3 - len(value))
    else:
        raise ConfigError(
            f"time of day must be 'HH:MM[:SS]', (h, m[, s]) or datetime.time, got {value!r}"
        )
    checked: list[int] = []
    for name, part, top in zip(("hour", "minute", "second"), parts, (23, 59, 59), strict=True):
        if isinstance(part, bool) or not isinstance(part, int) or not 0 <= part <= top:
            raise ConfigError(f"time of day {value!r}: {name} must be 0..{top}, got {part!r}")
        checked.append(part)
    hour, minute, second = checked
    return dt.time(hour, minute, second)


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class Daily:
    """Once per UTC day, at the first tick at or after ``time`` (riaktq's observer).

    Started later in the day, it runs at its first tick; started earlier, it
    waits for the time. A day whose time passed while nothing ran is not made
    up the next day (riaktq's behaviour); the same day is never run twice.
    """

    time: dt.time

    def __init__(self, time: object) -> None:
        object.__setattr__(self, "time", parse_time_of_day(time))

    @property
    def offset_us(self) -> int:
        t = self.time
        return ((t.hour * 60 + t.minute) * 60 + t.second) * US + t.microsecond

    def due(self, now_us: int, last_slot: int | None) -> int | None:
        today = now_us - now_us % DAY_US + self.offset_us
        if now_us >= today and (last_slot is None or last_slot < today):
            return today
        return None

    def initial_slot(self, now_us: int) -> int | None:
        return None

    def describe(self) -> str:
        return f"daily at {self.time.isoformat()} UTC"


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class Cron:
    """At each occurrence of a cron expression in an IANA timezone (default UTC).

    Occurrences and their DST rules are those of recurring schedules
    (:mod:`riaktq_py.schedules.occurrences`), so both agree. A query first seen
    waits for the next occurrence (past ones are not run).
    """

    expression: str
    timezone: str

    def __init__(self, expression: str, timezone: str = "UTC") -> None:
        object.__setattr__(self, "expression", check_cron(expression))
        object.__setattr__(self, "timezone", check_timezone(timezone))

    def latest(self, now_us: int) -> int | None:
        """The last occurrence reached at or before ``now_us`` (UTC µs)."""
        return cron_last(self.expression, self.timezone, now_us)

    def due(self, now_us: int, last_slot: int | None) -> int | None:
        latest = self.latest(now_us)
        if latest is not None and (last_slot is None or latest > last_slot):
            return latest
        return None

    def initial_slot(self, now_us: int) -> int | None:
        return now_us

    def describe(self) -> str:
        return f"cron {self.expression!r} in {self.timezone}"


@dataclasses.dataclass(frozen=True, slots=True)
class Interval:
    """Every ``seconds``: the first run at the first tick, then on a fixed grid from it."""

    seconds: float

    def __post_init__(self) -> None:
        if (
            isinstance(self.seconds, bool)
            or not isinstance(self.seconds, int | float)
            or not self.seconds > 0
        ):
            raise ConfigError(f"interval must be > 0 seconds, got {self.seconds!r}")

    def due(self, now_us: int, last_slot: int | None) -> int | None:
        if last_slot is None:
            return now_us
        step = max(1, round(self.seconds * US))
        if now_us < last_slot + step:
            return None
        return last_slot + step * ((now_us - last_slot) // step)

    def initial_slot(self, now_us: int) -> int | None:
        return None

    def describe(self) -> str:
        return f"every {self.seconds:g} s"
