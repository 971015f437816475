"""Cron occurrences across DST changes, in two timezones, and croniter's own behaviour.

Rules: a local time skipped by spring-forward runs once, when the gap ends;
a local time repeated by fall-back runs once, at its first instance.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from riaktq_py import SqliteStore
from riaktq_py.schedules.model import iso_utc
from riaktq_py.schedules.occurrences import cron_last, cron_times, instant_of
from riaktq_py.testing import FakeClock, run_tick
from tests.schedule_helpers import SECOND, queue, us


def _runs(cron: str, tz: str, start: str, end: str) -> list[str]:
    return [iso_utc(t) for t in cron_times(cron, tz, us(start), us(end), 1000)]


# (timezone, cron, window start, window end, expected runs in UTC)
CASES = [
    pytest.param(
        "Europe/Berlin", "30 2 * * *", "2024-03-30T00:00:00+00:00", "2024-04-01T12:00:00+00:00",
        ["2024-03-30T01:30:00Z", "2024-03-31T01:00:00Z", "2024-04-01T00:30:00Z"],
        id="berlin-spring-forward-daily-02:30-runs-at-03:00",
    ),
    pytest.param(
        "Europe/Berlin", "30 2 * * *", "2024-10-26T00:00:00+00:00", "2024-10-28T12:00:00+00:00",
        ["2024-10-26T00:30:00Z", "2024-10-27T00:30:00Z", "2024-10-28T01:30:00Z"],
        id="berlin-fall-back-daily-02:30-runs-once",
    ),
    pytest.param(
        "Europe/Berlin", "*/30 * * * *", "2024-03-31T00:00:00+00:00", "2024-03-31T02:00:00+00:00",
        ["2024-03-31T00:30:00Z", "2024-03-31T01:00:00Z", "2024-03-31T01:30:00Z",
         "2024-03-31T02:00:00Z"],
        id="berlin-spring-forward-half-hourly",
    ),
    pytest.param(
        "Europe/Berlin", "*/30 * * * *", "2024-10-26T23:00:00+00:00", "2024-10-27T02:30:00+00:00",
        ["2024-10-26T23:30:00Z", "2024-10-27T00:00:00Z", "2024-10-27T00:30:00Z",
         "2024-10-27T02:00:00Z", "2024-10-27T02:30:00Z"],
        id="berlin-fall-back-half-hourly-repeated-hour-once",
    ),
    pytest.param(
        "America/New_York", "30 2 * * *", "2024-03-09T00:00:00+00:00", "2024-03-11T12:00:00+00:00",
        ["2024-03-09T07:30:00Z", "2024-03-10T07:00:00Z", "2024-03-11T06:30:00Z"],
        id="new-york-spring-forward-daily-02:30-runs-at-03:00",
    ),
    pytest.param(
        "America/New_York", "30 1 * * *", "2024-11-02T00:00:00+00:00", "2024-11-04T12:00:00+00:00",
        ["2024-11-02T05:30:00Z", "2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z"],
        id="new-york-fall-back-daily-01:30-runs-once",
    ),
    pytest.param(
        "America/New_York", "0,30 2,3 * * *", "2024-03-10T06:00:00+00:00",
        "2024-03-10T09:00:00+00:00",
        ["2024-03-10T07:00:00Z", "2024-03-10T07:30:00Z"],
        id="new-york-gap-times-and-the-real-03:00-share-one-run",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("tz", "cron", "start", "end", "expected"), CASES)
def test_cron_runs_across_dst(
    tz: str, cron: str, start: str, end: str, expected: list[str]
) -> None:
    assert _runs(cron, tz, start, end) == expected


def test_croniter_alone_runs_a_repeated_local_time_twice() -> None:
    """Why riaktq-py maps local times itself: croniter 7 with aware datetimes runs
    02:30 twice on the night Berlin falls back (at 00:30Z and 01:30Z)."""
    berlin = ZoneInfo("Europe/Berlin")
    matches = croniter("30 2 * * *", dt.datetime(2024, 10, 26, 12, tzinfo=berlin))
    runs = [matches.get_next(dt.datetime).astimezone(dt.UTC) for _ in range(2)]
    assert [r.isoformat() for r in runs] == [
        "2024-10-27T00:30:00+00:00",
        "2024-10-27T01:30:00+00:00",
    ]
    assert _runs("30 2 * * *", "Europe/Berlin", "2024-10-26T12:00:00+00:00",
                 "2024-10-27T12:00:00+00:00") == ["2024-10-27T00:30:00Z"]  # fmt: skip


def test_a_local_time_in_a_gap_maps_to_the_end_of_the_gap() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    for minute in (0, 1, 30, 59):
        assert instant_of(dt.datetime(2024, 3, 31, 2, minute), berlin) == us(
            "2024-03-31T01:00:00+00:00"
        )
    assert instant_of(dt.datetime(2024, 10, 27, 2, 30), berlin) == us("2024-10-27T00:30:00+00:00")


def test_last_occurrence_inside_the_repeated_hour_is_found() -> None:
    """At 02:45 CET (second pass) the 02:50 run of the first pass has already happened."""
    last = cron_last("50 2 * * *", "Europe/Berlin", us("2024-10-27T01:45:00+00:00"))
    assert last == us("2024-10-27T00:50:00+00:00")


def test_a_run_starting_inside_the_repeated_hour_does_not_repeat_it() -> None:
    assert _runs("*/30 * * * *", "Europe/Berlin", "2024-10-27T01:10:00+00:00",
                 "2024-10-27T02:10:00+00:00") == ["2024-10-27T02:00:00Z"]  # fmt: skip


@pytest.mark.parametrize(
    ("tz", "cron", "start", "days", "expected"),
    [
        pytest.param("Europe/Berlin", "30 2 * * *", "2024-03-30T00:00:00+00:00", 3,
                     ["2024-03-30T02:30:00+01:00", "2024-03-31T03:00:00+02:00",
                      "2024-04-01T02:30:00+02:00"], id="berlin-spring"),
        pytest.param("Europe/Berlin", "30 2 * * *", "2024-10-26T00:00:00+00:00", 3,
                     ["2024-10-26T02:30:00+02:00", "2024-10-27T02:30:00+02:00",
                      "2024-10-28T02:30:00+01:00"], id="berlin-fall"),
        pytest.param("America/New_York", "30 2 * * *", "2024-03-09T00:00:00+00:00", 3,
                     ["2024-03-09T02:30:00-05:00", "2024-03-10T03:00:00-04:00",
                      "2024-03-11T02:30:00-04:00"], id="new-york-spring"),
        pytest.param("America/New_York", "30 1 * * *", "2024-11-02T00:00:00+00:00", 3,
                     ["2024-11-02T01:30:00-04:00", "2024-11-03T01:30:00-04:00",
                      "2024-11-04T01:30:00-05:00"], id="new-york-fall"),
    ],
)  # fmt: skip
def test_a_queue_ticking_through_dst_opens_each_local_run_once(
    tz: str, cron: str, start: str, days: int, expected: list[str]
) -> None:
    """A scheduler ticking every 15 fake minutes for three days, one task per run."""
    clock = FakeClock(us(start))
    with queue(SqliteStore(), clock) as tq:
        tq.add_schedule("nightly", cron=cron, timezone=tz, tags=["elsewhere"], overlap="allow")
        for _ in range(days * 24 * 4):
            clock.advance(15 * 60)
            run_tick(tq)
        records = tq.occurrences("nightly")
        assert [r.reason for r in records] == ["on time"] * len(expected)
        zone = ZoneInfo(tz)
        local = [
            (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=r.due))
            .astimezone(zone)
            .isoformat()
            for r in records
        ]
        assert local == expected
        assert all(tq.get(r.task_key or "") is not None for r in records)
        assert records[-1].due < clock.now_us() - SECOND
