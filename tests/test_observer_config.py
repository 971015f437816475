"""Observations from plain data: every report kind and schedule form, and named errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from riaktq_py.errors import ConfigError
from riaktq_py.observer import (
    Cron,
    Daily,
    Interval,
    Query,
    Retention,
    ScheduleHealth,
    StatusCounts,
    WindowStats,
)
from riaktq_py.observer.config import observations_from_config
from riaktq_py.task import Status


def test_every_report_kind_and_schedule_form() -> None:
    """Entries become Query/StatusCounts/WindowStats/Retention on daily, cron or interval."""
    observations = observations_from_config(
        [
            {"key": "stale", "status": "todo", "age": 3600, "tags": ["gpu"], "limit": 5},
            {"key": "counts", "report": "status_counts", "schedule": {"interval": 300}},
            {
                "key": "hourly",
                "report": "window_stats",
                "window": 3600,
                "schedule": {"cron": "0 * * * *", "timezone": "Europe/Berlin"},
            },
            {"key": "health", "report": "schedule_health", "grace": 30},
            {
                "key": "retention",
                "report": "retention",
                "tasks_older_than": 86400,
                "schedule": {"daily": "03:00:30"},
            },
        ]
    )
    assert [(o.name, o.report, o.schedule) for o in observations] == [
        (
            "stale",
            Query(status=Status.TODO, age=3600, tags=frozenset({"gpu"}), limit=5),
            Daily("00:00"),
        ),
        ("counts", StatusCounts(), Interval(300)),
        ("hourly", WindowStats(3600), Cron("0 * * * *", "Europe/Berlin")),
        ("health", ScheduleHealth(grace=30), Daily("00:00")),
        ("retention", Retention(tasks_older_than=86400), Daily(dt.time(3, 0, 30))),
    ]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"key": "x"}, "a list of entries"),
        ([{"status": "todo"}], "needs a non-empty 'key'"),
        ([{"key": "x", "report": "pie"}], "unknown report 'pie'"),
        ([{"key": "x", "window": 5}], "unknown field 'window' for a query report"),
        ([{"key": "x", "age": -5}], "observation 'x': age must be >= 0"),
        ([{"key": "x"}, {"key": "x"}], "observation key 'x' appears twice"),
        ([{"key": "x", "schedule": {"daily": "06:00:61"}}], "observation 'x': time of day"),
        ([{"key": "x", "schedule": {"weekly": 1}}], "a schedule is"),
        ([{"key": "x", "schedule": "06:00"}], "a schedule must be a mapping"),
        ([{"key": "x", "schedule": {"cron": "0 6 * * *", "timezone": "Nowhere"}}], "Nowhere"),
    ],
)
def test_bad_entries_are_named(entries: Any, message: str) -> None:
    """Each problem is a ConfigError naming the entry and the field."""
    with pytest.raises(ConfigError, match=message):
        observations_from_config(entries)
