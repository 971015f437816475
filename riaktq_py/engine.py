"""The engine: the one place transitions are applied, logged and published.

Everything that changes a task (the API's ``open``, the scheduler's tick) goes
through :meth:`Engine.apply`, which applies the transitions in the store, logs
each one through structlog and hands the events to the event manager.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from riaktq_py.clock import Clock
from riaktq_py.events import TaskEvent
from riaktq_py.log import get_logger
from riaktq_py.store.base import Store
from riaktq_py.transitions import GRAPH, Transition


def _from_status(transition: str) -> str:
    sources = GRAPH[transition][0] if transition in GRAPH else frozenset()
    names = sorted(str(s) for s in sources if s is not None)
    return names[0] if len(names) == 1 else "any"


class Engine:
    """Applies transitions through a store; logs and publishes every one."""

    def __init__(self, store: Store, clock: Clock, events: Any | None = None) -> None:
        self.store = store
        self.clock = clock
        #: an EventManager proxy (or anything with ``publish(events)``), or None
        self.events = events
        self._log = get_logger(bucket=store.bucket)

    def apply(self, transitions: Sequence[Transition]) -> list[TaskEvent]:
        if not transitions:
            return []
        events = self.store.apply(transitions, at=self.clock.now_us())
        for event in events:
            if event.task is not None:
                self._log.info(
                    event.transition,
                    key=event.key,
                    transition=event.transition,
                    from_status=_from_status(event.transition),
                    to_status=event.task.status.value,
                    assignee=event.task.assignee,
                    position=event.position,
                )
            else:
                self._log.warning(
                    f"{event.transition} refused",
                    key=event.key,
                    transition=event.transition,
                    error=event.error,
                    position=event.position,
                )
        if self.events is not None:
            self.events.publish(events)
        return events
