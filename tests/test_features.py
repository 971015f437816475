"""Issue 5: delays, backoff, manual retry, aging, update, cancel, delete, unique, timeouts."""

from __future__ import annotations

import datetime
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from riaktq_py import (
    Aging,
    Backoff,
    ConfigError,
    Riaktq,
    SqliteStore,
    Status,
    Store,
    TaskNotFound,
    TransitionError,
)
from riaktq_py.task import Outcome
from riaktq_py.testing import EventCapture, FakeClock, Gate, drive, run_tick

T = 10.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _queue(store: Store, clock: FakeClock, **options: Any) -> Riaktq:
    return Riaktq(store, clock=clock, interval=None, debounce=None, seed=7, **options)


@pytest.fixture
def tq(store: Store, clock: FakeClock) -> Iterator[Riaktq]:
    queue = _queue(store, clock, aging=None)
    failures: dict[str, int] = {}

    @queue.handler("work", instances=2)
    def work(value: Any) -> Any:
        if isinstance(value, dict) and "fail" in value:
            count = failures[value["fail"]] = failures.get(value["fail"], 0) + 1
            if count <= value["times"]:
                raise ValueError(f"failure {count}")
        return value

    with queue:
        yield queue


def _status(tq: Riaktq, key: str) -> Status:
    task = tq.get(key)
    assert task is not None
    return task.status


# -- delays ---------------------------------------------------------------------------


def test_a_delayed_task_is_not_assigned_before_its_time(tq: Riaktq, clock: FakeClock) -> None:
    tq.open("later", 1, handler="work", delay=60)
    at = datetime.datetime.fromtimestamp(clock.now_us() / 1e6 + 30, tz=datetime.UTC)
    tq.open("at", 2, handler="work", run_at=at)
    tq.open("now", 3, handler="work")
    drive(tq)
    assert [_status(tq, k) for k in ("later", "at", "now")] == [
        Status.TODO,
        Status.TODO,
        Status.DONE,
    ]
    clock.advance(30)
    drive(tq)
    assert (_status(tq, "at"), _status(tq, "later")) == (Status.DONE, Status.TODO)
    clock.advance(29.9)
    drive(tq)
    assert _status(tq, "later") is Status.TODO
    clock.advance(0.1)
    drive(tq)
    assert _status(tq, "later") is Status.DONE


def test_bad_delays_are_named(tq: Riaktq) -> None:
    with pytest.raises(ConfigError, match="run_at or delay, not both"):
        tq.open("k", 1, delay=1, run_at=5)
    with pytest.raises(ConfigError, match="timezone-aware"):
        tq.open("k", 1, run_at=datetime.datetime(2030, 1, 1))
    with pytest.raises(ConfigError, match="delay must be"):
        tq.open("k", 1, delay=-1)
    with pytest.raises(ConfigError, match=r"backoff must be a riaktq_py\.Backoff"):
        tq.open("k", 1, backoff=5)  # type: ignore[arg-type]
    idle = Riaktq(SqliteStore(), interval=None, debounce=None)
    with pytest.raises(ConfigError, match=r"backoff must be a riaktq_py\.Backoff"):
        idle.add_handler("h", lambda v: v, backoff={"base": 1})  # type: ignore[arg-type]


# -- backoff and final failure -----------------------------------------------------------


def test_retries_wait_an_exponential_backoff(tq: Riaktq, clock: FakeClock) -> None:
    backoff = Backoff(base=10, factor=3, cap=1000, jitter=0)
    tq.open("t", {"fail": "t", "times": 2}, handler="work", retry=2, backoff=backoff)
    drive(tq)  # attempt 1 fails; restarted, due in 10 s
    task = tq.get("t")
    assert task is not None and task.status is Status.TODO and task.attempts == 1
    assert task.run_at == clock.now_us() + 10_000_000
    clock.advance(9.999)
    drive(tq)
    assert tq.get("t").attempts == 1  # type: ignore[union-attr]
    clock.advance(0.001)
    drive(tq)  # attempt 2 fails; due in 30 s
    task = tq.get("t")
    assert task is not None and task.attempts == 2
    assert task.run_at == clock.now_us() + 30_000_000
    clock.advance(30)
    drive(tq)
    task = tq.get("t")
    assert task is not None and task.status is Status.DONE and task.attempts == 3


def test_jitter_spreads_retries_within_bounds(tq: Riaktq, clock: FakeClock) -> None:
    backoff = Backoff(base=100, factor=2, cap=1000, jitter=0.5)
    keys = [f"j{i}" for i in range(20)]
    for key in keys:
        tq.open(key, {"fail": key, "times": 1}, handler="work", retry=1, backoff=backoff)
    drive(tq)
    delays = {tq.get(k).run_at - clock.now_us() for k in keys}  # type: ignore[union-attr, operator]
    assert all(50_000_000 <= d <= 100_000_000 for d in delays)
    assert len(delays) > 10  # spread, not identical


