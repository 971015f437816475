"""The embedding API: one object that owns a store, a scheduler, instances and events.

tq = Riaktq("tasks.db")

@tq.handler("resize", instances=2)
def resize(image):
    return do_resize(image)

with tq:                                   # starts the actors, stops them on exit
    resize.open("img-1", {"path": "a.png"}, priority=5, retry=2)
    task = tq.wait("img-1", timeout=10)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pykka

from riaktq_py import payload
from riaktq_py.actors.aging import Aging
from riaktq_py.actors.event_manager import EventManager, Subscriber
from riaktq_py.actors.handles import LocalInstance
from riaktq_py.actors.instance import Instance
from riaktq_py.actors.scheduler import Doorbell, Scheduler, SchedulerConfig
from riaktq_py.actors.tick import TickConfig, TickReport
from riaktq_py.clock import Clock, SystemClock
from riaktq_py.engine import Engine
from riaktq_py.errors import ConfigError, RiaktqError, UnknownHandler
from riaktq_py.handlers import Handler, as_handler
from riaktq_py.observer.embedded import Observing
from riaktq_py.observer.operations import ObserverOperations
from riaktq_py.operations import (
    TaskOperations,
    check_backoff,
    check_int,
    check_name,
    check_seconds,
)
from riaktq_py.runner import SubprocessHandler, handler_path
from riaktq_py.schedules.operations import ScheduleOperations
from riaktq_py.store.base import Store
from riaktq_py.store.url import as_store
from riaktq_py.task import Backoff, Task, is_final
from riaktq_py.workers._embedded import (
    CoordinationConfig,
    InstanceGroup,
    Membership,
    coordination_for,
)

__all__ = ["CALL_TIMEOUT", "HandlerRef", "Riaktq", "is_final"]

CALL_TIMEOUT = 10.0
#: priority aging is on by default: +1 priority per 5 minutes a task waits
DEFAULT_AGING = Aging()
EXECUTIONS = ("thread", "process")


class HandlerRef:
    """What ``@tq.handler(name)`` returns: still callable, and opens tasks for its handler."""

    def __init__(self, app: Riaktq, name: str, fn: Callable[..., Any]) -> None:
        self.app = app
        self.name = name
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def open(self, key: str, input: Any = None, **options: Any) -> Task:
        return self.app.open(key, input, handler=self.name, **options)


@dataclasses.dataclass(frozen=True, slots=True)
class _HandlerSpec:
    handler: Handler
    instances: int
    capacity: int
    tags: frozenset[str]
    options: Mapping[str, Any]
    timeout: float | None = None
    backoff: Backoff | None = None
    #: module:object of the handler, when each instance runs it in a child process
    process_path: str | None = None

    def for_instance(self) -> Handler:
        """The handler object one instance runs (its own child process in process mode)."""
        if self.process_path is None:
            return self.handler
        return SubprocessHandler(self.process_path, self.options)


class Riaktq(TaskOperations, ScheduleOperations, ObserverOperations):
    """A task queue embedded in this process."""

    def __init__(
        self,
        store: Store | str | os.PathLike[str] = ":memory:",
        *,
        clock: Clock | None = None,
        interval: float | None = 60.0,
        debounce: float | None = 0.002,
        batch_size: int = 1000,
        call_timeout: float = 5.0,
        max_payload: int = payload.DEFAULT_MAX_PAYLOAD,
        aging: Aging | None = DEFAULT_AGING,
        seed: int | None = None,
        coordinate: bool | CoordinationConfig | None = None,
        pace: float | None = 0.02,
    ) -> None:
        """``coordinate``: share the store with other processes (one scheduler ticks, every
        process's instances get work); by default on for a SQLite file store when the queue
        ticks by itself. See :mod:`riaktq_py.workers._embedded`.

        ``pace``: under load, the least time between the starts of triggered ticks (see
        :class:`~riaktq_py.actors.scheduler.SchedulerConfig`); None ticks back to back.
        """
        self._owns_store = not isinstance(store, Store)
        self.store: Store = as_store(store)
        self.clock: Clock = clock or SystemClock()
        self.max_payload = check_int("max_payload", max_payload, 1)
        self.config = SchedulerConfig(
            interval, debounce, TickConfig(batch_size, call_timeout, seed), pace
        )
        #: priority aging (a tick step), or None to turn it off
        self.aging = aging
        self.engine = Engine(self.store, self.clock)
        self._handlers: dict[str, _HandlerSpec] = {}
        self._events: pykka.ActorRef[EventManager] | None = None
        self._events_proxy: Any = None  # built once: a pykka proxy takes ~200 µs to make
        self._scheduler: pykka.ActorRef[Scheduler] | None = None
        self._instances: list[pykka.ActorRef[Instance]] = []
        self._doorbell: Doorbell | None = None
        self._observing = Observing(self.store, self.clock, interval, CALL_TIMEOUT)
        ticks_itself = interval is not None or debounce is not None
        #: how this queue shares its store with other processes, or None
        self.coordination = coordination_for(self.store, coordinate, ticks_itself=ticks_itself)
        self._member: Membership | None = None

    # -- handlers -------------------------------------------------------------------

    def handler(
        self,
        name: str,
        *,
        instances: int = 1,
        capacity: int = 1,
        tags: Iterable[str] = (),
        options: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        backoff: Backoff | None = None,
        execution: str = "thread",
    ) -> Callable[[Callable[..., Any]], HandlerRef]:
        """Decorator: register a function (or handler class) under ``name``, used as a tag."""

        def register(fn: Callable[..., Any]) -> HandlerRef:
            self.add_handler(
                name,
                fn,
                instances=instances,
                capacity=capacity,
                tags=tags,
                options=options,
                timeout=timeout,
                backoff=backoff,
                execution=execution,
            )
            return HandlerRef(self, name, fn)

        return register

    def add_handler(
        self,
        name: str,
        handler: object,
        *,
        instances: int = 1,
        capacity: int = 1,
        tags: Iterable[str] = (),
        options: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        backoff: Backoff | None = None,
        execution: str = "thread",
    ) -> None:
        """Register a handler; its ``instances`` instances have tags ``{name} | tags``.

        ``timeout`` and ``backoff`` are the defaults of tasks opened for this
        handler. ``execution="process"`` runs each instance's tasks in a child
        process (the handler must be importable as ``module:object``), so a
        task that times out is really stopped; in ``"thread"`` mode it is
        abandoned (see :mod:`riaktq_py.runner`).
        """
        check_name("handler name", name)
        if name in self._handlers:
            raise ConfigError(f"a handler named {name!r} is already registered")
        if self._scheduler is not None:
            raise ConfigError("handlers must be registered before start()")
        if execution not in EXECUTIONS:
            raise ConfigError(f"execution must be 'thread' or 'process', got {execution!r}")
        process_path = handler_path(handler) if execution == "process" else None
        self._handlers[name] = _HandlerSpec(
            SubprocessHandler(process_path)
            if process_path
            else as_handler(handler, where=f"handler {name!r}"),
            check_int("instances", instances, 1),
            check_int("capacity", capacity, 1),
            frozenset({name, *(check_name("tag", t) for t in tags)}),
            dict(options or {}),
            check_seconds("timeout", timeout),
            check_backoff(backoff),
            process_path,
        )

    def _handler_defaults(self, handler: str) -> tuple[float | None, Backoff | None]:
        spec = self._handlers.get(handler)
        if spec is None:
            known = ", ".join(sorted(self._handlers)) or "none"
            raise UnknownHandler(f"unknown handler {handler!r} (registered: {known})")
        return spec.timeout, spec.backoff

    def _tick_soon(self) -> None:
        if self._doorbell is not None:
            self._doorbell.ring()

    # -- lifecycle ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    def start(self) -> Riaktq:
        if self._scheduler is not None:
            return self
        self._events = EventManager.start("task-events")
        events = self._events_proxy = self._events.proxy()
        outbox = events.outbox.get(timeout=CALL_TIMEOUT)
        steps = [] if self.aging is None else [self.aging]
        member = self._member = (
            None
            if self.coordination is None
            else Membership(
                self.store,
                self.clock,
                self.coordination,
                events,
                engine_lock=self.engine.lock,
                outbox=outbox,
            )
        )
        self._observing.start(None if member is None else member.gate)
        shared = member is not None and member.config.share_instances
        self.engine.events = member.relay if member is not None and shared else outbox
        self._scheduler = Scheduler.start(
            self.engine if member is None else member.engine,
            (),
            self.config,
            steps,
            None if member is None else member.gate,
        )
        scheduler = self._scheduler.proxy()
        doorbell = self._doorbell = scheduler.doorbell.get(timeout=CALL_TIMEOUT)
        self._start_schedules(scheduler)
        if member is not None:
            member.start(scheduler, self._groups())
        if shared:
            doorbell.ring()
            return self
        for name, spec in self._handlers.items():
            for number in range(1, spec.instances + 1):
                instance_name = f"{name}-{number}"
                ref = Instance.start(
                    instance_name,
                    spec.for_instance(),
                    clock=self.clock,
                    tags=spec.tags,
                    capacity=spec.capacity,
                    options=spec.options,
                    max_output=self.max_payload,
                    on_result=doorbell.ring,
                )
                self._instances.append(ref)
                scheduler.add_instance(LocalInstance(instance_name, ref)).get(timeout=CALL_TIMEOUT)
        doorbell.ring()
        return self

    def _groups(self) -> list[InstanceGroup]:
        return [
            InstanceGroup(
                name,
                spec.for_instance,
                spec.instances,
                spec.capacity,
                spec.tags,
                spec.options,
                self.max_payload,
            )
            for name, spec in self._handlers.items()
        ]

    def stop(self) -> None:
        member, self._member = self._member, None
        if member is not None and not member.config.share_instances and self._scheduler:
            # the last tick ends while this process still holds the lease it writes under
            # (shared instances drain first: the scheduler commits what they hand in)
            self._scheduler.stop(timeout=CALL_TIMEOUT)
        if member is not None:
            member.stop()
        self._observing.stop()
        for ref in [self._scheduler, *self._instances, self._events]:
            # not a second stop: pykka answers it with an ActorDeadError kept in a future,
            # a reference cycle whose traceback holds the caller's frames until a full GC
            if ref is not None and ref.is_alive():
                ref.stop(timeout=CALL_TIMEOUT)  # a running tick finishes first
        if member is not None:
            member.close()
        self._scheduler, self._events, self._instances = None, None, []
        self._events_proxy = None
        self._doorbell = None
        self.engine.events = None

    def close(self) -> None:
        """Stop, and close the store if this queue opened it (from a URL or path).

        ``stop()`` alone keeps the store open, so tasks can still be read (and
        the queue started again); a store passed in is the caller's to close.
        """
        self.stop()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Riaktq:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until every local instance has run everything in its input queue."""
        if self._member is not None:
            self._member.wait_idle(timeout)
        for ref in self._instances:
            if ref.is_alive():
                future = ref.proxy().idle().get(timeout=timeout)
                future.get(timeout=timeout)

    # -- events and ticks -----------------------------------------------------------

    def subscribe(
        self,
        subscriber: Subscriber,
        from_position: int | None = None,
        *,
        cursor: str | None = None,
        batch: bool = False,
    ) -> int:
        """Receive every transition event from now on; returns an unsubscribe number.

        With ``from_position`` (or a ``cursor`` name), first every logged event
        after that position, then live ones, with no gap and no duplicate; each
        event's ``position`` is what to resume from (see :mod:`riaktq_py.observer.replay`).
        With ``batch=True`` a callable gets a list of events per delivery (in log
        order), which costs a busy subscriber much less than a call per event.
        """
        events = self._require(self._events)
        if from_position is not None or cursor is not None:
            if batch:
                raise ConfigError("batch=True is for live subscriptions: a replay delivers"
                                  " event by event")  # fmt: skip
            return self._observing.replay(events, subscriber, from_position, cursor)
        number: int = self._events_api().subscribe(subscriber, batch).get(timeout=CALL_TIMEOUT)
        return number

    def unsubscribe(self, number: int) -> bool:
        done: bool = self._events_api().unsubscribe(number).get(timeout=CALL_TIMEOUT)
        self._observing.drop_replay(number)
        return done

    def _watch(self, callback: Callable[[Sequence[object]], object]) -> int:
        number: int = self._events_api().watch(callback).get(timeout=CALL_TIMEOUT)
        return number

    def tick(self, timeout: float = 60.0) -> TickReport | None:
        """Run a tick now and return its report (None if one was already running)."""
        future = self._require(self._scheduler).proxy().tick().get(timeout=CALL_TIMEOUT)
        report: TickReport | None = future.get(timeout=timeout)
        return report

    def _events_api(self) -> Any:
        """The event manager's proxy (one per start); RiaktqError once stopped."""
        proxy = self._events_proxy  # read once: a stop may clear it meanwhile
        if proxy is None:
            raise RiaktqError("the queue is not running: call start() first")
        return proxy

    def _require(self, ref: pykka.ActorRef[Any] | None) -> pykka.ActorRef[Any]:
        if ref is None:
            raise RiaktqError("the queue is not running: call start() first")
        return ref
