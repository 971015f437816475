"""The embedding API: public names, clear errors for bad input, durability."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest

import riaktq_py
from riaktq_py import (
    ConfigError,
    EchoHandler,
    PayloadTooLarge,
    Riaktq,
    SqliteStore,
    Status,
    Task,
    TaskNotFound,
    UndecodablePayload,
    UnencodablePayload,
    UnknownHandler,
    load_handler,
    payload,
)
from riaktq_py.events import TaskEvent
from riaktq_py.testing import FakeClock, Gate, drive, run_tick

T = 10.0


def test_every_public_name_is_exported() -> None:
    for name in riaktq_py.__all__:
        assert getattr(riaktq_py, name) is not None, name
    import riaktq_py.testing as testing

    for helper in ("FakeClock", "EventCapture", "Gate", "run_tick", "drive"):
        assert callable(getattr(testing, helper)), helper


def _queue(store: Any = None, **options: Any) -> Riaktq:
    tq = Riaktq(store or SqliteStore(), clock=FakeClock(), interval=None, debounce=None, **options)
    tq.add_handler("echo", EchoHandler())
    return tq


def test_unknown_handler_is_named_with_the_registered_ones() -> None:
    tq = _queue()
    with pytest.raises(UnknownHandler, match=r"unknown handler 'nope' \(registered: echo\)"):
        tq.open("k", 1, handler="nope")
    assert tq.get("k") is None


def test_oversized_input_is_refused_at_open_and_nothing_is_stored() -> None:
    tq = _queue(max_payload=100)
    with pytest.raises(PayloadTooLarge, match="input of 'big'"):
        tq.open("big", "x" * 200, handler="echo")
    assert tq.get("big") is None


def test_the_default_limit_is_one_mebibyte() -> None:
    tq = _queue()
    tq.open("fits", b"x" * (1024 * 1024 - 16), handler="echo")
    with pytest.raises(PayloadTooLarge):
        tq.open("too-big", b"x" * (1024 * 1024), handler="echo")


def test_unencodable_input_is_refused() -> None:
    tq = _queue()
    with pytest.raises(UnencodablePayload, match="input of 'k'"):
        tq.open("k", object(), handler="echo")


def test_undecodable_bytes_are_named() -> None:
    with pytest.raises(UndecodablePayload, match="input"):
        payload.decode(b"\xc1", what="input")
    with pytest.raises(UndecodablePayload):
        payload.decode(payload.encode(1) + b"\x01", what="input")  # trailing bytes


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -(2**63), 2**64 - 1, 1.5, "é", b"\x00\xff", [1, [2]], {"a": {"b": [None]}}],
)
def test_any_msgpack_value_round_trips(value: Any) -> None:
    assert payload.decode(payload.encode(value)) == value


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"priority": "high"}, "priority must be an integer"),
        ({"priority": True}, "priority must be an integer"),
        ({"retry": -1}, "retry must be >= 0"),
        ({"tags": [""]}, "tag must be a non-empty string"),
    ],
)
def test_bad_open_options_are_named(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _queue().open("k", 1, handler="echo", **options)


@pytest.mark.parametrize("key", ["", 5, "a\x1fb", "x" * 2000])
def test_bad_keys_are_refused(key: Any) -> None:
    with pytest.raises(ConfigError, match="task key"):
        _queue().open(key, 1)


def test_handler_registration_errors() -> None:
    tq = _queue()
    with pytest.raises(ConfigError, match="already registered"):
        tq.add_handler("echo", EchoHandler())
    with pytest.raises(ConfigError, match="neither a handler"):
        tq.add_handler("bad", 42)
    with pytest.raises(ConfigError, match="instances must be >= 1"):
        tq.add_handler("zero", EchoHandler(), instances=0)
    with tq, pytest.raises(ConfigError, match="before start"):
        tq.add_handler("late", EchoHandler())


def test_load_handler_errors_name_the_path() -> None:
    assert isinstance(load_handler("riaktq_py.handlers:EchoHandler"), EchoHandler)
    with pytest.raises(ConfigError, match="module:object"):
        load_handler("no-colon")
    with pytest.raises(UnknownHandler, match="cannot import 'nowhere_at_all'"):
        load_handler("nowhere_at_all:x")
    with pytest.raises(UnknownHandler, match="has no 'Missing'"):
        load_handler("riaktq_py.handlers:Missing")


def test_wait_for_a_missing_task_and_a_timeout() -> None:
    tq = _queue()
    with tq:
        with pytest.raises(TaskNotFound, match="no task 'ghost'"):
            tq.wait("ghost", timeout=T)
        tq.open("k", 1, handler="echo")
        with pytest.raises(TimeoutError, match="not final"):
            tq.wait("k", timeout=0.01)


class ReadSignalingStore(SqliteStore):
    """Sets ``read`` when a thread named ``waiter`` reads a task (``wait`` does, once
    it watches for the close)."""

    def __init__(self) -> None:
        super().__init__()
        self.read = threading.Event()

    def get(self, key: str) -> Task | None:
        if threading.current_thread().name == "waiter":
            self.read.set()
        return super().get(key)


def test_wait_is_woken_by_the_close_and_starts_no_thread() -> None:
    gate = Gate()
    store = ReadSignalingStore()
    tq = _queue(store)
    tq.add_handler("held", gate)
    waited: list[Task] = []
    with tq:
        tq.open("k", 7, handler="held")
        run_tick(tq)
        gate.wait_started("k")
        waiter = threading.Thread(
            target=lambda: waited.append(tq.wait("k", timeout=T)), name="waiter"
        )
        waiter.start()
        assert store.read.wait(T)  # the waiter watches for the close, and blocks
        # a caller waiting costs no thread: no subscriber delivery thread was started
        assert [t.name for t in threading.enumerate() if t.name.startswith("_Deliver")] == []
        gate.release("k")
        tq.wait_idle(T)
        run_tick(tq)  # commits the result: the close event wakes the waiter
        waiter.join(T)
    assert [(task.key, task.status, task.output_value) for task in waited] == [
        ("k", Status.DONE, 7)
    ]


def test_calls_that_need_a_running_queue_say_so() -> None:
    with pytest.raises(riaktq_py.RiaktqError, match="not running"):
        _queue().tick()
    tq = _queue()
    with tq:
        number = tq.subscribe(print)
    with pytest.raises(riaktq_py.RiaktqError, match="not running"):
        tq.subscribe(print)
    with pytest.raises(riaktq_py.RiaktqError, match="not running"):
        tq.unsubscribe(number)


def test_tasks_survive_a_restart_of_the_process(tmp_path: Path) -> None:
    """Durability: close the store, reopen the file, nothing lost; lost work reruns."""
    path = str(tmp_path / "tasks.db")
    first = _queue(SqliteStore(path))
    with first:
        first.open_many([(f"t{i}", i) for i in range(30)], handler="echo", priority=1)
        run_tick(first)  # echo-1 takes one task ...
        first.wait_idle(T)  # ... and finishes it, but it is never committed
    first.store.close()

    store = SqliteStore(path)
    counts = store.count_by_status()
    assert counts[Status.TODO] == 29 and counts[Status.NEXTUP] == 1
    second = _queue(store)
    with second:
        reports = drive(second)
    assert sum(r.rolled_back for r in reports) == 1  # the result died with the process
    assert store.count_by_status()[Status.DONE] == 30
    assert all(store.get(f"t{i}").output_value == i for i in range(30))  # type: ignore[union-attr]
    store.close()


def test_a_path_object_names_a_sqlite_file_and_anything_else_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tasks%20.db"  # a path, not a URL: nothing in it is unquoted
    tq = Riaktq(path, interval=None)
    tq.open("k", 1)
    tq.close()  # the queue opened the store, so it closes it
    store = SqliteStore(str(path))
    assert store.get("k") is not None
    store.close()
    with pytest.raises(ConfigError, match="store must be a Store, a store URL or a path, got 42"):
        Riaktq(42)  # type: ignore[arg-type]


def test_a_batch_subscriber_sees_every_transition_and_a_replay_refuses_batches() -> None:
    tq = _queue()
    batches: list[list[TaskEvent]] = []
    closed = threading.Event()

    def take(events: list[TaskEvent]) -> None:
        batches.append(events)
        if any(e.transition == "close" for e in events):
            closed.set()

    with tq:
        tq.subscribe(take, batch=True)
        tq.open("b1", 1, handler="echo")
        drive(tq)
        assert closed.wait(T)
        with pytest.raises(ConfigError, match="batch=True is for live"):
            tq.subscribe(take, from_position=0, batch=True)
    transitions = [(e.key, e.transition) for batch in batches for e in batch]
    assert transitions == [("b1", "open"), ("b1", "assign"), ("b1", "close")]


def test_stopping_a_queue_leaves_no_cycle_holding_the_callers_locals(tmp_path: Path) -> None:
    class Big:
        """Stands in for a caller's large local (a run's events, say)."""

    def run() -> weakref.ref[Big]:
        big = Big()
        tq = Riaktq(tmp_path / "tasks.db")  # ticks by itself: coordinated, a membership
        tq.add_handler("echo", EchoHandler())
        with tq:
            tq.subscribe(lambda event: None)
            tq.open("k", 1, handler="echo")
        tq.close()
        return weakref.ref(big)

    gc.collect()
    gc.disable()  # what reference counting alone frees
    try:
        assert run()() is None
    finally:
        gc.enable()
