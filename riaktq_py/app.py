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

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pykka

from riaktq_py import payload
from riaktq_py.actors.event_manager import EventManager, Subscriber
from riaktq_py.actors.handles import LocalInstance
from riaktq_py.actors.instance import Instance
from riaktq_py.actors.scheduler import Scheduler, SchedulerConfig
from riaktq_py.actors.tick import TickConfig, TickReport
from riaktq_py.clock import Clock, SystemClock
from riaktq_py.engine import Engine
from riaktq_py.errors import ConfigError, RiaktqError, TaskNotFound, UnknownHandler
from riaktq_py.events import TaskEvent
from riaktq_py.handlers import Handler, as_handler
from riaktq_py.store.base import Store
from riaktq_py.store.sqlite import TAG_SEPARATOR
from riaktq_py.task import Status, Task
from riaktq_py.transitions import Open

MAX_KEY_LENGTH = 1024
CALL_TIMEOUT = 10.0


def _check_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not name or TAG_SEPARATOR in name or len(name) > MAX_KEY_LENGTH:
        raise ConfigError(
            f"{kind} must be a non-empty string of at most {MAX_KEY_LENGTH} characters"
            f" without \\x1f, got {name!r}"
        )
    return name


def _check_int(name: str, value: object, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def is_final(task: Task) -> bool:
    """Done, or failed with no retries left: the scheduler will not move it again."""
    return task.status is Status.DONE or (task.status is Status.FAILED and task.retry <= 0)


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


class _HandlerSpec:
    def __init__(
        self,
        handler: Handler,
        instances: int,
        capacity: int,
        tags: frozenset[str],
        options: Mapping[str, Any],
    ) -> None:
        self.handler = handler
        self.instances = instances
        self.capacity = capacity
        self.tags = tags
        self.options = options


class Riaktq:
    """A task queue embedded in this process."""

    def __init__(
        self,
        store: Store | str = ":memory:",
        *,
        clock: Clock | None = None,
        interval: float | None = 60.0,
        debounce: float | None = 0.002,
        batch_size: int = 1000,
        call_timeout: float = 5.0,
        max_payload: int = payload.DEFAULT_MAX_PAYLOAD,
    ) -> None:
        self._owns_store = isinstance(store, str)
        self.store: Store = _open_store(store) if isinstance(store, str) else store
        self.clock: Clock = clock or SystemClock()
        self.max_payload = _check_int("max_payload", max_payload, 1)
        self.config = SchedulerConfig(interval, debounce, TickConfig(batch_size, call_timeout))
        self.engine = Engine(self.store, self.clock)
        self._handlers: dict[str, _HandlerSpec] = {}
        self._events: pykka.ActorRef[EventManager] | None = None
        self._scheduler: pykka.ActorRef[Scheduler] | None = None
        self._instances: list[pykka.ActorRef[Instance]] = []

    # -- handlers -------------------------------------------------------------------

    def handler(
        self,
        name: str,
        *,
        instances: int = 1,
        capacity: int = 1,
        tags: Iterable[str] = (),
        options: Mapping[str, Any] | None = None,
    ) -> Callable[[Callable[..., Any]], HandlerRef]:
        """Decorator: register a function (or handler class) under ``name``, used as a tag."""

        def register(fn: Callable[..., Any]) -> HandlerRef:
            self.add_handler(
                name, fn, instances=instances, capacity=capacity, tags=tags, options=options
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
    ) -> None:
        """Register a handler; its ``instances`` instances have tags ``{name} | tags``."""
        _check_name("handler name", name)
        if name in self._handlers:
            raise ConfigError(f"a handler named {name!r} is already registered")
        if self._scheduler is not None:
            raise ConfigError("handlers must be registered before start()")
        self._handlers[name] = _HandlerSpec(
            as_handler(handler, where=f"handler {name!r}"),
            _check_int("instances", instances, 1),
            _check_int("capacity", capacity, 1),
            frozenset({name, *(_check_name("tag", t) for t in tags)}),
            dict(options or {}),
        )

    # -- lifecycle ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    def start(self) -> Riaktq:
        if self._scheduler is not None:
            return self
        self._events = EventManager.start("task-events")
        self.engine.events = self._events.proxy()
        self._scheduler = Scheduler.start(self.engine, (), self.config)
        scheduler = self._scheduler.proxy()
        for name, spec in self._handlers.items():
            for number in range(1, spec.instances + 1):
                instance_name = f"{name}-{number}"
                ref = Instance.start(
                    instance_name,
                    spec.handler,
                    clock=self.clock,
                    tags=spec.tags,
                    capacity=spec.capacity,
                    options=spec.options,
                    max_output=self.max_payload,
                    on_result=scheduler.trigger,
                )
                self._instances.append(ref)
                scheduler.add_instance(LocalInstance(instance_name, ref)).get(timeout=CALL_TIMEOUT)
        scheduler.trigger()
        return self

    def stop(self) -> None:
        for ref in [self._scheduler, *self._instances, self._events]:
            if ref is not None:
                ref.stop(timeout=CALL_TIMEOUT)
        self._scheduler, self._events, self._instances = None, None, []
        self.engine.events = None
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Riaktq:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- tasks ----------------------------------------------------------------------

    def open(
        self,
        key: str,
        input: Any = None,
        *,
        priority: int = 0,
        retry: int = 0,
        tags: Iterable[str] = (),
        handler: str | None = None,
    ) -> Task:
        """Open (or re-open) a task. Its input must be msgpack-encodable, within the limit."""
        [task] = self.open_many(
            [(key, input)], priority=priority, retry=retry, tags=tags, handler=handler
        )
        return task

    def open_many(
        self,
        items: Iterable[tuple[str, Any]],
        *,
        priority: int = 0,
        retry: int = 0,
        tags: Iterable[str] = (),
        handler: str | None = None,
    ) -> list[Task]:
        """Open many tasks with the same options in one store transaction."""
        _check_int("priority", priority)
        _check_int("retry", retry, 0)
        all_tags = frozenset(_check_name("tag", t) for t in tags)
        if handler is not None:
            if handler not in self._handlers:
                known = ", ".join(sorted(self._handlers)) or "none"
                raise UnknownHandler(f"unknown handler {handler!r} (registered: {known})")
            all_tags |= {handler}
        now = self.clock.now_us()
        opens = [
            Open(
                _check_name("task key", key),
                payload.encode(value, limit=self.max_payload, what=f"input of {key!r}"),
                cat=now,
                priority=priority,
                retry=retry,
                tags=all_tags,
            )
            for key, value in items
        ]
        events = self.engine.apply(opens)
        if self._scheduler is not None:
            self._scheduler.proxy().trigger()
        return [_task_of(event) for event in events]

    def get(self, key: str) -> Task | None:
        return self.store.get(key)

    def wait(self, key: str, timeout: float = 30.0) -> Task:
        """Block until the task is final (done, or failed with no retries left)."""
        arrived = threading.Event()

        def watch(event: TaskEvent) -> None:
            if event.key == key and event.task is not None and is_final(event.task):
                arrived.set()

        number = self.subscribe(watch) if self._events is not None else None
        try:
            task = self.store.get(key)
            if task is None:
                raise TaskNotFound(f"no task {key!r}")
            if not is_final(task) and not arrived.wait(timeout):
                raise TimeoutError(f"task {key!r} not final after {timeout} s")
            final = self.store.get(key)
            assert final is not None
            return final
        finally:
            if number is not None:
                self.unsubscribe(number)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until every local instance has run everything in its input queue."""
        for ref in self._instances:
            if ref.is_alive():
                future = ref.proxy().idle().get(timeout=timeout)
                future.get(timeout=timeout)

    # -- events and ticks -----------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> int:
        """Receive every transition event from now on; returns an unsubscribe number."""
        number: int = (
            self._require(self._events).proxy().subscribe(subscriber).get(timeout=CALL_TIMEOUT)
        )
        return number

    def unsubscribe(self, number: int) -> bool:
        done: bool = (
            self._require(self._events).proxy().unsubscribe(number).get(timeout=CALL_TIMEOUT)
        )
        return done

    def tick(self, timeout: float = 60.0) -> TickReport | None:
        """Run a tick now and return its report (None if one was already running)."""
        future = self._require(self._scheduler).proxy().tick().get(timeout=CALL_TIMEOUT)
        report: TickReport | None = future.get(timeout=timeout)
        return report

    def _require(self, ref: pykka.ActorRef[Any] | None) -> pykka.ActorRef[Any]:
        if ref is None:
            raise RiaktqError("the queue is not running: call start() first")
        return ref


def _task_of(event: TaskEvent) -> Task:
    if event.task is None:
        raise RiaktqError(event.error or f"{event.transition} {event.key!r} failed")
    return event.task


def _open_store(url: str) -> Store:
    from riaktq_py.store.url import open_store

    return open_store(url)