def test_after_the_last_attempt_it_fails_for_good_and_can_be_retried_by_hand(
    tq: Riaktq,
) -> None:
    tq.open("t", {"fail": "t", "times": 3}, handler="work", retry=1)
    drive(tq)
    task = tq.get("t")
    assert task is not None and task.status is Status.FAILED and task.retry == 0
    assert [a.error for a in task.history] == ["ValueError: failure 1", "ValueError: failure 2"]
    tq.retry("t", retries=1)
    drive(tq)
    task = tq.get("t")
    assert task is not None and task.status is Status.DONE and task.attempts == 4


def test_handler_defaults_for_backoff_and_timeout_apply_to_its_tasks(
    store: Store, clock: FakeClock
) -> None:
    queue = _queue(store, clock)
    backoff = Backoff(base=5, jitter=0)
    queue.add_handler("h", lambda v: v, timeout=2.5, backoff=backoff)
    task = queue.open("k", 1, handler="h")
    assert (task.timeout, task.backoff) == (2.5, backoff)
    own = queue.open("own", 1, handler="h", timeout=9)
    assert own.timeout == 9


# -- aging -----------------------------------------------------------------------------


def test_waiting_tasks_gain_priority_so_they_are_not_starved(
    store: Store, clock: FakeClock
) -> None:
    gate = Gate()
    queue = _queue(store, clock, aging=Aging(after=60, step=1, max_priority=5))
    queue.add_handler("one", gate)
    with queue:
        queue.open("low", None, handler="one", priority=0)
        queue.open("busy", None, handler="one", priority=9)
        run_tick(queue)  # busy runs; low waits
        for minute in range(1, 8):
            clock.advance(60.5)  # waited longer than a minute since the last raise
            run_tick(queue)
            task = queue.get("low")
            assert task is not None and task.priority == min(minute, 5)
        queue.open("fresh", None, handler="one", priority=4)
        gate.release("busy")
        queue.wait_idle(T)
        run_tick(queue)  # low (aged to 5) goes before fresh (4)
        gate.wait_started("low")
        gate.release("low")
        gate.release("fresh")
        drive(queue)
    assert gate.started == ["busy", "low", "fresh"]


# -- update, cancel, delete ---------------------------------------------------------------


def test_update_changes_a_todo_task_and_is_refused_afterwards(tq: Riaktq) -> None:
    tq.open("t", "old", handler="work", priority=1)
    updated = tq.update("t", input="new", priority=7)
    assert (updated.input_value, updated.priority) == ("new", 7)
    drive(tq)
    assert tq.get("t").output_value == "new"  # type: ignore[union-attr]
    with pytest.raises(TransitionError, match="update 't': expected todo, found done"):
        tq.update("t", priority=1)
    with pytest.raises(TaskNotFound):
        tq.update("missing", priority=1)


def test_cancel_a_todo_task_at_once(tq: Riaktq) -> None:
    events = EventCapture()
    tq.subscribe(events)
    tq.open("t", 1, handler="work")
    assert tq.cancel("t", "no longer needed").status is Status.CANCELED
    drive(tq)
    task = tq.get("t")
    assert task is not None and task.status is Status.CANCELED and task.attempts == 0
    assert task.error == "no longer needed"
    events.wait_for(lambda e: e.transition == "cancel")


def test_cancel_nextup_queued_and_running_tasks(store: Store, clock: FakeClock) -> None:
    gate = Gate()
    queue = _queue(store, clock)
    queue.add_handler("slow", gate, capacity=2)
    with queue:
        queue.open("running", "r", handler="slow", priority=2)
        queue.open("queued", "q", handler="slow", priority=1)
        run_tick(queue)
        gate.wait_started("running")
        queue.cancel("running")
        queue.cancel("queued")
        run_tick(queue)  # tells the instance: it drops "queued" before it starts
        gate.release("running")
        drive(queue)
        assert queue.wait("running", timeout=T).status is Status.CANCELED
    assert gate.started == ["running"]
    running = queue.get("running")
    assert running is not None and running.status is Status.CANCELED
    assert [a.outcome for a in running.history] == [Outcome.DONE]  # the late result, kept
    assert running.out is None
    queued = queue.get("queued")
    assert queued is not None and queued.status is Status.CANCELED and queued.history == ()


def test_cancel_is_refused_for_finished_tasks(tq: Riaktq) -> None:
    tq.open("t", 1, handler="work")
    drive(tq)
    with pytest.raises(TransitionError, match="cancel 't': expected todo or nextup, found done"):
        tq.cancel("t")


