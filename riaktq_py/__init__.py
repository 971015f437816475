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
from riaktq_py.store import SqliteStore, Store, TaskQuery
from riaktq_py.task import Attempt, Outcome, Status, Task

__version__ = "0.1.0"

__all__ = [
    "Attempt",
    "Clock",
    "ConfigError",
    "EchoHandler",
    "EventManager",
    "FunctionHandler",
    "Handler",
    "HandlerRef",
    "Instance",
    "InstanceState",
    "Outcome",
    "PayloadError",
    "PayloadTooLarge",
    "Riaktq",
    "RiaktqError",
    "Scheduler",
    "SchedulerConfig",
    "SqliteStore",
    "Status",
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
    "__version__",
    "is_final",
    "load_handler",
]
