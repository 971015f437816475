"""The store contract, run against every backend in ``tests/backends.py``."""

from __future__ import annotations

import itertools

from riaktq_py import payload
from riaktq_py.store import Store, TaskQuery
from riaktq_py.task import Backoff, Outcome, Status
from riaktq_py.transitions import Age, Assign, Cancel, Close, Open, Restart, Rollback


def _open(
    key: str,
    *,
    cat: int = 0,
    priority: int = 0,
    retry: int = 0,
    tags: set[str] | None = None,
    value: object = None,
) -> Open:
    return Open(
        key,
        payload.encode(value),
        cat=cat,
        priority=priority,
        retry=retry,
        tags=frozenset(tags or ()),
    )


def test_open_then_get_round_trips_every_field(store: Store) -> None:
    """A task written by open reads back with the same fields."""
    [event] = store.apply(
        [
            _open(
                "k", cat=7, priority=3, retry=2, tags={"a", "b"}, value={"x": [1, 2.5, b"raw", "s"]}
            )
        ],
        at=10,
    )
    assert event.ok and event.task is not None
    task = store.get("k")
    assert task == event.task
    assert task.status is Status.TODO
    assert (task.priority, task.retry, task.cat, task.tags) == (3, 2, 7, frozenset({"a", "b"}))
    assert task.input_value == {"x": [1, 2.5, b"raw", "s"]}
    assert store.get("missing") is None


def test_refused_transition_changes_nothing_and_reports_expected_found(store: Store) -> None:
    """A transition on the wrong status is refused ('expected X, found Y'); others apply."""
    store.apply([_open("a"), _open("b")], at=1)
    events = store.apply([Close("a", "i", 1, Outcome.DONE, 1, 1), Assign("b", "i")], at=2)
    assert events[0].error == "close 'a': expected nextup or canceled, found todo"
    assert events[1].ok
    assert store.get("a").status is Status.TODO  # type: ignore[union-attr]
    assert store.get("b").status is Status.NEXTUP  # type: ignore[union-attr]


def test_full_lifecycle_with_restart_keeps_history(store: Store) -> None:
    """assign, failed close, restart, assign, done close: history keeps both attempts."""
    store.apply([_open("t", priority=5, retry=1)], at=1)
    store.apply([Assign("t", "i1")], at=2)
    store.apply([Close("t", "i1", 1, Outcome.FAILED, sat=3, laf=4, error="boom")], at=5)
    [restart] = store.apply([Restart("t")], at=6)
    assert restart.task is not None
    assert (restart.task.status, restart.task.priority, restart.task.retry) == (Status.TODO, 4, 0)
    store.apply([Assign("t", "i2")], at=7)
    store.apply([Close("t", "i2", 2, Outcome.DONE, sat=8, laf=9, out=payload.encode("ok"))], at=10)
    task = store.get("t")
    assert task is not None and task.status is Status.DONE and task.output_value == "ok"
    assert [(a.assignee, a.outcome, a.error) for a in task.history] == [
        ("i1", Outcome.FAILED, "boom"),
        ("i2", Outcome.DONE, None),
    ]
    assert task.history[0].sat == 3 and task.history[0].laf == 4


def test_stale_token_cannot_close(store: Store) -> None:
    """A result from an earlier assignment is refused after a rollback and reassignment."""
    store.apply([_open("t")], at=1)
    store.apply([Assign("t", "i1")], at=2)
    store.apply([Rollback("t", "instance gone")], at=3)
    store.apply([Assign("t", "i1")], at=4)
    [event] = store.apply([Close("t", "i1", 1, Outcome.DONE, 1, 1)], at=5)
    assert not event.ok and "token 1" in (event.error or "")
    assert store.get("t").status is Status.NEXTUP  # type: ignore[union-attr]


def test_todo_order_is_priority_then_age_with_no_cap(store: Store) -> None:
    """todo returns priority descending then creation ascending, as many as asked."""
    opens = [_open(f"k{i:03}", cat=100 - i, priority=i % 3) for i in range(60)]
    store.apply(opens, at=1)
    todo = store.todo(1000)
    assert len(todo) == 60
    assert [(t.priority, t.cat) for t in todo] == sorted(
        ((t.priority, t.cat) for t in todo), key=lambda pc: (-pc[0], pc[1])
    )
    assert [t.key for t in store.todo(5)] == [t.key for t in todo[:5]]