def test_delete_removes_finished_tasks_only(tq: Riaktq) -> None:
    tq.open("done", 1, handler="work")
    drive(tq)
    tq.open("todo", 1, tags=["x"])  # no instance has tag x: stays todo
    tq.delete("done")
    assert tq.get("done") is None
    with pytest.raises(TransitionError, match="delete 'todo': expected done, failed or canceled"):
        tq.delete("todo")
    with pytest.raises(TaskNotFound):
        tq.delete("done")


# -- unique ----------------------------------------------------------------------------


def test_unique_open_returns_the_active_task(tq: Riaktq) -> None:
    first = tq.open("a", 1, handler="work", unique="report-42")
    second = tq.open("b", 2, handler="work", unique="report-42")
    assert second.key == "a" and tq.get("b") is None
    drive(tq)
    third = tq.open("c", 3, handler="work", unique="report-42")  # "a" is done: a new one
    assert third.key == "c" and first.key == "a"


def test_unique_holds_under_concurrent_opens_from_several_connections(tmp_path: Path) -> None:
    path = str(tmp_path / "tasks.db")
    queues = [Riaktq(SqliteStore(path), interval=None, debounce=None) for _ in range(4)]
    barrier = threading.Barrier(8)
    results: list[str] = []
    lock = threading.Lock()

    def opener(number: int) -> None:
        barrier.wait(T)
        task = queues[number % 4].open(f"k{number}", number, unique="only-one")
        with lock:
            results.append(task.key)

    threads = [threading.Thread(target=opener, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(T)
    assert len(results) == 8 and len(set(results)) == 1
    store = SqliteStore(path)
    assert store.count_by_status()[Status.TODO] == 1
    store.close()
    for queue in queues:
        queue.store.close()


# -- timeouts --------------------------------------------------------------------------


def test_a_thread_handler_that_runs_too_long_fails_and_the_instance_goes_on(
    store: Store, clock: FakeClock
) -> None:
    gate = Gate()
    queue = _queue(store, clock)
    queue.add_handler("slow", gate, capacity=2, timeout=0.05)
    with queue:
        queue.open("stuck", "s", handler="slow", priority=1)
        queue.open("next", "n", handler="slow")
        gate.release("next")
        run_tick(queue)
        queue.wait_idle(T)  # both finished: "stuck" by its timeout
        run_tick(queue)
    stuck = queue.get("stuck")
    assert stuck is not None and stuck.status is Status.FAILED
    assert stuck.error is not None and stuck.error.startswith("TimeoutError: ran longer than 0.05")
    assert _status(queue, "next") is Status.DONE
    gate.release("stuck")  # let the abandoned thread end


def test_a_process_handler_that_runs_too_long_is_killed(store: Store, clock: FakeClock) -> None:
    queue = _queue(store, clock)
    queue.add_handler("sleepy", "tests.process_handlers:sleepy", execution="process", timeout=1)
    queue.add_handler("pid", "tests.process_handlers:pid", execution="process")
    queue.add_handler("boom", "tests.process_handlers:boom", execution="process")
    with queue:
        queue.open("fast", 0.0, handler="sleepy")
        queue.open("slow", 60.0, handler="sleepy", retry=0)
        queue.open("p", None, handler="pid")
        queue.open("b", 1, handler="boom")
        drive(queue)
    slow = queue.get("slow")
    assert slow is not None and slow.status is Status.FAILED
    assert slow.error == "TimeoutError: ran longer than 1.0 s; its process was killed"
    assert _status(queue, "fast") is Status.DONE
    child = queue.get("p").output_value  # type: ignore[union-attr]
    assert isinstance(child, int) and child != os.getpid()
    boom = queue.get("b")
    assert boom is not None and boom.error == "ValueError: boom 1"


def test_a_process_handler_that_cannot_load_fails_its_task_with_the_reason(
    store: Store, clock: FakeClock
) -> None:
    queue = _queue(store, clock)
    queue.add_handler("gone", "tests.process_handlers:missing", execution="process")
    with queue:
        queue.open("t", 1, handler="gone")
        drive(queue)
    task = queue.get("t")
    assert task is not None and task.status is Status.FAILED
    assert task.error is not None and "failed to start: UnknownHandler" in task.error
    assert "has no 'missing'" in task.error


def test_process_execution_needs_an_importable_handler(tq: Riaktq) -> None:
    queue = Riaktq(SqliteStore(), interval=None, debounce=None)
    with pytest.raises(ConfigError, match="importable by path"):
        queue.add_handler("local", lambda v: v, execution="process")
    with pytest.raises(ConfigError, match="execution must be"):
        queue.add_handler("x", lambda v: v, execution="fiber")
