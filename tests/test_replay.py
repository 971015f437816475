"""Replay from a log position: the log, then live events, no gap, no duplicate, resumable."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pykka
import pytest

from riaktq_py import Riaktq, payload
from riaktq_py.actors.event_manager import EventManager
from riaktq_py.engine import Engine
from riaktq_py.errors import ConfigError
from riaktq_py.events import TaskEvent
from riaktq_py.observer.replay import (
    Replay,
    follow_log,
    load_cursor,
    read_log,
    subscribe_from,
)
from riaktq_py.store import Store
from riaktq_py.testing import EventCapture, FakeClock, run_tick
from riaktq_py.transitions import Open

T = 10.0


def _open(key: str) -> Open:
    return Open(key, payload.encode(key), cat=1)


def _positions(events: list[Any]) -> list[int]:
    return [e.position for e in events]


def _settle(events: pykka.ActorRef[EventManager], replay: pykka.ActorRef[Replay]) -> int:
    """Wait until every event published so far went through the manager and the replay."""
    events.proxy().subscribers().get(timeout=T)  # the manager's inbox is in order
    position: int = replay.proxy().position().get(timeout=T)
    return position


@pytest.fixture
def task_events() -> pykka.ActorRef[EventManager]:
    return EventManager.start("task-events")


def test_replay_while_tasks_are_opened_concurrently_has_no_gap_and_no_duplicate(
    store: Store, task_events: pykka.ActorRef[EventManager]
) -> None:
    """Two writer threads open tasks while a subscriber replays from a position."""
    engine = Engine(store, FakeClock(), task_events.proxy())
    before = engine.apply([_open(f"before-{i:03}") for i in range(200)])
    start_position = before[49].position
    writing = [threading.Event(), threading.Event()]

    def writer(number: int) -> None:
        for i in range(150):
            engine.apply([_open(f"w{number}-{i:03}")])
            if i == 20:
                writing[number].set()

    threads = [threading.Thread(target=writer, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    assert all(flag.wait(T) for flag in writing)  # the seam falls while both are writing
    capture = EventCapture()
    replay, _ = subscribe_from(task_events, store, capture, start_position, batch_size=17)
    for thread in threads:
        thread.join(T)
    last = _settle(task_events, replay)
    expected = _positions(list(read_log(store, start_position)))
    assert len(expected) == 150 + 300
    assert last == expected[-1]
    assert _positions(capture.events) == expected
    delivered_keys = [e.key for e in capture.events]
    assert len(set(delivered_keys)) == len(delivered_keys) == 450


def test_live_events_ahead_of_the_replay_are_filled_in_from_the_log(
    store: Store, task_events: pykka.ActorRef[EventManager]
) -> None:
    """A live event two ahead makes the replay read the one between; a late one is dropped."""
    engine = Engine(store, FakeClock())  # publishes nothing: the test sends live events by hand
    first, second, third = engine.apply([_open("a"), _open("b"), _open("c")])
    capture = EventCapture()
    replay = Replay.start(store, capture, first.position)
    replay.tell(third)  # out of order: 'second' was published later
    replay.tell(second)
    replay.tell(third)
    assert replay.proxy().position().get(timeout=T) == third.position
    assert [e.key for e in capture.events] == ["b", "c"]
    assert capture.events[0] == second


class LaggingLog:
    """Makes a store's log readable only up to a ``committed`` position (like Riak's)."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch, committed: int) -> None:
        self.committed = committed
        real = store.events_after

        def events_after(position: int, limit: int) -> list[TaskEvent]:
            return [e for e in real(position, limit) if e.position <= self.committed]

        monkeypatch.setattr(store, "events_after", events_after)


