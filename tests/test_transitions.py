"""The transition table: every edge of the status graph, and every refused edge."""

from __future__ import annotations

import pytest

from riaktq_py import payload
from riaktq_py.errors import ConfigError, TransitionError
from riaktq_py.task import Backoff, Outcome, Status, Task
from riaktq_py.transitions import (
    GRAPH,
    Age,
    Assign,
    Cancel,
    Close,
    Open,
    Restart,
    Retry,
    Rollback,
    Transition,
    Update,
)

STATES: list[Status | None] = [None, *Status]


def _task(status: Status, **fields: object) -> Task:
    base: dict[str, object] = {
        "key": "k",
        "status": status,
        "input": payload.encode("in"),
        "cat": 1,
        "priority": 5,
        "retry": 2,
        "assignee": "i1" if status in (Status.NEXTUP, Status.CANCELED) else None,
        "token": 3,
    }
    base.update(fields)
    return Task(**base)  # type: ignore[arg-type]


def _transition(name: str) -> Transition:
    table: dict[str, Transition] = {
        "open": Open("k", payload.encode("new"), cat=9, priority=1, retry=4),
        "assign": Assign("k", "i2"),
        "close": Close("k", "i1", 3, Outcome.DONE, sat=10, laf=5, out=payload.encode("out")),
        "restart": Restart("k"),
        "rollback": Rollback("k", "instance gone"),
        "cancel": Cancel("k", "not needed"),
        "update": Update("k", priority=7),
        "retry": Retry("k", retry=1),
        "age": Age("k", at=50),
    }
    return table[name]


@pytest.mark.parametrize("name", sorted(GRAPH))
@pytest.mark.parametrize("state", STATES, ids=lambda s: str(s))
def test_every_edge_follows_the_graph(name: str, state: Status | None) -> None:
    """Allowed edges land in the graph's target status; refused ones say expected/found."""
    sources, targets = GRAPH[name]
    current = None if state is None else _task(state)
    transition = _transition(name)
    if state in sources:
        assert transition.apply(current).status in targets
    else:
        with pytest.raises(TransitionError) as caught:
            transition.apply(current)
        found = "no task" if state is None else state.value
        assert str(caught.value).endswith(f"found {found}")
        assert "expected" in str(caught.value)


def test_the_graph_has_every_transition_and_no_more() -> None:
    assert set(GRAPH) == {
        "open",
        "assign",
        "close",
        "restart",
        "rollback",
        "cancel",
        "update",
        "retry",
        "age",
    }


def test_open_resets_fields_but_keeps_token_and_history() -> None:
    """Re-opening overwrites the registers riaktq overwrites; a stale result cannot close it."""
    done = Close("k", "i1", 3, Outcome.DONE, sat=10, laf=5, out=b"\xa1x").apply(
        _task(Status.NEXTUP)
    )
    reopened = _transition("open").apply(done)
    assert reopened.status is Status.TODO
    assert (reopened.priority, reopened.retry, reopened.cat) == (1, 4, 9)
    assert reopened.input_value == "new"
    assert reopened.assignee is None and reopened.out is None
    assert reopened.token == 3 and reopened.history == done.history


def test_assign_sets_assignee_and_bumps_token() -> None:
    task = Assign("k", "i2").apply(_task(Status.TODO))
    assert (task.status, task.assignee, task.token) == (Status.NEXTUP, "i2", 4)


def test_close_done_records_output_and_attempt() -> None:
    task = _transition("close").apply(_task(Status.NEXTUP))
    assert task.status is Status.DONE and task.output_value == "out"
    assert (task.sat, task.laf, task.attempts) == (10, 5, 1)
    [attempt] = task.history
    assert (attempt.number, attempt.assignee, attempt.token, attempt.outcome) == (
        1,
        "i1",
        3,
        Outcome.DONE,
    )


