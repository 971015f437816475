"""Whole lifecycle through the embedding API, ticks driven by hand, on every backend.

riaktq's own four scenarios, retries, crashes, ordering, routing, batches larger
than riaktq's 20-row cap, and the same-tick rollback defect (SPEC B3).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from riaktq_py import Riaktq, Status, Store
from riaktq_py.task import Outcome
from riaktq_py.testing import EventCapture, FakeClock, Gate, drive, run_tick
from riaktq_py.transitions import Assign

T = 10.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> EventCapture:
    return EventCapture()


def _queue(store: Store, clock: FakeClock) -> Riaktq:
    return Riaktq(store, clock=clock, interval=None, debounce=None)


@pytest.fixture
def tq(store: Store, clock: FakeClock, events: EventCapture) -> Iterator[Riaktq]:
    queue = _queue(store, clock)
    fails: dict[str, int] = {}

    @queue.handler("echo", instances=2)
    def echo(value: Any) -> Any:
        if isinstance(value, dict) and "fail" in value:
            count = fails[value["fail"]] = fails.get(value["fail"], 0) + 1
            if count <= value.get("times", 1):
                raise ValueError(f"failure {count} of {value['fail']}")
        return value

    with queue:
        queue.subscribe(events)
        yield queue


def _status(tq: Riaktq, key: str) -> Status:
    task = tq.get(key)
    assert task is not None
    return task.status


def test_open_runs_to_done(tq: Riaktq, events: EventCapture) -> None:
    """Scenario 1: an opened task is assigned, run and committed."""
    tq.open("t1", {"n": 1}, handler="echo", priority=2)
    first = run_tick(tq)
    assert first.assigned == 1 and first.rolled_back == 0
    tq.wait_idle(T)
    assert run_tick(tq).committed == 1
    task = tq.get("t1")
    assert task is not None and task.status is Status.DONE
    assert task.output_value == {"n": 1}
    assert task.assignee in {"echo-1", "echo-2"} and task.attempts == 1
    events.wait_for(lambda e: e.transition == "close")
    assert events.transitions("t1") == ["open", "assign", "close"]


def test_reopen_while_in_progress_runs_the_new_input(store: Store, clock: FakeClock) -> None:
    """Scenario 2: the running attempt's result is refused; the task runs again."""
    gate = Gate()
    queue = _queue(store, clock)
    queue.add_handler("slow", gate)
    events = EventCapture()
    with queue:
        queue.subscribe(events)
        queue.open("t", "old", handler="slow")
        run_tick(queue)
        gate.wait_started("t")
        queue.open("t", "new", handler="slow")  # while it runs
        assert _status(queue, "t") is Status.TODO
        gate.release_all()
        gate.release("t")
        drive(queue)
    task = queue.get("t")
    assert task is not None and task.status is Status.DONE and task.output_value == "new"
    assert gate.started == ["t", "t"]
    refused = events.wait_for(lambda e: e.transition == "close" and not e.ok)
    assert "expected nextup or canceled, found todo" in refused.error
    events.wait_for(lambda e: e.transition == "close" and e.ok)
    assert events.transitions("t") == ["open", "assign", "open", "close", "assign", "close"]


def test_reopen_when_completed_runs_again(tq: Riaktq) -> None:
    """Scenario 3: a done task re-opened runs again with its new input; history keeps both."""
    tq.open("t", 1, handler="echo")
    drive(tq)
    assert tq.get("t").output_value == 1  # type: ignore[union-attr]
    tq.open("t", 2, handler="echo")
    assert _status(tq, "t") is Status.TODO
    drive(tq)
    task = tq.get("t")
    assert task is not None and task.status is Status.DONE and task.output_value == 2
    assert [a.outcome for a in task.history] == [Outcome.DONE, Outcome.DONE]


def test_task_assigned_to_a_missing_instance_is_rolled_back_then_runs(
    tq: Riaktq, events: EventCapture
) -> None:
    """Scenario 4: nextup on an instance that does not exist goes back to todo, then runs."""
    tq.open("t", "x", handler="echo")
    tq.engine.apply([Assign("t", "ghost-7")])
    report = run_tick(tq)
    assert (report.rolled_back, report.assigned) == (1, 0)
    assert _status(tq, "t") is Status.TODO
    drive(tq)
    task = tq.get("t")
    assert task is not None and task.status is Status.DONE and task.assignee != "ghost-7"
    assert [a.outcome for a in task.history] == [Outcome.LOST, Outcome.DONE]
    assert "ghost-7" in (task.history[0].error or "")
    events.wait_for(lambda e: e.transition == "close" and e.key == "t")
    assert events.transitions("t") == ["open", "assign", "rollback", "assign", "close"]


def test_failure_with_retries_lowers_priority_and_keeps_history(tq: Riaktq) -> None:
    tq.open("t", {"fail": "t", "times": 2}, handler="echo", priority=5, retry=3)
    drive(tq)
    task = tq.get("t")
    assert task is not None and task.status is Status.DONE
    assert (task.priority, task.retry, task.attempts) == (3, 1, 3)
    assert [(a.outcome, a.error) for a in task.history] == [
        (Outcome.FAILED, "ValueError: failure 1 of t"),
        (Outcome.FAILED, "ValueError: failure 2 of t"),
        (Outcome.DONE, None),
    ]
    assert all(a.sat is not None and a.laf is not None for a in task.history)