def test_an_event_ahead_of_a_lagging_log_waits_for_the_one_before_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """c arrives live before b, and the log does not show b yet: c waits, then b, c."""
    a, b, c = Engine(store, FakeClock()).apply([_open("a"), _open("b"), _open("c")])
    LaggingLog(store, monkeypatch, committed=a.position)
    capture = EventCapture()
    replay = Replay.start(store, capture, 0)
    replay.proxy().catch_up().get(timeout=T)
    replay.tell(c)
    assert replay.proxy().position().get(timeout=T) == a.position  # c is held
    replay.tell(b)
    assert replay.proxy().position().get(timeout=T) == c.position
    assert [e.key for e in capture.events] == ["a", "b", "c"]


def test_a_held_event_is_released_when_the_log_catches_up(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no more live events, the replay re-reads the log until it shows the hole filled."""
    a, _, c = Engine(store, FakeClock()).apply([_open("a"), _open("b"), _open("c")])
    log = LaggingLog(store, monkeypatch, committed=a.position)
    capture = EventCapture()
    replay = Replay.start(store, capture, 0)
    replay.tell(c)
    capture.wait_for(lambda e: e.key == "a")
    log.committed = c.position  # the writer of b finished
    capture.wait_for(lambda e: e.key == "c")
    assert [e.key for e in capture.events] == ["a", "b", "c"]
    assert replay.proxy().position().get(timeout=T) == c.position


def test_a_hole_the_log_never_fills_is_given_up_after_max_hold(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A position the log never shows does not block delivery forever."""
    a, _, c = Engine(store, FakeClock()).apply([_open("a"), _open("b"), _open("c")])
    LaggingLog(store, monkeypatch, committed=a.position)
    capture = EventCapture()
    replay = Replay.start(store, capture, 0, max_hold=0)
    replay.tell(c)
    capture.wait_for(lambda e: e.key == "c")
    assert [e.key for e in capture.events] == ["a", "c"]
    with pytest.raises(ConfigError, match="max_hold must be >= 0 seconds"):
        Replay(store, print, 0, max_hold=-1)


def test_a_subscriber_that_was_down_resumes_from_its_last_position(
    store: Store, task_events: pykka.ActorRef[EventManager]
) -> None:
    """Persist the last position, stop; subscribe again from it: exactly the missed events."""
    engine = Engine(store, FakeClock(), task_events.proxy())
    engine.apply([_open(f"a{i}") for i in range(5)])
    capture = EventCapture()
    replay, number = subscribe_from(task_events, store, capture, 0)
    engine.apply([_open("b0")])
    saved = _settle(task_events, replay)
    assert saved == capture.events[-1].position
    assert [e.key for e in capture.events] == ["a0", "a1", "a2", "a3", "a4", "b0"]
    task_events.proxy().unsubscribe(number).get(timeout=T)
    replay.stop()

    engine.apply([_open("c0"), _open("c1")])  # while the subscriber is down
    again = EventCapture()
    replay, _ = subscribe_from(task_events, store, again, saved)
    engine.apply([_open("d0")])
    _settle(task_events, replay)
    assert [e.key for e in again.events] == ["c0", "c1", "d0"]


def test_a_cursor_keeps_the_position_in_the_store(
    store: Store, task_events: pykka.ActorRef[EventManager]
) -> None:
    """With a cursor name, the position is persisted and the next replay starts after it."""
    engine = Engine(store, FakeClock(), task_events.proxy())
    engine.apply([_open("a"), _open("b")])
    first = EventCapture()
    replay, number = subscribe_from(task_events, store, first, cursor="audit")
    last = _settle(task_events, replay)
    assert load_cursor(store, "audit") == last
    task_events.proxy().unsubscribe(number).get(timeout=T)
    replay.stop()
    engine.apply([_open("c")])
    second = EventCapture()
    replay, _ = subscribe_from(task_events, store, second, cursor="audit")
    _settle(task_events, replay)
    assert [e.key for e in first.events] == ["a", "b"]
    assert [e.key for e in second.events] == ["c"]


def test_a_cursor_is_written_only_when_the_position_moves(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live event that delivers nothing (already read from the log) writes no cursor."""
    a, b = Engine(store, FakeClock()).apply([_open("a"), _open("b")])
    writes: list[str] = []
    real = store.set_meta

    def set_meta(name: str, value: bytes) -> None:
        writes.append(name)
        real(name, value)

    monkeypatch.setattr(store, "set_meta", set_meta)
    capture = EventCapture()
    replay = Replay.start(store, capture, cursor="audit")
    assert replay.proxy().catch_up().get(timeout=T) == b.position
    replay.tell(a)  # duplicates of what the log gave
    replay.tell(b)
    assert replay.proxy().catch_up().get(timeout=T) == b.position
    replay.stop()
    assert writes == ["cursor:audit"] and load_cursor(store, "audit") == b.position
    assert [e.key for e in capture.events] == ["a", "b"]


def test_a_failing_subscriber_stops_its_replay(
    store: Store, task_events: pykka.ActorRef[EventManager]
) -> None:
    """A subscriber that raises gets nothing more; the replay actor stops."""
    engine = Engine(store, FakeClock(), task_events.proxy())
    engine.apply([_open(f"k{i}") for i in range(5)])
    seen: list[str] = []

    def fragile(event: TaskEvent) -> None:
        seen.append(event.key)
        if event.key == "k2":
            raise RuntimeError("subscriber bug")

    replay, _ = subscribe_from(task_events, store, fragile, 0, batch_size=2)
    replay.actor_stopped.wait(T)
    assert seen == ["k0", "k1", "k2"]
    assert not replay.is_alive()


def test_bad_replay_options_are_named(store: Store) -> None:
    """A negative position, a non-subscriber or an empty cursor is a ConfigError."""
    with pytest.raises(ConfigError, match="from_position must be an integer >= 0"):
        Replay(store, print, -1)
    with pytest.raises(ConfigError, match="a subscriber is a callable"):
        Replay(store, "nope", 0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cursor must be a non-empty name"):
        Replay(store, print, cursor="")


def test_follow_log_reads_the_log_then_new_entries_until_stopped(store: Store) -> None:
    """The CLI's follower: recorded entries first, then new ones as they are written."""
    engine = Engine(store, FakeClock())
    engine.apply([_open("a"), _open("b")])
    capture = EventCapture()
    stop = threading.Event()

    def follow() -> None:
        for event in follow_log(store, 0, stop, poll_interval=0.01, batch_size=1):
            capture(event)

    thread = threading.Thread(target=follow)
    thread.start()
    capture.wait_count(lambda e: True, 2)
    engine.apply([_open("c")])
    capture.wait_count(lambda e: True, 3)
    stop.set()
    thread.join(T)
    assert not thread.is_alive()
    assert [e.key for e in capture.events] == ["a", "b", "c"]


def test_riaktq_subscribe_from_a_position_end_to_end(store: Store) -> None:
    """Riaktq.subscribe(from_position=0) gets the opens from the log, then the live run."""
    tq = Riaktq(store, clock=FakeClock(), interval=None, debounce=None)
    tq.add_handler("echo", lambda value: value)
    opened = [tq.open(f"k{i}", i, handler="echo") for i in range(3)]
    assert all(t.status.value == "todo" for t in opened)
    capture = EventCapture()
    with tq:
        number = tq.subscribe(capture, from_position=0)
        capture.wait_count(lambda e: e.transition == "open", 3)
        run_tick(tq)
        capture.wait_count(lambda e: e.transition == "assign", 1)
        positions = _positions(capture.events)
        assert positions == sorted(set(positions))
        assert tq.unsubscribe(number) is True
    assert [e.key for e in capture.events[:3]] == ["k0", "k1", "k2"]
    expected = [dataclasses.replace(e, task=None) for e in read_log(store, 0)]
    delivered = [dataclasses.replace(e, task=None) for e in capture.events]
    assert delivered == expected[: len(delivered)]
