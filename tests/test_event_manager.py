"""The event manager: every subscriber gets every event in order; failures are contained."""

from __future__ import annotations

import contextlib
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest

from riaktq_py.actors.event_manager import (
    BUSY_BATCH,
    LIGHT_BATCH,
    MAX_BUSY_GAP,
    WAKEUPS_PER_SECOND,
    EventManager,
    Outbox,
    busy_gap_for,
    direct_call,
)
from riaktq_py.testing import EventCapture

T = 5.0


class Recorder(pykka.ThreadingActor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []
        self.done = threading.Event()

    def on_receive(self, message: Any) -> None:
        self.seen.append(message)
        if message == "last":
            self.done.set()


def test_callables_and_actors_receive_every_event_in_order() -> None:
    manager = EventManager.start().proxy()
    first, second = EventCapture(), EventCapture()
    manager.subscribe(first).get(timeout=T)
    manager.subscribe(second).get(timeout=T)
    recorder = Recorder.start()
    manager.subscribe(recorder).get(timeout=T)
    for batch in range(50):
        manager.publish([batch * 2, batch * 2 + 1])
    manager.publish(["last"])
    expected = [*range(100), "last"]
    for capture in (first, second):
        capture.wait_for(lambda e: e == "last", T)
        assert capture.events == expected
    proxy = recorder.proxy()
    assert proxy.done.get(timeout=T).wait(T)
    assert proxy.seen.get(timeout=T) == expected


def test_a_failing_subscriber_is_removed_and_others_go_on() -> None:
    manager = EventManager.start().proxy()
    good = EventCapture()
    calls: list[Any] = []

    def bad(event: Any) -> None:
        calls.append(event)
        raise ValueError("subscriber bug")

    manager.subscribe(bad).get(timeout=T)
    manager.subscribe(good).get(timeout=T)
    manager.publish([1, 2, 3])
    good.wait_for(lambda e: e == 3, T)
    manager.publish([4])
    good.wait_for(lambda e: e == 4, T)
    assert good.events == [1, 2, 3, 4]
    assert calls == [1]  # nothing delivered after its first failure
    # the removal reaches the manager as a message: wait for it, bounded
    deadline = time.monotonic() + T
    while manager.subscribers().get(timeout=T) != 1:
        assert time.monotonic() < deadline, "failing subscriber never removed"


def test_a_dead_actor_subscriber_is_removed_on_publish() -> None:
    manager = EventManager.start().proxy()
    recorder = Recorder.start()
    manager.subscribe(recorder).get(timeout=T)
    recorder.stop()
    manager.publish([1]).get(timeout=T)
    assert manager.subscribers().get(timeout=T) == 0


def test_unsubscribe_stops_delivery() -> None:
    manager = EventManager.start().proxy()
    capture, witness = EventCapture(), EventCapture()
    number = manager.subscribe(capture).get(timeout=T)
    manager.subscribe(witness).get(timeout=T)
    manager.publish([1]).get(timeout=T)
    assert manager.unsubscribe(number).get(timeout=T) is True
    assert manager.unsubscribe(number).get(timeout=T) is False
    manager.publish([2])
    witness.wait_for(lambda e: e == 2, T)
    capture.wait_for(lambda e: e == 1, T)
    assert capture.events == [1]


def test_a_callable_object_is_called_through_its_bound_dunder_call() -> None:
    capture = EventCapture()
    call = direct_call(capture)
    assert isinstance(call, types.MethodType)
    assert call.__self__ is capture
    assert call.__func__ is EventCapture.__call__
    call("event")
    assert capture.events == ["event"]

    def function(event: Any) -> None:
        pass

    class Sink:
        def take(self, event: Any) -> None:
            pass

    # functions, bound methods, builtins and classes are called as they are
    plain: list[Callable[[Any], object]] = [
        function,
        Sink().take,
        capture.events.append,
        str,
        print,
    ]
    for callback in plain:
        assert direct_call(callback) is callback


def test_an_inline_watch_gets_every_event_in_order_on_the_managers_thread() -> None:
    manager = EventManager.start().proxy()
    seen: list[Any] = []
    threads: set[str] = set()

    def watch(events: Any) -> None:
        threads.add(threading.current_thread().name)
        seen.extend(events)

    def broken(events: Any) -> None:
        raise ValueError("watch bug")

    witness = EventCapture()
    number = manager.watch(watch).get(timeout=T)
    manager.watch(broken).get(timeout=T)
    manager.subscribe(witness).get(timeout=T)
    assert manager.subscribers().get(timeout=T) == 3
    for batch in range(20):
        manager.publish([batch * 2, batch * 2 + 1])
    manager.publish(["last"])
    witness.wait_for(lambda e: e == "last", T)
    assert manager.subscribers().get(timeout=T) == 2  # the broken watch is gone ...
    assert seen == [*range(40), "last"]  # ... and the others got everything, in order
    assert witness.events == seen
    assert len(threads) == 1 and threads.pop().startswith("EventManager")
    assert manager.unsubscribe(number).get(timeout=T) is True
    manager.publish(["after"])
    witness.wait_for(lambda e: e == "after", T)
    assert seen[-1] == "last"


def test_a_subscriber_must_be_callable_or_an_actor() -> None:
    manager = EventManager.start().proxy()
    with pytest.raises(TypeError, match="callable or a pykka ActorRef"):
        manager.subscribe(42).get(timeout=T)


class CountingRef:
    """Stands in for an actor ref: counts the messages told."""

    def __init__(self) -> None:
        self.told: list[Any] = []

    def tell(self, message: Any) -> None:
        self.told.append(message)


def test_the_outbox_wakes_nobody_without_subscribers_and_once_until_drained() -> None:
    ref = CountingRef()
    outbox = Outbox(ref)  # type: ignore[arg-type]
    outbox.publish([1, 2])
    assert ref.told == [] and outbox.take() == []  # nobody listens: nothing kept, nobody woken
    outbox.listening = True
    for n in range(100):
        outbox.publish([n])
    assert len(ref.told) == 1  # one wake for a burst
    assert outbox.take() == list(range(100))
    outbox.publish(["next"])
    assert len(ref.told) == 2  # drained: the next publication wakes the manager again


def test_engine_events_through_the_outbox_reach_subscribers_in_order() -> None:
    ref = EventManager.start()
    manager = ref.proxy()
    outbox = manager.outbox.get(timeout=T)
    outbox.publish(["before"])  # no subscriber yet: dropped
    capture = EventCapture()
    manager.subscribe(capture).get(timeout=T)
    for i in range(500):  # while the manager drains on its own thread
        outbox.publish([i])
    outbox.publish(["last"])
    capture.wait_for(lambda e: e == "last", T)
    assert capture.events == [*range(500), "last"]
    ref.stop()


@contextlib.contextmanager
def _recorded_manager(
    window: float, busy_window: float
) -> Iterator[tuple[Any, Callable[[], list[Any]]]]:
    """A manager proxy with a Recorder subscribed, and a fresh look at what it saw."""
    ref = EventManager.start(window=window, busy_window=busy_window)
    recorder = Recorder.start()
    proxy = recorder.proxy()

    def seen() -> list[Any]:
        received: list[Any] = proxy.seen.get(timeout=T)
        return received

    try:
        manager = ref.proxy()
        manager.subscribe(recorder).get(timeout=T)
        yield manager, seen
    finally:
        ref.stop()
        recorder.stop()


def test_after_a_busy_batch_the_next_one_waits_the_busy_window() -> None:
    with _recorded_manager(window=0.0, busy_window=3600.0) as (manager, seen):
        manager.publish(["a", "b"]).get(timeout=T)  # idle: sent at once
        manager.publish(["c"]).get(timeout=T)  # a small batch before: at once again
        assert seen() == ["a", "b", "c"]
        manager.publish(list(range(BUSY_BATCH))).get(timeout=T)
        assert len(seen()) == 3 + BUSY_BATCH
        manager.publish(["late"]).get(timeout=T)  # after a busy batch: waits
        assert seen()[-1] == BUSY_BATCH - 1
        manager.subscribers().get(timeout=T)  # a barrier sends on what waits
        assert seen()[-1] == "late"


def test_the_busy_gap_grows_with_the_callable_subscribers_threads() -> None:
    assert busy_gap_for(0.02, 1) == 0.02
    assert busy_gap_for(0.02, 10) == 10 / WAKEUPS_PER_SECOND == 0.05
    assert busy_gap_for(0.02, 10_000) == MAX_BUSY_GAP
    assert busy_gap_for(3600.0, 10) == 3600.0  # never below the busy window
    assert busy_gap_for(0.0, 10) == 0.0  # no busy window: never waits
    ref = EventManager.start(window=0.005, busy_window=0.02)
    recorder = Recorder.start()
    try:
        manager = ref.proxy()
        numbers = [manager.subscribe(EventCapture()).get(timeout=T) for _ in range(10)]
        manager.subscribe(recorder).get(timeout=T)  # an actor: no thread of the manager's
        assert manager.busy_gap.get(timeout=T) == 0.05
        for number in numbers[:6]:
            manager.unsubscribe(number).get(timeout=T)
        assert manager.busy_gap.get(timeout=T) == 0.02
    finally:
        ref.stop()
        recorder.stop()


def test_light_load_goes_out_at_once_and_moderate_load_waits_the_window() -> None:
    with _recorded_manager(window=3600.0, busy_window=3600.0) as (manager, seen):
        manager.publish(["a"]).get(timeout=T)
        manager.publish(["b"]).get(timeout=T)  # after a light batch: at once, no window
        manager.publish(list(range(LIGHT_BATCH))).get(timeout=T)  # still at once
        assert seen() == ["a", "b", *range(LIGHT_BATCH)]
        manager.publish(["c"]).get(timeout=T)  # after a batch of LIGHT_BATCH: waits
        assert seen()[-1] == LIGHT_BATCH - 1
        manager.subscribers().get(timeout=T)
        assert seen()[-1] == "c"


def test_a_batch_subscriber_gets_lists_of_every_event_in_order() -> None:
    ref = EventManager.start()
    manager = ref.proxy()
    batches: list[list[Any]] = []
    got_last = threading.Event()

    def take(events: list[Any]) -> None:
        batches.append(events)
        if events[-1] == "last":
            got_last.set()

    manager.subscribe(take, batch=True).get(timeout=T)
    for n in range(50):
        manager.publish([n * 2, n * 2 + 1])
    manager.publish(["last"])
    assert got_last.wait(T)
    assert all(isinstance(b, list) and b for b in batches)
    assert [e for b in batches for e in b] == [*range(100), "last"]
    with pytest.raises(TypeError, match="batch=True takes a callable"):
        manager.subscribe(Recorder.start(), batch=True).get(timeout=T)
    ref.stop()