def test_todo_routes_by_tags(store: Store) -> None:
    """Only tasks whose tags are a subset of the instance's tags are offered."""
    store.apply(
        [
            _open("plain", cat=1),
            _open("gpu", cat=2, tags={"gpu"}),
            _open("gpu-big", cat=3, tags={"gpu", "big"}),
            _open("io", cat=4, tags={"io"}),
        ],
        at=1,
    )
    assert {t.key for t in store.todo(10, tags=frozenset())} == {"plain"}
    assert {t.key for t in store.todo(10, tags=frozenset({"gpu"}))} == {"plain", "gpu"}
    assert {t.key for t in store.todo(10, tags=frozenset({"gpu", "big", "x"}))} == {
        "plain",
        "gpu",
        "gpu-big",
    }
    assert {t.key for t in store.todo(10)} == {"plain", "gpu", "gpu-big", "io"}
    many = frozenset({"gpu", "big", "io", "a", "b", "c", "d", "e"})
    assert [t.key for t in store.todo(10, tags=many)] == ["plain", "gpu", "gpu-big", "io"]


def test_with_status_pages_through_every_task(store: Store) -> None:
    """Paging by key reaches every task of a status, beyond any fixed row count."""
    store.apply([_open(f"k{i:03}", cat=i) for i in range(45)], at=1)
    store.apply([Assign(f"k{i:03}", "i") for i in range(45)], at=2)
    seen: list[str] = []
    after = None
    while page := store.find(TaskQuery(status=Status.NEXTUP, limit=20, after_key=after)):
        seen += [t.key for t in page]
        after = page[-1].key
    assert seen == [f"k{i:03}" for i in range(45)]
    assert len(store.find(TaskQuery(status=Status.NEXTUP, created_before=10))) == 10
    assert store.count(TaskQuery(status=Status.NEXTUP)) == 45


def test_find_and_count_by_every_criterion(store: Store) -> None:
    """find and count agree with TaskQuery.matches for each criterion."""
    store.apply(
        [
            _open(
                f"k{i:02}",
                cat=i * 10,
                priority=i % 5,
                tags={"even"} if i % 2 == 0 else {"odd", "x"},
            )
            for i in range(30)
        ],
        at=1,
    )
    store.apply([Assign(f"k{i:02}", f"inst{i % 3}") for i in range(0, 30, 4)], at=2)
    everything = store.find(TaskQuery(limit=100))
    queries = [
        TaskQuery(status=Status.TODO),
        TaskQuery(status=Status.NEXTUP, assignee="inst1"),
        TaskQuery(created_before=100),
        TaskQuery(created_after=250),
        TaskQuery(created_after=50, created_before=150),
        TaskQuery(tags=frozenset({"odd"})),
        TaskQuery(tags=frozenset({"x", "odd"})),
        TaskQuery(tags=frozenset({"od"})),
        TaskQuery(priority_min=2, priority_max=3),
        TaskQuery(status=Status.DONE),
    ]
    for query in queries:
        expected = [t.key for t in everything if query.matches(t)]
        assert [t.key for t in store.find(query)] == expected, query
        assert store.count(query) == len(expected), query


def test_restartable_and_counts(store: Store) -> None:
    """restartable lists failed tasks with retries left; counts cover every status."""
    store.apply([_open("r", retry=1), _open("n"), _open("t")], at=1)
    store.apply([Assign("r", "i"), Assign("n", "i")], at=2)
    store.apply(
        [
            Close("r", "i", 1, Outcome.FAILED, 1, 1, error="x"),
            Close("n", "i", 1, Outcome.FAILED, 1, 1, error="y"),
        ],
        at=3,
    )
    assert [t.key for t in store.restartable(10)] == ["r"]
    assert store.count_by_status() == {
        Status.TODO: 1,
        Status.NEXTUP: 0,
        Status.DONE: 0,
        Status.FAILED: 2,
        Status.CANCELED: 0,
    }


def test_log_records_every_transition_in_order(store: Store) -> None:
    """Each applied or refused transition is logged with an increasing position."""
    first = store.apply([_open("a"), _open("b")], at=1)
    second = store.apply([Assign("a", "i"), Assign("a", "i")], at=2)
    events = store.events_after(0, 100)
    assert [(e.transition, e.key, e.ok) for e in events] == [
        ("open", "a", True),
        ("open", "b", True),
        ("assign", "a", True),
        ("assign", "a", False),
    ]
    assert [e.position for e in events] == [e.position for e in first + second]
    assert all(a.position < b.position for a, b in itertools.pairwise(events))
    assert store.events_after(events[1].position, 1)[0].position == events[2].position
    assert events[2].task == second[0].task


def test_reopen_overwrites_and_keeps_token(store: Store) -> None:
    """Re-opening resets the registers to a new todo run; the token stays monotonic."""
    store.apply([_open("t", value=1)], at=1)
    store.apply([Assign("t", "i")], at=2)
    [event] = store.apply([_open("t", value=2, priority=9)], at=3)
    assert event.task is not None
    assert (event.task.status, event.task.input_value, event.task.priority) == (Status.TODO, 2, 9)
    assert event.task.token == 1 and event.task.assignee is None


