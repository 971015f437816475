"""riaktq-py: a persistent, distributed task queue with a scheduler.

The public API is re-exported here; test helpers live in :mod:`riaktq_py.testing`.
"""

from riaktq_py.actors import (
    EventManager,
    Instance,
    InstanceState,
    Scheduler,
    SchedulerConfig,
    TickConfig,
    TickReport,
)
from riaktq_py.actors.aging import Aging
from riaktq_py.app import HandlerRef, Riaktq, is_final
from riaktq_py.clock import Clock, SystemClock
from riaktq_py.errors import (
    ConfigError,
    PayloadError,
    PayloadTooLarge,
    RiaktqError,
    StoreError,
    StoreUnavailable,
    TaskNotFound,
    TransitionError,
    UndecodablePayload,
    UnencodablePayload,
    UnknownHandler,
)
from riaktq_py.events import TaskEvent
from riaktq_py.handlers import EchoHandler, FunctionHandler, Handler, load_handler
from riaktq_py.observer import (
    Cron,
    Daily,
    Interval,
    Observation,
    Observer,
    ObserverRun,
    PruneResult,
    Query,
    QueryResult,
    Replay,
    Retention,
    StatusCounts,
    StatusCountsResult,
    WindowStats,
    WindowStatsResult,
)
from riaktq_py.store import SqliteStore, Store, TaskQuery
from riaktq_py.task import Attempt, Backoff, Outcome, Status, Task

__version__ = "0.1.0"

__all__ = [
    "Aging",
    "Attempt",
    "Backoff",
    "Clock",
    "ConfigError",
    "Cron",
    "Daily",
    "EchoHandler",
    "EventManager",
    "FunctionHandler",
    "Handler",
    "HandlerRef",
    "Instance",
    "InstanceState",
    "Interval",
    "Observation",
    "Observer",
    "ObserverRun",
    "Outcome",
    "PayloadError",
    "PayloadTooLarge",
    "PruneResult",
    "Query",
    "QueryResult",
    "Replay",
    "Retention",
    "Riaktq",
    "RiaktqError",
    "Scheduler",
    "SchedulerConfig",
    "SqliteStore",
    "Status",
    "StatusCounts",
    "StatusCountsResult",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "SystemClock",
    "Task",
    "TaskEvent",
    "TaskNotFound",
    "TaskQuery",
    "TickConfig",
    "TickReport",
    "TransitionError",
    "UndecodablePayload",
    "UnencodablePayload",
    "UnknownHandler",
    "WindowStats",
    "WindowStatsResult",
    "__version__",
    "is_final",
    "load_handler",
]
