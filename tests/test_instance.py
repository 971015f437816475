"""Instance actors: input and output queues, one task at a time, capacity."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pykka
import pytest

from riaktq_py import payload
from riaktq_py.actors.handles import LocalInstance
from riaktq_py.actors.instance import Assignment, Instance
from riaktq_py.handlers import EchoHandler
from riaktq_py.task import Outcome
from riaktq_py.testing import FakeClock

T = 5.0


class Gate:
    """A handler that blocks each task until the test opens the gate for it."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.cond = threading.Condition()
        self.open_for: set[str] = set()

    def init(self, options: Mapping[str, Any]) -> Any:
        return {"options": dict(options)}

    def handle(self, task_id: str, input: Any, tags: frozenset[str], state: Any) -> Any:
        with self.cond:
            self.started.append(task_id)
            self.cond.notify_all()
            self.cond.wait_for(lambda: task_id in self.open_for, T)
        if input == "raise":
            raise RuntimeError("handler exploded")
        return {"echo": input, "state": state}

    def release(self, key: str) -> None:
        with self.cond:
            self.open_for.add(key)
            self.cond.notify_all()

    def wait_started(self, count: int) -> list[str]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.started) >= count, T)
            return list(self.started)


def _assignment(key: str, value: Any = None, token: int = 1) -> Assignment:
    return Assignment(key, token, payload.encode(value))


def _start(handler: Any, **options: Any) -> tuple[LocalInstance, threading.Semaphore]:
    results = threading.Semaphore(0)
    ref = Instance.start("i1", handler, clock=FakeClock(), on_result=results.release, **options)
    return LocalInstance("i1", ref), results


def test_runs_one_task_at_a_time_in_arrival_order_and_answers_while_running() -> None:
    gate = Gate()
    handle, results = _start(gate, capacity=3, options={"speed": 1})
    assert handle.put([_assignment("a", 1), _assignment("b", 2)], T) == ["a", "b"]
    assert gate.wait_started(1) == ["a"]
    state = handle.get(T)  # answered while "a" runs
    assert state.busy and state.inputs == ("a", "b") and state.outputs == ()
    assert handle.put([_assignment("c", 3)], T) == ["c"]
    for key in ("a", "b", "c"):
        gate.release(key)
        assert results.acquire(timeout=T)
    assert gate.started == ["a", "b", "c"]
    state = handle.get(T)
    assert not state.busy and state.inputs == ()
    assert [(r.key, r.outcome) for r in state.outputs] == [
        ("a", Outcome.DONE),
        ("b", Outcome.DONE),
        ("c", Outcome.DONE),
    ]
    assert payload.decode(state.outputs[0].out or b"") == {
        "echo": 1,
        "state": {"options": {"speed": 1}},
    }


def test_capacity_bounds_the_input_queue() -> None:
    gate = Gate()
    handle, _ = _start(gate, capacity=2)
    accepted = handle.put([_assignment("a"), _assignment("b"), _assignment("c")], T)
    assert accepted == ["a", "b"]
    assert handle.get(T).free == 0
    gate.release("a")
    gate.release("b")


def test_default_capacity_is_one_as_in_riaktq() -> None:
    handle, _ = _start(Gate())
    assert handle.put([_assignment("a"), _assignment("b")], T) == ["a"]


def test_results_stay_until_committed_and_commit_matches_the_token() -> None:
    handle, results = _start(EchoHandler())
    handle.put([_assignment("a", "x", token=7)], T)
    assert results.acquire(timeout=T)
    [result] = handle.get(T).outputs
    assert (result.key, result.token, payload.decode(result.out or b"")) == ("a", 7, "x")
    assert handle.get(T).outputs == (result,)  # still there
    assert handle.commit([("a", 6)], T) == 0  # another token: not this result
    assert handle.commit([("a", 7)], T) == 1
    assert handle.get(T).outputs == ()


def test_a_raising_handler_gives_a_failed_result_with_the_error_text() -> None:
    gate = Gate()
    handle, results = _start(gate)
    handle.put([_assignment("a", "raise")], T)
    gate.release("a")
    assert results.acquire(timeout=T)
    [result] = handle.get(T).outputs
    assert result.outcome is Outcome.FAILED
    assert result.error == "RuntimeError: handler exploded"
    assert result.out is None


def test_undecodable_input_fails_the_task_with_a_clear_error() -> None:
    handle, results = _start(EchoHandler())
    handle.put([Assignment("bad", 1, b"\xc1")], T)
    assert results.acquire(timeout=T)
    [result] = handle.get(T).outputs
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and "input of 'bad'" in result.error


def test_oversized_output_fails_the_task() -> None:
    handle, results = _start(EchoHandler(), max_output=16)
    handle.put([_assignment("big", "x" * 100)], T)
    assert results.acquire(timeout=T)
    [result] = handle.get(T).outputs
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and "output of 'big'" in result.error


def test_sat_and_laf_come_from_the_instance_clock() -> None:
    clock = FakeClock(start_us=1_000)
    results = threading.Semaphore(0)

    class Slow:
        def init(self, options: Mapping[str, Any]) -> Any:
            return None

        def handle(self, task_id: str, input: Any, tags: frozenset[str], state: Any) -> Any:
            clock.advance(us=250)
            return input

    ref: pykka.ActorRef[Instance] = Instance.start(
        "i1", Slow(), clock=clock, on_result=results.release
    )
    handle = LocalInstance("i1", ref)
    handle.put([_assignment("a")], T)
    assert results.acquire(timeout=T)
    [result] = handle.get(T).outputs
    assert (result.sat, result.laf) == (1_000, 250)


def test_the_scheduler_reaches_a_local_instance_without_a_message_and_with_a_timeout() -> None:
    handle, _ = _start(EchoHandler())
    queues = handle._live()
    queues._lock.acquire()  # the queues are busy (as if held by the instance's worker)
    try:
        with pytest.raises(TimeoutError, match=r"'i1': queues busy for 0\.05 s"):
            handle.get(0.05)
        with pytest.raises(TimeoutError):
            handle.put([_assignment("a")], 0.05)
    finally:
        queues._lock.release()
    assert handle.get(T).inputs == ()
    handle.ref.stop()
    with pytest.raises(pykka.ActorDeadError, match="'i1' is not running"):
        handle.get(T)