def test_delete(store: Store) -> None:
    """delete removes a task and says whether it existed."""
    store.apply([_open("t")], at=1)
    assert store.delete("t") is True
    assert store.get("t") is None
    assert store.delete("t") is False


def test_prune_log_removes_old_entries_in_batches(store: Store) -> None:
    """prune_log removes at most ``limit`` entries older than ``before``."""
    store.apply([_open("a"), _open("b")], at=1)
    store.apply([_open("c")], at=5)
    assert store.prune_log(before=5, limit=1) == 1
    assert store.prune_log(before=5, limit=10) == 1
    assert [e.key for e in store.events_after(0, 10)] == ["c"]


def test_meta_round_trips_and_replaces(store: Store) -> None:
    """set_meta stores bytes under a name; a second set replaces it; unknown names are None."""
    assert store.get_meta("observer:daily") is None
    store.set_meta("observer:daily", b"\x00one")
    store.set_meta("cursor:x", b"two")
    store.set_meta("observer:daily", b"three")
    assert store.get_meta("observer:daily") == b"three"
    assert store.get_meta("cursor:x") == b"two"


def test_delete_if_checks_each_task_as_it_is_now(store: Store) -> None:
    """delete_if deletes only the listed tasks the predicate accepts, and says which."""
    store.apply([_open("a"), _open("b"), _open("c")], at=1)
    store.apply([Assign("b", "i")], at=2)
    gone = store.delete_if(["a", "b", "missing"], lambda t: t.status is Status.TODO)
    assert gone == ["a"]
    assert store.get("a") is None
    assert store.get("b") is not None and store.get("c") is not None
    assert store.delete_if([], lambda t: True) == []


def test_todo_with_now_leaves_out_tasks_that_are_not_due(store: Store) -> None:
    store.apply(
        [
            Open("later", payload.encode(1), cat=1, priority=9, run_at=500),
            Open("due", payload.encode(2), cat=2, priority=1, run_at=100),
            Open("plain", payload.encode(3), cat=3),
        ],
        at=1,
    )
    assert [t.key for t in store.todo(10, now=200)] == ["due", "plain"]
    assert [t.key for t in store.todo(10, now=500)] == ["later", "due", "plain"]
    assert [t.key for t in store.todo(10)] == ["later", "due", "plain"]


def test_scheduling_fields_round_trip(store: Store) -> None:
    backoff = Backoff(base=2.0, factor=3.0, cap=60.0, jitter=0.25)
    store.apply(
        [Open("k", payload.encode(1), cat=1, run_at=9, unique="u", timeout=1.5, backoff=backoff)],
        at=1,
    )
    store.apply([Age("k", at=5, step=2)], at=5)
    task = store.get("k")
    assert task is not None
    assert (task.run_at, task.unique, task.timeout, task.backoff) == (9, "u", 1.5, backoff)
    assert (task.aged_at, task.priority) == (5, 2)


def test_active_with_unique_finds_only_active_holders(store: Store) -> None:
    store.apply([Open("a", payload.encode(1), cat=1, unique="u")], at=1)
    holder = store.active_with_unique("u")
    assert holder is not None and holder.key == "a"
    assert store.active_with_unique("other") is None
    store.apply([Assign("a", "i"), Close("a", "i", 1, Outcome.DONE, 1, 1)], at=2)
    assert store.active_with_unique("u") is None


def test_waiting_lists_todo_tasks_by_how_long_they_waited(store: Store) -> None:
    store.apply([_open("old", cat=10), _open("new", cat=50), _open("mid", cat=30)], at=1)
    store.apply([Age("old", at=40)], at=40)
    assert [t.key for t in store.waiting(45, 10)] == ["mid", "old"]
    assert [t.key for t in store.waiting(45, 1)] == ["mid"]


def test_nextup_lists_keys_and_assignees_in_pages(store: Store) -> None:
    store.apply([_open(f"k{i}") for i in range(5)], at=1)
    store.apply([Assign(f"k{i}", f"i{i % 2}") for i in (0, 2, 3)], at=2)
    assert store.nextup(2) == [("k0", "i0"), ("k2", "i0")]
    assert store.nextup(10, after_key="k2") == [("k3", "i1")]


def test_canceled_among_gives_key_and_token_of_canceled_tasks_only(store: Store) -> None:
    store.apply([_open("a"), _open("b"), _open("c")], at=1)
    store.apply([Assign("a", "i"), Cancel("a"), Cancel("b")], at=2)
    assert sorted(store.canceled_among(["a", "b", "c", "missing"])) == [("a", 1), ("b", 0)]
    assert store.canceled_among([]) == []
