"""Subscribe from a position: the recorded log first, then live events, no gap, no duplicate.

The store's log is the durable path; the task event manager is the live one.
A :class:`Replay` actor joins them for one subscriber:

1. it is subscribed to the event manager *before* it reads anything, so every
   event committed from then on reaches it live;
2. it reads the log after the start position, in batches, and delivers it;
3. a live event is delivered when its position is the next one expected; when
   it is further ahead (live events of concurrent writers may arrive out of
   order, or the log has more the replay has not read yet) the log is read
   first, and the event waits (held by position) until the positions before
   it have been delivered, from the log or live; an event at or below the last
   delivered position is a duplicate and dropped.

A held event waits for a log whose readers lag behind its writers (Riak's log
is read up to its ``committed`` mark): the replay re-reads the log on a short
timer while it holds events, and after ``max_hold`` seconds delivers them in
order anyway (logging the positions it never saw).

Every delivered :class:`~riaktq_py.events.TaskEvent` carries its ``position``;
:meth:`Replay.position` gives the last one delivered. Persist it (or give the
replay a ``cursor`` name, and it persists it in the store's meta after each
message) and subscribe again from it after a restart: delivery resumes after
it. A subscriber that handled an event but died before its position was
stored sees that event again: delivery is at least once.

Events whose position is 0 come from a store that keeps no log; they are
passed through as they come.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pykka

from riaktq_py import payload
from riaktq_py.actors.event_manager import Subscriber
from riaktq_py.errors import ConfigError
from riaktq_py.events import TaskEvent
from riaktq_py.log import get_logger
from riaktq_py.store.base import Store

CURSOR_PREFIX = "cursor:"


def read_log(store: Store, after: int, batch_size: int = 1000) -> Iterator[TaskEvent]:
    """Every logged event with a position above ``after``, in order, in batches."""
    while True:
        batch = store.events_after(after, batch_size)
        yield from batch
        if len(batch) < batch_size:
            return
        after = batch[-1].position


def follow_log(
    store: Store,
    after: int,
    stop: threading.Event,
    *,
    poll_interval: float = 0.5,
    batch_size: int = 1000,
) -> Iterator[TaskEvent]:
    """The log after ``after``, then new entries as they are recorded, until ``stop`` is set.

    For processes that do not run the queue (the CLI): it polls the store.
    """
    while True:
        for event in read_log(store, after, batch_size):
            after = event.position
            yield event
        if stop.wait(poll_interval):
            return


def load_cursor(store: Store, name: str) -> int | None:
    raw = store.get_meta(CURSOR_PREFIX + name)
    if raw is None:
        return None
    position = payload.decode(raw, what=f"cursor {name!r}")
    if isinstance(position, bool) or not isinstance(position, int):
        raise ConfigError(f"cursor {name!r} holds {position!r}, not a log position")
    return position


def save_cursor(store: Store, name: str, position: int) -> None:
    store.set_meta(CURSOR_PREFIX + name, payload.encode(position, what="cursor"))


class _CatchUp:
    """Read the whole log after the last delivered position."""


class Replay(pykka.ThreadingActor):
    """Delivers the log after ``from_position``, then live events, to one subscriber.

    Subscribe this actor's ref to the task event manager, then send it
    :meth:`catch_up` (:func:`subscribe_from` does both). With ``cursor`` and no
    ``from_position``, it starts after the position stored under that name
    (the beginning of the log if none).
    """

    def __init__(
        self,
        store: Store,
        subscriber: Subscriber,
        from_position: int | None = None,
        *,
        cursor: str | None = None,
        batch_size: int = 1000,
        max_hold: float = 5.0,
    ) -> None:
        super().__init__()
        if not (isinstance(subscriber, pykka.ActorRef) or callable(subscriber)):
            raise ConfigError(f"a subscriber is a callable or a pykka ActorRef, not {subscriber!r}")
        if from_position is not None and (
            isinstance(from_position, bool)
            or not isinstance(from_position, int)
            or from_position < 0
        ):
            raise ConfigError(f"from_position must be an integer >= 0, got {from_position!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if isinstance(max_hold, bool) or not isinstance(max_hold, int | float) or max_hold < 0:
            raise ConfigError(f"max_hold must be >= 0 seconds, got {max_hold!r}")
        if cursor is not None and (not isinstance(cursor, str) or not cursor):
            raise ConfigError(f"cursor must be a non-empty name, got {cursor!r}")
        self.store = store
        self.subscriber = subscriber
        self.cursor = cursor
        self.batch_size = batch_size
        #: the position last stored under the cursor (None: not stored by this replay yet)
        self._saved: int | None = None
        if from_position is None:
            self._saved = load_cursor(store, cursor) if cursor else None
            from_position = self._saved or 0
        self._position = from_position
        self._failed = False
        self.max_hold = max_hold
        self._held: dict[int, TaskEvent] = {}
        self._held_since: float | None = None
        self._retry: threading.Timer | None = None
        self._log = get_logger(component="replay", cursor=cursor)

    # -- API ------------------------------------------------------------------------

    def position(self) -> int:
        """The position of the last event delivered (the start position before any)."""
        return self._position

    def catch_up(self) -> int:
        """Deliver every logged event after the last delivered one; the new position."""
        self._read_log()
        self._release()
        self._save()
        return self._position

    def on_stop(self) -> None:
        if self._retry is not None:
            self._retry.cancel()

    # -- messages -------------------------------------------------------------------

    def on_receive(self, message: Any) -> None:
        if isinstance(message, _CatchUp):
            self._retry = None
            self.catch_up()
        elif isinstance(message, TaskEvent):
            self._live(message)
            self._save()

    def _live(self, event: TaskEvent) -> None:
        if event.position == 0:
            self._deliver(event)
            return
        if event.position <= self._position:
            return  # already delivered from the log
        if event.position == self._position + 1:
            self._deliver(event)
        else:
            self._held[event.position] = event
            self._read_log()
        self._release()

    def _read_log(self) -> None:
        if self._failed:
            return
        for event in read_log(self.store, self._position, self.batch_size):
            self._deliver(event)
            if self._failed:
                return

    def _release(self) -> None:
        """Deliver held events that are next in line; keep the others (re-read soon)."""
        for position in [p for p in self._held if p <= self._position]:
            del self._held[position]
        while self._position + 1 in self._held:
            self._deliver(self._held.pop(self._position + 1))
        if not self._held:
            self._held_since = None
            return
        now = time.monotonic()
        if self._held_since is None:
            self._held_since = now
        elif now - self._held_since >= self.max_hold:
            self._log.warning(
                "positions never seen in the log; delivering what came live",
                after=self._position,
                held=sorted(self._held),
            )
            for position in sorted(self._held):
                self._deliver(self._held.pop(position))
            self._held_since = None
            return
        if self._retry is None and not self._failed:
            self._retry = threading.Timer(0.02, self._ask_catch_up)
            self._retry.daemon = True
            self._retry.start()

    def _ask_catch_up(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(_CatchUp())

    def _deliver(self, event: TaskEvent) -> None:
        if self._failed:
            return  # stopping: drop what was queued before the stop
        try:
            if isinstance(self.subscriber, pykka.ActorRef):
                self.subscriber.tell(event)
            else:
                self.subscriber(event)
        except Exception as exc:
            self._log.warning(
                "replay subscriber failed; stopped",
                position=event.position,
                error=f"{type(exc).__name__}: {exc}",
            )
            self._failed = True
            self.stop()
            return
        if event.position:
            self._position = event.position

    def _save(self) -> None:
        """Store the position under the cursor, when it moved (a write transaction)."""
        if self.cursor is not None and not self._failed and self._position != self._saved:
            save_cursor(self.store, self.cursor, self._position)
            self._saved = self._position


def subscribe_from(
    events: pykka.ActorRef[Any],
    store: Store,
    subscriber: Subscriber,
    from_position: int | None = None,
    *,
    cursor: str | None = None,
    batch_size: int = 1000,
    timeout: float = 10.0,
) -> tuple[pykka.ActorRef[Replay], int]:
    """Start a :class:`Replay`, subscribe it live, then let it read the log.

    Returns its ref and its subscription number on ``events`` (an EventManager).
    Subscribing before reading is what closes the seam: nothing committed
    after the subscription can be missed, and the log covers what came before.
    """
    ref = Replay.start(store, subscriber, from_position, cursor=cursor, batch_size=batch_size)
    try:
        number: int = events.proxy().subscribe(ref).get(timeout=timeout)
    except BaseException:
        ref.stop(timeout=timeout)
        raise
    ref.tell(_CatchUp())
    return ref, number
