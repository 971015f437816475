"""Observations from plain data (JSON, TOML...): riaktq's query list, extended.

One entry per observation::

    {"key": "stale", "status": "todo", "age": 3600, "schedule": {"daily": "06:00"}}
    {"key": "gpu-backlog", "tags": ["gpu"], "priority_min": 5, "limit": 100}
    {"key": "counts", "report": "status_counts", "schedule": {"interval": 300}}
    {"key": "last-hour", "report": "window_stats", "window": 3600,
     "schedule": {"cron": "0 * * * *", "timezone": "Europe/Berlin"}}
    {"key": "schedules", "report": "schedule_health", "window": 86400, "grace": 120}
    {"key": "retention", "report": "retention", "tasks_older_than": 604800,
     "log_older_than": 2592000, "schedule": {"daily": "03:00"}}

``report`` defaults to ``"query"``; the other fields are the report's settings.
``schedule`` defaults to ``{"daily": "00:00"}``. Unknown fields are refused by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from riaktq_py.errors import ConfigError
from riaktq_py.observer.health import ScheduleHealth
from riaktq_py.observer.observer import Observation
from riaktq_py.observer.queries import Query, Report, StatusCounts, WindowStats
from riaktq_py.observer.retention import Retention
from riaktq_py.observer.schedule import Cron, Daily, Interval, Schedule

_QUERY_FIELDS = frozenset(
    {
        "status",
        "age",
        "tags",
        "assignee",
        "priority_min",
        "priority_max",
        "created_after",
        "created_before",
        "limit",
    }
)
_REPORTS: dict[str, tuple[type[Any], frozenset[str]]] = {
    "query": (Query, _QUERY_FIELDS),
    "status_counts": (StatusCounts, frozenset()),
    "window_stats": (WindowStats, frozenset({"window"})),
    "schedule_health": (ScheduleHealth, frozenset({"window", "grace"})),
    "retention": (
        Retention,
        frozenset({"tasks_older_than", "log_older_than", "batch_size", "max_batches"}),
    ),
}


def report_from_config(entry: Mapping[str, Any]) -> tuple[str, Report]:
    """The key and report an entry describes (its ``schedule`` is ignored here)."""
    if not isinstance(entry, Mapping):
        raise ConfigError(f"an observation entry must be a mapping, got {entry!r}")
    key = entry.get("key")
    if not isinstance(key, str) or not key:
        raise ConfigError(f"an observation entry needs a non-empty 'key', got {entry!r}")
    kind = entry.get("report", "query")
    if kind not in _REPORTS:
        raise ConfigError(
            f"observation {key!r}: unknown report {kind!r} (known: {', '.join(_REPORTS)})"
        )
    cls, allowed = _REPORTS[kind]
    settings = {k: v for k, v in entry.items() if k not in {"key", "report", "schedule"}}
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise ConfigError(f"observation {key!r}: unknown field {unknown[0]!r} for a {kind} report")
    try:
        report: Report = cls(**settings)
    except ConfigError as exc:
        raise ConfigError(f"observation {key!r}: {exc}") from None
    return key, report


def schedule_from_config(value: object) -> Schedule:
    """A schedule from ``{"daily": "HH:MM[:SS]"}``, ``{"cron": EXPR[, "timezone": ZONE]}``
    or ``{"interval": SECONDS}`` (``None``: daily at midnight UTC)."""
    if value is None:
        return Daily("00:00")
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"a schedule must be a mapping like {{'daily': '06:00'}}, got {value!r}")
    fields = set(value)
    if fields == {"daily"}:
        return Daily(value["daily"])
    if fields in ({"cron"}, {"cron", "timezone"}):
        return Cron(value["cron"], value.get("timezone", "UTC"))
    if fields == {"interval"}:
        return Interval(value["interval"])
    raise ConfigError(
        f"a schedule is {{'daily': ...}}, {{'cron': ..., 'timezone': ...}} or"
        f" {{'interval': ...}}, got {dict(value)!r}"
    )


def observations_from_config(entries: Iterable[Mapping[str, Any]]) -> list[Observation]:
    """Observations for every entry; duplicate keys are refused."""
    if isinstance(entries, str | bytes | Mapping):
        raise ConfigError("observations must be a list of entries")
    observations: list[Observation] = []
    for entry in entries:
        key, report = report_from_config(entry)
        if any(o.name == key for o in observations):
            raise ConfigError(f"observation key {key!r} appears twice")
        try:
            schedule = schedule_from_config(entry.get("schedule"))
        except ConfigError as exc:
            raise ConfigError(f"observation {key!r}: {exc}") from None
        observations.append(Observation(key, report, schedule))
    return observations