def test_a_crashing_handler_without_retries_ends_failed(tq: Riaktq) -> None:
    tq.open("t", {"fail": "t", "times": 5}, handler="echo", retry=1)
    drive(tq)
    task = tq.get("t")
    assert task is not None and task.status is Status.FAILED and task.retry == 0
    assert task.error == "ValueError: failure 2 of t"
    assert task.output_value == "ValueError: failure 2 of t"  # riaktq keeps the reason in out
    assert tq.wait("t", timeout=T).status is Status.FAILED


def test_more_than_twenty_of_each_kind_are_all_reached(tq: Riaktq) -> None:
    """No 20-row caps (SPEC B2): 30 lost, 30 restartable and 30 todo tasks all move."""
    tq.open_many([(f"lost{i}", i) for i in range(30)], handler="echo")
    tq.engine.apply([Assign(f"lost{i}", "ghost") for i in range(30)])
    tq.open_many([(f"fail{i}", {"fail": f"fail{i}"}) for i in range(30)], handler="echo", retry=1)
    tq.open_many([(f"todo{i}", i) for i in range(30)], handler="echo")
    reports = drive(tq)
    assert sum(r.rolled_back for r in reports) == 30
    assert sum(r.restarted for r in reports) == 30
    assert reports[0].rolled_back == 30  # all in one tick
    counts = tq.store.count_by_status()
    assert counts[Status.DONE] == 90 and counts[Status.TODO] == counts[Status.NEXTUP] == 0


def test_a_task_assigned_in_a_tick_is_never_rolled_back_in_that_tick(
    store: Store, clock: FakeClock
) -> None:
    """SPEC B3: rollback knows what this tick assigned."""
    gate = Gate()
    queue = _queue(store, clock)
    queue.add_handler("slow", gate, instances=3, capacity=2)
    with queue:
        queue.open_many([(f"t{i}", i) for i in range(10)], handler="slow")
        report = run_tick(queue)
        assert (report.assigned, report.rolled_back) == (6, 0)
        again = run_tick(queue)  # still running or queued: held, not lost
        assert (again.assigned, again.rolled_back) == (0, 0)
        assert queue.store.count_by_status()[Status.NEXTUP] == 6
        gate.release_all()
        for i in range(10):
            gate.release(f"t{i}")
        reports = drive(queue)
    assert sum(r.rolled_back for r in reports) == 0
    assert queue.store.count_by_status()[Status.DONE] == 10


def test_priority_then_age_decides_the_order(store: Store, clock: FakeClock) -> None:
    gate = Gate()
    gate.release_all()
    queue = _queue(store, clock)
    queue.add_handler("one", gate)
    for key, priority in [("low-old", 1), ("high-new", 9), ("mid-old", 5), ("low-new", 1)]:
        queue.open(key, None, handler="one", priority=priority)
        clock.advance(1)
    queue.open("mid-new", None, handler="one", priority=5)
    with queue:
        drive(queue)
    assert gate.started == ["high-new", "mid-old", "mid-new", "low-old", "low-new"]


def test_tags_route_tasks_to_instances_that_have_them(store: Store, clock: FakeClock) -> None:
    ran: dict[str, list[str]] = {"plain": [], "gpu": []}
    queue = _queue(store, clock)

    @queue.handler("plain", instances=2)
    def plain(value: Any) -> Any:
        ran["plain"].append(value)
        return value

    @queue.handler("gpu", tags=["cuda"])
    def gpu(value: Any) -> Any:
        ran["gpu"].append(value)
        return value

    with queue:
        queue.open("needs-cuda", "c", tags=["cuda"])  # no handler: any instance with cuda
        queue.open("anywhere", "a")
        queue.open_many([(f"p{i}", f"p{i}") for i in range(5)], handler="plain")
        queue.open("nobody", "n", tags=["tpu"])  # no instance has tpu
        drive(queue)
    assert "c" in ran["gpu"] and "c" not in ran["plain"]
    assert {f"p{i}" for i in range(5)} <= set(ran["plain"])
    assert not any(v.startswith("p") for v in ran["gpu"])
    assert _status(queue, "nobody") is Status.TODO
    assert _status(queue, "anywhere") is Status.DONE


def test_an_unreachable_instance_is_skipped_and_its_tasks_rolled_back(tq: Riaktq) -> None:
    """SPEC B1: an instance that does not answer does not crash the tick."""
    tq.open("t", 1, handler="echo")
    tq.engine.apply([Assign("t", "echo-1")])
    [ref] = [r for r in tq._instances if r.proxy().name.get(timeout=T) == "echo-1"]
    ref.stop()
    report = run_tick(tq)
    assert report.unreachable == ("echo-1",)
    assert report.rolled_back == 1
    drive(tq)
    task = tq.get("t")
    assert task is not None and task.status is Status.DONE and task.assignee == "echo-2"
