"""Observer, report queries, replayable transition log, task history and retention (issue 3)."""

from riaktq_py.observer.config import observations_from_config
from riaktq_py.observer.health import ScheduleHealth, ScheduleHealthEntry, ScheduleHealthResult
from riaktq_py.observer.history import attempt_summary, task_history
from riaktq_py.observer.observer import Observation, Observer, ObserverRun, run_due, run_now
from riaktq_py.observer.queries import (
    Query,
    QueryResult,
    Report,
    ReportResult,
    StatusCounts,
    StatusCountsResult,
    WindowStats,
    WindowStatsResult,
)
from riaktq_py.observer.replay import Replay, follow_log, read_log, subscribe_from
from riaktq_py.observer.retention import PruneResult, Retention
from riaktq_py.observer.schedule import Cron, Daily, Interval, Schedule

__all__ = [
    "Cron",
    "Daily",
    "Interval",
    "Observation",
    "Observer",
    "ObserverRun",
    "PruneResult",
    "Query",
    "QueryResult",
    "Replay",
    "Report",
    "ReportResult",
    "Retention",
    "Schedule",
    "ScheduleHealth",
    "ScheduleHealthEntry",
    "ScheduleHealthResult",
    "StatusCounts",
    "StatusCountsResult",
    "WindowStats",
    "WindowStatsResult",
    "attempt_summary",
    "follow_log",
    "observations_from_config",
    "read_log",
    "run_due",
    "run_now",
    "subscribe_from",
    "task_history",
]
