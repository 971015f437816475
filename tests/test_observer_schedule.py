"""Schedules on their own: time-of-day validation, slots for daily, cron (with DST), interval."""

from __future__ import annotations

import datetime as dt

import pytest

from riaktq_py.errors import ConfigError
from riaktq_py.observer.schedule import Cron, Daily, Interval, parse_time_of_day


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
    return int(moment.timestamp()) * 1_000_000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("06:00", dt.time(6, 0)),
        ("6:05:09", dt.time(6, 5, 9)),
        ("23:59:59", dt.time(23, 59, 59)),
        ((0, 0), dt.time(0, 0)),
        ((12, 30, 15), dt.time(12, 30, 15)),
        (dt.time(7, 1, 2), dt.time(7, 1, 2)),
        (dt.time(7, 1, tzinfo=dt.UTC), dt.time(7, 1)),
    ],
)
def test_time_of_day_accepts_valid_forms(value: object, expected: dt.time) -> None:
    """HH:MM, HH:MM:SS, tuples and UTC time objects parse to the same time."""
    assert parse_time_of_day(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("24:00", "hour must be 0..23"),
        ("12:60", "minute must be 0..59"),
        ("12:00:60", "second must be 0..59"),  # riaktq never checked seconds (B8)
        ((12, 0, -1), "second must be 0..59"),
        ((12, 0, 1.5), "second must be 0..59"),
        ((True, 0), "hour must be 0..23"),
        ("noon", "HH:MM or HH:MM:SS"),
        ("12:00:00:00", "HH:MM or HH:MM:SS"),
        (1200, "'HH:MM[:SS]'"),
        (dt.time(7, tzinfo=dt.timezone(dt.timedelta(hours=2))), "must be UTC"),
    ],
)
def test_time_of_day_validates_every_field(value: object, message: str) -> None:
    """Out-of-range hours, minutes and seconds are refused with the field named."""
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Daily(value)


def test_daily_slot_is_todays_time_once_reached() -> None:
    """Before the time nothing is due; at or after it, today's slot, once."""
    daily = Daily("06:00")
    today = utc(2024, 5, 10, 6)
    assert daily.due(utc(2024, 5, 10, 5, 59, 59), None) is None
    assert daily.due(today, None) == today
    assert daily.due(utc(2024, 5, 10, 23), None) == today  # started late
    assert daily.due(utc(2024, 5, 10, 23), today) is None  # already served
    assert daily.due(utc(2024, 5, 11, 5), today) is None
    assert daily.due(utc(2024, 5, 11, 6, 0, 1), today) == utc(2024, 5, 11, 6)
    assert daily.initial_slot(today) is None


def test_bad_cron_and_timezone_are_refused() -> None:
    """An invalid expression or an unknown IANA zone is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="invalid cron expression '61 \\* \\* \\* \\*'"):
        Cron("61 * * * *")
    with pytest.raises(ConfigError, match="unknown timezone 'Mars/Olympus'"):
        Cron("0 6 * * *", "Mars/Olympus")


def test_cron_latest_maps_skipped_local_time_to_the_shifted_instant() -> None:
    """02:30 Berlin does not exist on 2024-03-31: its slot is where the gap ends, 03:00 CEST."""
    cron = Cron("30 2 * * *", "Europe/Berlin")
    day_before = utc(2024, 3, 30, 1, 30)  # 02:30 CET
    assert cron.latest(utc(2024, 3, 31, 0, 59)) == day_before
    assert cron.latest(utc(2024, 3, 31, 1, 0)) == utc(2024, 3, 31, 1, 0)
    assert cron.latest(utc(2024, 4, 1, 0, 30)) == utc(2024, 4, 1, 0, 30)  # 02:30 CEST


def test_cron_repeated_local_time_has_one_slot() -> None:
    """02:30 Berlin happens twice on 2024-10-27; only the first instant is a slot."""
    cron = Cron("30 2 * * *", "Europe/Berlin")
    first = utc(2024, 10, 27, 0, 30)  # 02:30 CEST
    assert cron.latest(utc(2024, 10, 27, 0, 45)) == first
    assert cron.latest(utc(2024, 10, 27, 1, 45)) == first  # 02:45 CET: second pass
    assert cron.due(utc(2024, 10, 27, 1, 30), first) is None
    late = Cron("45 2 * * *", "Europe/Berlin")  # asked during the second pass, before 02:45
    assert late.latest(utc(2024, 10, 27, 1, 10)) == utc(2024, 10, 27, 0, 45)


def test_interval_slots_are_on_a_grid_from_the_first_run() -> None:
    """The first tick runs; later slots are first + k * interval, late ticks catch one."""
    every = Interval(300)
    assert every.due(1_000, None) == 1_000
    assert every.due(1_000 + 299_999_999, 1_000) is None
    assert every.due(1_000 + 300_000_000, 1_000) == 1_000 + 300_000_000
    assert every.due(1_000 + 1_000_000_000, 1_000) == 1_000 + 900_000_000
    with pytest.raises(ConfigError, match="interval must be > 0 seconds"):
        Interval(0)
    with pytest.raises(ConfigError, match="interval must be > 0 seconds"):
        Interval(float("nan"))
