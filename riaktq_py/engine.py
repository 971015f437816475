"""The engine: the one place transitions are applied, logged and published.

Everything that changes a task (the API's ``open``, the scheduler's tick) goes
through :meth:`Engine.apply`, which applies the transitions in the store, logs
each one through structlog and hands the events to the event manager.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from riaktq_py.clock import Clock
from riaktq_py.events import TaskEvent
from riaktq_py.log import get_logger
from riaktq_py.store.base import Store
from riaktq_py.transitions import GRAPH, Transition


def _from_status(transition: str) -> str:
    sources = GRAPH[transition][0] if transition in GRAPH else frozenset()
    if None in sources:
        return "any"
    return "|".join(sorted(str(s) for s in sources))


#: what each transition's log line says it moves from (computed once)
_FROM_STATUS = {name: _from_status(name) for name in GRAPH}


class Engine:
    """Applies transitions through a store; logs and publishes every one."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: Any | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        #: an EventManager proxy (or anything with ``publish(events)``), or None
        self.events: Any = events
        self._log = get_logger(bucket=store.bucket)
        #: shared by engines of one process that publish to the same subscribers
        self.lock = lock or threading.Lock()

    def apply(self, transitions: Sequence[Transition]) -> list[TaskEvent]:
        if not transitions:
            return []
        prepared = self.store.prepare(transitions)  # outside the lock: others may write
        # one lock around apply and publish: subscribers get events in log order
        with self.lock:
            events = self.store.apply(transitions, at=self.clock.now_us(), prepared=prepared)
            if self.events is not None:
                publish = self.events.publish
                defer = getattr(publish, "defer", None)  # a pykka proxy: one-way, no future
                if defer is not None:
                    defer(events)
                else:
                    publish(events)
        info = self._log.is_enabled_for(logging.INFO)
        for event in events:
            if event.task is not None:
                if not info:
                    continue
                self._log.info(
                    event.transition,
                    key=event.key,
                    transition=event.transition,
                    from_status=_FROM_STATUS.get(event.transition) or _from_status(
                        event.transition
                    ),
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
        return events
