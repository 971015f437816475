"""Task history: every attempt (assignee, sat, laf, outcome, out or error) is kept and read back."""

from __future__ import annotations

from typing import Any

import pytest

from riaktq_py import Riaktq, payload
from riaktq_py.errors import TaskNotFound
from riaktq_py.observer.history import attempt_summary, task_history
from riaktq_py.store import Store
from riaktq_py.task import Attempt, Outcome, Status, decode_history, encode_history
from riaktq_py.testing import FakeClock, drive
from riaktq_py.transitions import Assign, Close, Open, Restart, Rollback


def test_history_keeps_every_attempt_across_rollback_and_retries(store: Store) -> None:
    """Lost, failed and done attempts are all kept, in order, with their details."""
    store.apply([Open("t", payload.encode(1), cat=1, retry=1)], at=1)
    store.apply([Assign("t", "w1")], at=2)
    store.apply([Rollback("t", "instance 'w1' is not live")], at=3)
    store.apply([Assign("t", "w2")], at=4)
    store.apply([Close("t", "w2", 2, Outcome.FAILED, sat=5, laf=6, error="boom")], at=11)
    store.apply([Restart("t")], at=12)
    store.apply([Assign("t", "w3")], at=13)
    out = payload.encode({"ok": b"\x01"})
    store.apply([Close("t", "w3", 3, Outcome.DONE, sat=14, laf=7, out=out)], at=21)

    history = task_history(store, "t")
    assert [(a.number, a.assignee, a.token, a.outcome) for a in history] == [
        (1, "w1", 1, Outcome.LOST),
        (2, "w2", 2, Outcome.FAILED),
        (3, "w3", 3, Outcome.DONE),
    ]
    assert history[0].error == "instance 'w1' is not live"
    assert (history[1].sat, history[1].laf, history[1].error) == (5, 6, "boom")
    assert [attempt_summary(a)["out"] for a in history] == [None, "boom", {"ok": "01"}]
    assert attempt_summary(history[2]) == {
        "number": 3,
        "assignee": "w3",
        "token": 3,
        "outcome": "done",
        "sat": 14,
        "laf": 7,
        "out": {"ok": "01"},
        "error": None,
    }
    with pytest.raises(TaskNotFound, match="no task 'missing'"):
        task_history(store, "missing")


def test_riaktq_history_after_a_failed_attempt_and_a_retry(store: Store) -> None:
    """A handler that fails once, then succeeds: both attempts through Riaktq.history."""
    clock = FakeClock()
    calls: list[Any] = []

    def flaky(value: Any) -> Any:
        calls.append(value)
        clock.advance(2 if len(calls) == 1 else 3)
        if len(calls) == 1:
            raise ValueError("first try fails")
        return value * 10

    tq = Riaktq(store, clock=clock, interval=None, debounce=None)
    tq.add_handler("flaky", flaky)
    with tq:
        tq.open("job", 4, retry=1, handler="flaky")
        drive(tq)
        history = tq.history("job")
        task = tq.get("job")
    assert task is not None and task.status is Status.DONE and task.output_value == 40
    assert [(a.number, a.assignee, a.outcome) for a in history] == [
        (1, "flaky-1", Outcome.FAILED),
        (2, "flaky-1", Outcome.DONE),
    ]
    assert history[0].laf == 2_000_000 and history[1].laf == 3_000_000
    assert "first try fails" in (history[0].error or "")
    assert attempt_summary(history[1])["out"] == 40
    assert history[0].sat is not None and history[1].sat is not None
    assert history[0].sat < history[1].sat
    with pytest.raises(TaskNotFound):
        tq.history("nope")


def test_the_cli_task_view_shows_an_undecodable_attempt_output_as_hex(store: Store) -> None:
    from riaktq_py.cli.common import task_dict

    store.apply([Open("t", payload.encode(1), cat=1, retry=1)], at=1)
    store.apply([Assign("t", "w1")], at=2)
    store.apply([Close("t", "w1", 1, Outcome.DONE, sat=3, laf=1, out=b"\xc1")], at=4)
    store.apply([Open("t", payload.encode(2), cat=5)], at=5)  # run again
    task = store.get("t")
    assert task is not None and task.out is None
    view = task_dict(task)
    assert [a["out"] for a in view["history"]] == ["c1"]
    assert view["history"][0]["token"] == 1 and view["out"] is None


def test_a_history_is_stored_as_each_attempts_wire_form_and_read_back_whole() -> None:
    attempts = (
        Attempt(1, "i-1", 1, Outcome.FAILED, 10, 20, payload.encode("boom"), "boom"),
        Attempt(2, "i-2", 2, Outcome.DONE, 30, 40, payload.encode({"ok": 1})),
    )
    blob = encode_history(attempts)
    assert payload.decode(blob) == [
        [1, "i-1", 1, "failed", 10, 20, payload.encode("boom"), "boom"],
        [2, "i-2", 2, "done", 30, 40, payload.encode({"ok": 1}), None],
    ]
    assert payload.decode(blob) == [a.to_wire() for a in attempts]
    assert decode_history(blob) == attempts
