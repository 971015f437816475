"""The observer side of an embedded queue (:class:`~riaktq_py.Riaktq`).

Owns the query event manager, the observer actor and the replay actors of
subscriptions made from a log position, and starts and stops them with the
queue. :class:`~riaktq_py.Riaktq` delegates to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pykka

from riaktq_py.actors.event_manager import EventManager, Subscriber
from riaktq_py.actors.scheduler import TickGate
from riaktq_py.clock import Clock
from riaktq_py.errors import ConfigError, RiaktqError
from riaktq_py.observer.observer import Observation, Observer, ObserverRun, run_now
from riaktq_py.observer.queries import Report, ReportResult
from riaktq_py.observer.replay import Replay, subscribe_from
from riaktq_py.observer.schedule import Schedule
from riaktq_py.store.base import Store


class Observing:
    """Query events, the observer and replays, for one embedded queue."""

    def __init__(self, store: Store, clock: Clock, interval: float | None, timeout: float) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval
        self.timeout = timeout
        self.observations: dict[str, Observation] = {}
        self.query_events: pykka.ActorRef[EventManager] | None = None
        self.observer: pykka.ActorRef[Observer] | None = None
        self.replays: dict[int, pykka.ActorRef[Replay]] = {}

    def start(self, gate: TickGate | None = None) -> None:
        """Start; ``gate`` (the scheduler's) says when the observer may run its reports."""
        self.query_events = EventManager.start("query-events")
        self.observer = Observer.start(
            self.store,
            self.clock,
            self.query_events.proxy(),
            list(self.observations.values()),
            interval=self.interval,
            gate=gate,
        )

    def stop(self) -> None:
        for ref in [*self.replays.values(), self.observer, self.query_events]:
            if ref is not None:
                ref.stop(timeout=self.timeout)
        self.replays.clear()
        self.observer = self.query_events = None

    def observe(self, name: str, report: Report, schedule: Schedule) -> Observation:
        observation = Observation(name, report, schedule)
        if name in self.observations:
            raise ConfigError(f"an observation named {name!r} already exists")
        if self.observer is not None:
            self.observer.proxy().observe(observation).get(timeout=self.timeout)
        self.observations[name] = observation
        return observation

    def subscribe_queries(self, subscriber: Subscriber) -> int:
        number: int = (
            _running(self.query_events).proxy().subscribe(subscriber).get(timeout=self.timeout)
        )
        return number

    def unsubscribe_queries(self, number: int) -> bool:
        done: bool = (
            _running(self.query_events).proxy().unsubscribe(number).get(timeout=self.timeout)
        )
        return done

    def tick(self, timeout: float) -> ObserverRun | None:
        future = _running(self.observer).proxy().tick().get(timeout=self.timeout)
        run: ObserverRun | None = future.get(timeout=timeout)
        return run

    def report(self, names: Iterable[str]) -> list[ReportResult]:
        wanted = list(names) or list(self.observations)
        unknown = [n for n in wanted if n not in self.observations]
        if unknown:
            known = ", ".join(sorted(self.observations)) or "none"
            raise ConfigError(f"no observation named {unknown[0]!r} (known: {known})")
        chosen = [self.observations[n] for n in wanted]
        return run_now(self.store, chosen, self.clock.now_us())

    def replay(
        self,
        events: pykka.ActorRef[Any],
        subscriber: Subscriber,
        from_position: int | None,
        cursor: str | None,
    ) -> int:
        ref, number = subscribe_from(
            events, self.store, subscriber, from_position, cursor=cursor, timeout=self.timeout
        )
        self.replays[number] = ref
        return number

    def drop_replay(self, number: int) -> None:
        ref = self.replays.pop(number, None)
        if ref is not None:
            ref.stop(timeout=self.timeout)


def _running(ref: pykka.ActorRef[Any] | None) -> pykka.ActorRef[Any]:
    if ref is None:
        raise RiaktqError("the queue is not running: call start() first")
    return ref
