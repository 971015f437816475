"""The event manager (SPEC A4): broadcasts events to subscribers, asynchronously.

Subscribers are callables or pykka actors. Each callable gets its own small
actor, so a slow subscriber delays nobody else, and each receives every event
in publication order. A subscriber that raises, or an actor that died, is
logged and removed; publishing never blocks or fails for the publisher.
The same manager serves task events and the observer's query results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import itertools
import threading
import time
import types
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from riaktq_py.actors.alarm import Alarm
from riaktq_py.log import get_logger

Subscriber = Callable[[Any], object] | pykka.ActorRef[Any]


class _Deliver(pykka.ThreadingActor):
    """Runs one callable subscriber on its own thread."""

    def __init__(
        self,
        number: int,
        callback: Callable[[Any], object],
        manager: pykka.ActorRef[Any],
        batch: bool = False,
    ):
        super().__init__()
        self.number = number
        self.callback = callback
        self._call = direct_call(callback)
        self.manager = manager
        #: call the callback once per delivery with the list of its events
        self.batch = batch
        self.failed = False

    def on_receive(self, message: Any) -> None:
        if self.failed:
            return  # removed: drop what was queued before the removal
        try:
            events = message.events if isinstance(message, _Batch) else (message,)
            call = self._call
            if self.batch:
                call(list(events))
                return
            for event in events:
                call(event)
        except Exception as exc:
            self.failed = True
            get_logger(subscriber=repr(self.callback)).warning(
                "subscriber failed; removed", error=f"{type(exc).__name__}: {exc}"
            )
            self.manager.tell(_Remove(self.number))


def direct_call(callback: Callable[[Any], object]) -> Callable[[Any], object]:
    """``callback``, or its class's Python ``__call__`` bound to it: the same call.

    Calling an object whose class defines ``__call__`` in Python goes through a
    slot wrapper, about 45 ns more per call than the bound method (27 ms of CPU
    over the 600k calls of ten subscribers in a 20k-task throughput run).
    """
    call = inspect.getattr_static(type(callback), "__call__", None)
    if isinstance(call, types.FunctionType):
        return types.MethodType(call, callback)
    return callback


@dataclasses.dataclass(frozen=True, slots=True)
class _Batch:
    """Events for a callable subscriber, in one message."""

    events: Sequence[Any]


class _Flush:
    pass


class _Remove:
    def __init__(self, number: int) -> None:
        self.number = number


class Outbox:
    """Where an engine publishes, from any thread, without a message per publication.

    Events are queued under a lock (the publisher's order is kept) and the
    manager is woken once until it drains them; with no subscriber at all,
    publishing costs nothing and wakes nobody.
    """

    def __init__(self, ref: pykka.ActorRef[Any]) -> None:
        self._ref = ref
        self._lock = threading.Lock()
        self._events: list[Any] = []
        self._woken = False
        #: set by the manager: whether anybody would receive an event
        self.listening = False

    def publish(self, events: Sequence[Any]) -> None:
        if not self.listening or not events:
            return
        with self._lock:
            self._events.extend(events)
            if self._woken:
                return
            self._woken = True
        with contextlib.suppress(pykka.ActorDeadError):
            self._ref.tell(_Drain())

    def take(self) -> list[Any]:
        """Everything published so far (the manager's flush); the next publication wakes it."""
        with self._lock:
            events, self._events, self._woken = self._events, [], False
        return events


class _Drain:
    pass


#: after a flush of fewer events than this, the next goes out at once (light load: no
#: added latency); after one of at least ``BUSY_BATCH``, it waits the busy gap
#: (:func:`busy_gap_for`); else ``window``
LIGHT_BATCH = 4
BUSY_BATCH = 32
#: under load, the threads of callable subscribers are woken about this many times a
#: second in all, at most: the busy gap grows with their number (ten: 50 ms) ...
WAKEUPS_PER_SECOND = 200
#: ... up to this
MAX_BUSY_GAP = 0.25


def busy_gap_for(busy_window: float, threads: int) -> float:
    """How long the next flush waits after a busy one, with ``threads`` subscriber threads.

    Each flush wakes every callable subscriber's thread: about 60 µs of CPU each
    here, plus the GIL hand-offs it forces on the threads publishing. Past
    ``busy_window`` (0: never wait), the gap keeps the wake-ups near
    ``WAKEUPS_PER_SECOND``, up to ``MAX_BUSY_GAP``.
    """
    if busy_window <= 0:
        return 0.0
    return max(busy_window, min(MAX_BUSY_GAP, threads / WAKEUPS_PER_SECOND))


class EventManager(pykka.ThreadingActor):
    """Keeps subscribers and gives each every published event, in order."""

    def __init__(
        self, name: str = "events", window: float = 0.005, busy_window: float = 0.02
    ) -> None:
        super().__init__()
        self.name = name
        #: under load, publications within this many seconds go out as one batch (5 ms);
        #: an idle or lightly loaded manager sends at once (no added latency)
        self.window = window
        #: after a batch of at least ``BUSY_BATCH`` events, the next waits at least this
        #: long (20 ms; longer with many callable subscribers: ``busy_gap``)
        self.busy_window = max(window, busy_window)
        #: the wait after a busy batch now (:func:`busy_gap_for` its callable subscribers)
        self.busy_gap = self.busy_window
        self._gap = window  # the wait after the last flush: 0, window, or the busy gap
        self._last_flush = 0.0
        self._alarm: Alarm | None = None
        self._numbers = itertools.count(1)
        self._subscribers: dict[int, pykka.ActorRef[Any]] = {}
        self._owned: set[int] = set()
        #: quick callbacks of the library's, called on this thread (see ``watch``)
        self._inline: dict[int, Callable[[Sequence[Any]], object]] = {}
        self._pending: list[Any] = []
        self._flush_asked = False
        self._log = get_logger(manager=name)
        #: publish here from any thread (the engine does): cheaper than ``publish`` messages
        self.outbox = Outbox(self.actor_ref)

    def subscribe(self, subscriber: Subscriber, batch: bool = False) -> int:
        """Add a subscriber; returns the number that unsubscribes it.

        ``batch=True`` (callables only): the callable gets a list of events per
        delivery, in order, instead of one call per event.
        """
        self._flush()  # what was published before belongs to the earlier subscribers
        number = next(self._numbers)
        if isinstance(subscriber, pykka.ActorRef):
            if batch:
                raise TypeError("batch=True takes a callable subscriber, not an actor")
            self._subscribers[number] = subscriber
        elif callable(subscriber):
            self._subscribers[number] = _Deliver.start(number, subscriber, self.actor_ref, batch)
            self._owned.add(number)
            self.busy_gap = busy_gap_for(self.busy_window, len(self._owned))
        else:
            raise TypeError(f"a subscriber is a callable or a pykka ActorRef, not {subscriber!r}")
        self.outbox.listening = True
        return number

    def watch(self, callback: Callable[[Sequence[Any]], object]) -> int:
        """Add an inline subscriber: ``callback`` gets the events of each delivery, in
        order, on the manager's own thread; returns the number that unsubscribes it.

        For the library's own quick, non-blocking callbacks (``Riaktq.wait``): no thread
        is started for them. One that raises is removed.
        """
        self._flush()
        number = next(self._numbers)
        self._inline[number] = callback
        self.outbox.listening = True
        return number

    def unsubscribe(self, number: int) -> bool:
        """Remove a subscriber; ``True`` if it was subscribed."""
        self._flush()
        ref = self._subscribers.pop(number, None)
        watched = self._inline.pop(number, None) is not None
        self.outbox.listening = bool(self._subscribers or self._inline)
        if watched:
            return True
        if ref is not None and number in self._owned:
            self._owned.discard(number)
            self.busy_gap = busy_gap_for(self.busy_window, len(self._owned))
            ref.stop(block=False)
        return ref is not None

    def subscribers(self) -> int:
        """How many subscribers; also a barrier: what was published before is sent on."""
        self._flush()
        return len(self._subscribers) + len(self._inline)

    def publish(self, events: Sequence[Any]) -> None:
        """Send every event to every subscriber (never raises for a subscriber).

        Publications that queue up while the manager is busy are sent on as one
        batch per subscriber (same order), so a burst costs each subscriber one
        message, not one per publication. (An engine publishes through
        :attr:`outbox` instead: one stream of events, one of the two ways.)
        """
        self._pending.extend(events)
        self._flush_soon()

    def _flush_soon(self) -> None:
        if self._flush_asked:
            return  # a flush is already on its way
        due = self._last_flush + self._gap
        if self.actor_inbox.empty() and time.monotonic() >= due:
            self._flush()
            return
        self._flush_asked = True
        if self._alarm is None or not self.actor_inbox.empty():
            self.actor_ref.tell(_Flush())  # after what is queued now, at the latest
        else:
            self._alarm.at(due, _Flush())

    def _flush(self) -> None:
        self._pending.extend(self.outbox.take())
        if not self._pending:
            return
        self._last_flush = time.monotonic()
        pending = len(self._pending)
        self._gap = 0.0 if pending < LIGHT_BATCH else self.window
        if pending >= BUSY_BATCH:
            self._gap = self.busy_gap
        events, self._pending = self._pending, []
        batch = _Batch(tuple(events))
        for number, callback in list(self._inline.items()):
            try:
                callback(batch.events)
            except Exception as exc:
                self._log.warning(
                    "inline subscriber failed; removed",
                    subscriber=repr(callback),
                    error=f"{type(exc).__name__}: {exc}",
                )
                del self._inline[number]  # not unsubscribe: it would flush again mid-delivery
                self.outbox.listening = bool(self._subscribers or self._inline)
        for number, ref in list(self._subscribers.items()):
            try:
                if number in self._owned:
                    ref.tell(batch)
                else:  # an actor of the user's: one message per event
                    for event in events:
                        ref.tell(event)
            except pykka.ActorDeadError:
                self._log.warning("subscriber actor is dead; removed", subscriber=number)
                self.unsubscribe(number)

    def on_receive(self, message: Any) -> None:
        if isinstance(message, _Drain):
            self._flush_soon()  # the outbox stays quiet until the flush takes its events
            return
        if isinstance(message, _Remove):
            self.unsubscribe(message.number)
        elif isinstance(message, _Flush):
            self._flush_asked = False
        self._flush()

    def on_start(self) -> None:
        if self.busy_window > 0:
            self._alarm = Alarm(self.actor_ref, "riaktq-events-flush")

    def on_stop(self) -> None:
        if self._alarm is not None:
            self._alarm.stop()
        self._flush()
        self._inline.clear()
        for number in list(self._owned):
            self.unsubscribe(number)
