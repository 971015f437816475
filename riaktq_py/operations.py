"""Task operations of the embedding API: open, read, update, cancel, retry, delete, wait.

:class:`TaskOperations` is mixed into :class:`~riaktq_py.Riaktq`; it validates
input with clear errors and turns every change into a transition applied by the
engine, so each status change still lives in :mod:`riaktq_py.transitions`.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from riaktq_py import payload
from riaktq_py.clock import Clock, seconds_to_us
from riaktq_py.engine import Engine
from riaktq_py.errors import ConfigError, RiaktqError, TaskNotFound, TransitionError
from riaktq_py.events import TaskEvent
from riaktq_py.store.base import Store
from riaktq_py.store.sqlite import TAG_SEPARATOR
from riaktq_py.task import Backoff, Status, Task, is_final
from riaktq_py.transitions import KEEP, Cancel, Open, Retry, Transition, Update

MAX_KEY_LENGTH = 1024
_NO_TAGS: frozenset[str] = frozenset()
#: Statuses a task may be deleted in.
DELETABLE = frozenset({Status.DONE, Status.FAILED, Status.CANCELED})

When = datetime.datetime | int | float


def check_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not name or TAG_SEPARATOR in name or len(name) > MAX_KEY_LENGTH:
        raise ConfigError(
            f"{kind} must be a non-empty string of at most {MAX_KEY_LENGTH} characters"
            f" without \\x1f, got {name!r}"
        )
    return name


def check_int(name: str, value: object, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def check_backoff(backoff: object) -> Backoff | None:
    if backoff is not None and not isinstance(backoff, Backoff):
        raise ConfigError(f"backoff must be a riaktq_py.Backoff, got {backoff!r}")
    return backoff


def to_us(name: str, when: When) -> int:
    """A time as µs since the epoch: an aware datetime, or a number of µs."""
    if isinstance(when, datetime.datetime):
        if when.tzinfo is None:
            raise ConfigError(f"{name} must be timezone-aware, got naive {when.isoformat()}")
        return seconds_to_us(when.timestamp())
    if isinstance(when, bool) or not isinstance(when, int | float):
        raise ConfigError(f"{name} must be an aware datetime or µs since the epoch, got {when!r}")
    return int(when)


class TaskOperations:
    """The task verbs of :class:`~riaktq_py.Riaktq` (see the module docstring)."""

    store: Store
    clock: Clock
    engine: Engine
    max_payload: int

    # -- provided by Riaktq --------------------------------------------------------

    def _handler_defaults(self, handler: str) -> tuple[float | None, Backoff | None]:
        """(timeout, backoff) defaults of a registered handler; UnknownHandler if none."""
        raise NotImplementedError

    def _tick_soon(self) -> None:
        """Ask the scheduler for a tick soon (when running)."""

    def unsubscribe(self, number: int) -> bool:
        raise NotImplementedError

    def _watch(self, callback: Callable[[Sequence[object]], object]) -> int:
        """Subscribe a quick callback of the library's, run on the event manager's own
        thread with each delivery's events (no thread of its own); ``unsubscribe`` ends it."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        raise NotImplementedError

    # -- opening ---------------------------------------------------------------------

    def open(
        self,
        key: str,
        input: Any = None,
        *,
        priority: int = 0,
        retry: int = 0,
        tags: Iterable[str] = (),
        handler: str | None = None,
        run_at: When | None = None,
        delay: float | None = None,
        unique: str | None = None,
        timeout: float | None = None,
        backoff: Backoff | None = None,
    ) -> Task:
        """Open (or re-open) a task; returns it as stored.

        ``run_at`` (aware datetime or µs) or ``delay`` (seconds) hold it back;
        with ``unique``, while another task with that uniqueness key is todo or
        nextup, that task is returned instead and nothing is opened.
        """
        if unique is not None:
            check_name("unique", unique)
            holder = self.store.active_with_unique(unique)
            if holder is not None:
                return holder
        [event] = self._open_events(
            [(key, input)], priority, retry, tags, handler, run_at, delay, unique, timeout, backoff
        )
        if event.task is None and unique is not None and "unique key" in (event.error or ""):
            holder = self.store.active_with_unique(unique)  # lost a race to another open
            if holder is not None:
                return holder
        return _task_of(event)

    def open_many(
        self,
        items: Iterable[tuple[str, Any]],
        *,
        priority: int = 0,
        retry: int = 0,
        tags: Iterable[str] = (),
        handler: str | None = None,
        run_at: When | None = None,
        delay: float | None = None,
        timeout: float | None = None,
        backoff: Backoff | None = None,
    ) -> list[Task]:
        """Open many tasks with the same options in one store transaction."""
        events = self._open_events(
            items, priority, retry, tags, handler, run_at, delay, None, timeout, backoff
        )
        return [_task_of(event) for event in events]

    def _open_events(
        self,
        items: Iterable[tuple[str, Any]],
        priority: int,
        retry: int,
        tags: Iterable[str],
        handler: str | None,
        run_at: When | None,
        delay: float | None,
        unique: str | None,
        timeout: float | None,
        backoff: Backoff | None,
    ) -> list[TaskEvent]:
        check_int("priority", priority)
        check_int("retry", retry, 0)
        check_backoff(backoff)
        all_tags = frozenset([check_name("tag", t) for t in tags]) if tags else _NO_TAGS
        if handler is not None:
            default_timeout, default_backoff = self._handler_defaults(handler)
            timeout = default_timeout if timeout is None else timeout
            backoff = default_backoff if backoff is None else backoff
            all_tags |= {handler}
        timeout = check_seconds("timeout", timeout)
        now = self.clock.now_us()
        not_before = self._not_before(now, run_at, delay)
        opens = [
            Open(
                check_name("task key", key),
                payload.encode(value, limit=self.max_payload, what=f"input of {key!r}"),
                cat=now,
                priority=priority,
                retry=retry,
                tags=all_tags,
                run_at=not_before,
                unique=unique,
                timeout=timeout,
                backoff=backoff,
            )
            for key, value in items
        ]
        events = self.engine.apply(opens)
        self._tick_soon()
        return events

    @staticmethod
    def _not_before(now: int, run_at: When | None, delay: float | None) -> int | None:
        if run_at is not None and delay is not None:
            raise ConfigError("give run_at or delay, not both")
        if delay is not None:
            if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
                raise ConfigError(f"delay must be a number of seconds >= 0, got {delay!r}")
            return now + seconds_to_us(delay)
        return None if run_at is None else to_us("run_at", run_at)

    # -- reading -------------------------------------------------------------------

    def get(self, key: str) -> Task | None:
        return self.store.get(key)

    def wait(self, key: str, timeout: float = 30.0) -> Task:
        """Block until the task is final (done, canceled, or failed with no retries left)."""
        arrived = threading.Event()

        def watch(events: Sequence[object]) -> None:
            for event in events:
                if (
                    isinstance(event, TaskEvent)
                    and event.key == key
                    and event.task is not None
                    and is_final(event.task)
                ):
                    arrived.set()

        number = self._watch(watch) if self.running else None
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

    # -- changing --------------------------------------------------------------------

    def update(
        self,
        key: str,
        *,
        input: Any = KEEP,
        priority: Any = KEEP,
        tags: Any = KEEP,
        run_at: Any = KEEP,
    ) -> Task:
        """Change a todo task; refused (TransitionError) in any other status."""
        changes: dict[str, Any] = {}
        if input is not KEEP:
            changes["input"] = payload.encode(
                input, limit=self.max_payload, what=f"input of {key!r}"
            )
        if priority is not KEEP:
            changes["priority"] = check_int("priority", priority)
        if tags is not KEEP:
            changes["tags"] = frozenset(check_name("tag", t) for t in tags)
        if run_at is not KEEP:
            changes["run_at"] = None if run_at is None else to_us("run_at", run_at)
        task = self._apply_one(Update(key, **changes))
        self._tick_soon()
        return task

    def cancel(self, key: str, reason: str = "canceled") -> Task:
        """Cancel a todo task at once, or a nextup one cooperatively (its instance is told)."""
        task = self._apply_one(Cancel(key, reason))
        self._tick_soon()
        return task

    def retry(self, key: str, retries: int = 0) -> Task:
        """Run a failed or canceled task again, with ``retries`` automatic restarts left."""
        task = self._apply_one(Retry(key, check_int("retries", retries, 0)))
        self._tick_soon()
        return task

    def delete(self, key: str) -> None:
        """Remove a done, failed or canceled task; refused for todo and nextup tasks."""
        if self.store.delete_if([key], lambda task: task.status in DELETABLE):
            return
        task = self.store.get(key)
        if task is None:
            raise TaskNotFound(f"no task {key!r}")
        raise TransitionError("delete", key, "done, failed or canceled", task.status.value)

    def _apply_one(self, transition: Transition) -> Task:
        [event] = self.engine.apply([transition])
        if event.task is None:
            if event.error and "found no task" in event.error:
                raise TaskNotFound(f"no task {transition.key!r}")
            raise TransitionError.from_message(
                transition.name, transition.key, event.error or "refused"
            )
        return event.task


def _task_of(event: TaskEvent) -> Task:
    if event.task is None:
        raise RiaktqError(event.error or f"{event.transition} {event.key!r} failed")
    return event.task