def test_close_failed_keeps_reason_in_out_as_riaktq_does() -> None:
    close = Close("k", "i1", 3, Outcome.FAILED, sat=10, laf=5, error="ValueError: boom")
    task = close.apply(_task(Status.NEXTUP))
    assert task.status is Status.FAILED
    assert task.output_value == "ValueError: boom" and task.error == "ValueError: boom"
    assert task.history[-1].error == "ValueError: boom"


@pytest.mark.parametrize(
    ("assignee", "token", "found"),
    [("i9", 3, "nextup on i1 token 3"), ("i1", 2, "nextup on i1 token 3")],
)
def test_close_refuses_another_assignee_or_a_stale_token(
    assignee: str, token: int, found: str
) -> None:
    with pytest.raises(TransitionError, match=f"found {found}"):
        Close("k", assignee, token, Outcome.DONE, sat=1, laf=1).apply(_task(Status.NEXTUP))


def test_restart_decrements_retry_and_priority() -> None:
    task = Restart("k").apply(_task(Status.FAILED, retry=2, priority=5, assignee="i1"))
    assert (task.status, task.retry, task.priority, task.assignee) == (Status.TODO, 1, 4, None)


def test_restart_refuses_a_failed_task_without_retries() -> None:
    with pytest.raises(TransitionError, match="expected failed with retries left"):
        Restart("k").apply(_task(Status.FAILED, retry=0))


def test_rollback_removes_assignee_and_records_a_lost_attempt() -> None:
    task = Rollback("k", "instance gone").apply(_task(Status.NEXTUP))
    assert (task.status, task.assignee, task.attempts) == (Status.TODO, None, 1)
    assert task.history[-1].outcome is Outcome.LOST
    assert task.history[-1].error == "instance gone"


def test_open_only_new_refuses_an_existing_key() -> None:
    only_new = Open("k", payload.encode(1), cat=1, only_new=True)
    assert only_new.apply(None).status is Status.TODO
    with pytest.raises(TransitionError, match="expected no task, found done"):
        only_new.apply(_task(Status.DONE))


def test_a_result_for_a_canceled_task_joins_the_history_but_the_status_stays() -> None:
    canceled = Cancel("k").apply(_task(Status.NEXTUP))
    assert canceled.status is Status.CANCELED and canceled.assignee == "i1"
    closed = _transition("close").apply(canceled)
    assert closed.status is Status.CANCELED
    assert [a.outcome for a in closed.history] == [Outcome.DONE] and closed.out is None


def test_update_replaces_only_the_given_fields() -> None:
    task = Update("k", input=payload.encode("x"), tags=frozenset({"t"})).apply(_task(Status.TODO))
    assert (task.input_value, task.tags, task.priority) == ("x", frozenset({"t"}), 5)
    with pytest.raises(TransitionError, match="update 'k': expected todo, found nextup"):
        Update("k", priority=1).apply(_task(Status.NEXTUP))


def test_retry_by_hand_and_aging() -> None:
    task = Retry("k", retry=2).apply(_task(Status.FAILED, retry=0, run_at=99))
    assert (task.status, task.retry, task.run_at) == (Status.TODO, 2, None)
    aged = Age("k", at=77, step=2).apply(_task(Status.TODO))
    assert (aged.priority, aged.aged_at) == (7, 77)


def test_restart_carries_the_backoff_time() -> None:
    task = Restart("k", run_at=1234).apply(_task(Status.FAILED))
    assert task.run_at == 1234


def test_backoff_grows_exponentially_up_to_the_cap_with_bounded_jitter() -> None:
    backoff = Backoff(base=1.0, factor=3.0, cap=20.0, jitter=0.5)
    assert [backoff.delay(n, uniform=0.0) for n in (1, 2, 3, 4)] == [1.0, 3.0, 9.0, 20.0]
    assert backoff.delay(2, uniform=1.0) == 1.5
    with pytest.raises(ConfigError, match="jitter"):
        Backoff(jitter=2)
    with pytest.raises(ConfigError, match="factor >= 1"):
        Backoff(factor=0.5)
