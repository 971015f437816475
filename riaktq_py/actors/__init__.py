"""The actors: scheduler, instances, event manager."""

from riaktq_py.actors.event_manager import EventManager
from riaktq_py.actors.handles import InstanceHandle, LocalInstance
from riaktq_py.actors.instance import Assignment, Instance, InstanceState, Result
from riaktq_py.actors.scheduler import Scheduler, SchedulerConfig
from riaktq_py.actors.tick import Tick, TickConfig, TickReport, TickStep

__all__ = [
    "Assignment",
    "EventManager",
    "Instance",
    "InstanceHandle",
    "InstanceState",
    "LocalInstance",
    "Result",
    "Scheduler",
    "SchedulerConfig",
    "Tick",
    "TickConfig",
    "TickReport",
    "TickStep",
]
