"""Retention on every backend: final tasks and old log entries go, active tasks stay."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from riaktq_py import Riaktq, payload
from riaktq_py.errors import ConfigError
from riaktq_py.events import TaskEvent
from riaktq_py.observer import Interval, Observation, Observer, Retention
from riaktq_py.store import Store, TaskQuery
from riaktq_py.task import Outcome, Status, Task
from riaktq_py.testing import FakeClock
from riaktq_py.transitions import Assign, Cancel, Close, Open, Transition

S = 1_000_000
DAY = 86_400 * S
NOW = 1_700_000_000 * S


def _open(key: str, cat: int, retry: int = 0) -> Open:
    return Open(key, payload.encode(key), cat=cat, retry=retry)


def _finish(store: Store, key: str, outcome: Outcome, ended: int) -> None:
    store.apply([Assign(key, "w")], at=ended)
    [event] = store.apply([Close(key, "w", 1, outcome, ended - 10, 10, error="x")], at=ended)
    assert event.ok, event.error


def _keys(store: Store) -> set[str]:
    return {t.key for t in store.find(TaskQuery(limit=10_000))}


def test_pruning_removes_only_old_final_tasks(store: Store) -> None:
    """Old done, canceled and finally-failed tasks go; todo, nextup, retryable and recent stay."""
    old, recent = NOW - 10 * DAY, NOW - DAY // 2
    keys = ["done-old", "failed-old", "retry-old", "todo-old", "nextup-old", "canceled-old"]
    store.apply([_open(k, old, retry=1 if k == "retry-old" else 0) for k in keys], at=old)
    store.apply([_open(k, recent) for k in ("done-recent", "done-long-run")], at=recent)
    _finish(store, "done-old", Outcome.DONE, old + S)
    _finish(store, "failed-old", Outcome.FAILED, old + S)
    _finish(store, "retry-old", Outcome.FAILED, old + S)  # failed, but will be restarted
    store.apply([Assign("nextup-old", "w")], at=old)
    store.apply([Cancel("canceled-old")], at=old)
    _finish(store, "done-recent", Outcome.DONE, recent + S)
    store.apply([_open("done-long-run", old)], at=old)  # created long ago, finished recently
    _finish(store, "done-long-run", Outcome.DONE, NOW - S)

    result = Retention(tasks_older_than=7 * 86_400, batch_size=2).run(store, now_us=NOW)

    assert (result.tasks, result.log_entries, result.complete) == (3, 0, True)
    assert _keys(store) == {"retry-old", "todo-old", "nextup-old", "done-recent", "done-long-run"}
    assert store.get("todo-old").status is Status.TODO  # type: ignore[union-attr]
    assert store.get("nextup-old").status is Status.NEXTUP  # type: ignore[union-attr]


def test_pruning_goes_in_bounded_batches(store: Store) -> None:
    """max_batches stops a run with work left (complete=False); the next run finishes it."""
    old = NOW - 30 * DAY
    store.apply([_open(f"k{i:02}", old) for i in range(25)], at=old)
    for i in range(25):
        _finish(store, f"k{i:02}", Outcome.DONE, old + S)
    retention = Retention(tasks_older_than=86_400, batch_size=10, max_batches=2)
    first = retention.run(store, now_us=NOW)
    assert (first.tasks, first.complete) == (20, False)
    assert len(_keys(store)) == 5
    second = retention.run(store, now_us=NOW)
    assert (second.tasks, second.complete) == (5, True)
    assert _keys(store) == set()


def test_log_entries_older_than_the_age_are_pruned(store: Store) -> None:
    """Log pruning removes entries recorded before the cutoff, in batches, and no task."""
    store.apply([_open(f"old{i}", NOW - 3 * DAY) for i in range(7)], at=NOW - 3 * DAY)
    store.apply([_open("new", NOW)], at=NOW)
    result = Retention(log_older_than=86_400, batch_size=3).run(store, now_us=NOW)
    assert (result.tasks, result.log_entries, result.complete) == (0, 7, True)
    assert [e.key for e in store.events_after(0, 100)] == ["new"]
    assert len(_keys(store)) == 8


class ReopensBeforeDelete(Store):
    """A store wrapper that re-opens a task between retention's read and its delete."""

    def __init__(self, inner: Store, key: str) -> None:
        self.inner = inner
        self.key = key
        self.bucket = inner.bucket

    def delete_if(self, keys: Sequence[str], predicate: Callable[[Task], bool]) -> list[str]:
        self.inner.apply([_open(self.key, NOW)], at=NOW)
        return self.inner.delete_if(keys, predicate)

    def apply(
        self, transitions: Sequence[Transition], *, at: int, prepared: object = None
    ) -> list[TaskEvent]:
        return self.inner.apply(transitions, at=at, prepared=prepared)

    def get(self, key: str) -> Task | None:
        return self.inner.get(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, Task]:
        return self.inner.get_many(keys)

    def todo(self, *args: Any, **kwargs: Any) -> list[Task]:
        return self.inner.todo(*args, **kwargs)

    def find(self, query: TaskQuery) -> list[Task]:
        return self.inner.find(query)

    def count(self, query: TaskQuery) -> int:
        return self.inner.count(query)

    def restartable(self, limit: int) -> list[Task]:
        return self.inner.restartable(limit)

    def count_by_status(self) -> dict[Status, int]:
        return self.inner.count_by_status()

    def events_after(self, position: int, limit: int) -> list[TaskEvent]:
        return self.inner.events_after(position, limit)

    def prune_log(self, before: int, limit: int) -> int:
        return self.inner.prune_log(before, limit)

    def delete(self, key: str) -> bool:
        return self.inner.delete(key)

    def close(self) -> None:
        self.inner.close()


def test_a_task_reopened_during_pruning_is_kept(store: Store) -> None:
    """The check is repeated at deletion: a task re-opened after it was read stays."""
    old = NOW - 10 * DAY
    store.apply([_open("a", old), _open("b", old)], at=old)
    _finish(store, "a", Outcome.DONE, old + S)
    _finish(store, "b", Outcome.DONE, old + S)
    racing = ReopensBeforeDelete(store, "a")
    result = Retention(tasks_older_than=86_400).run(racing, now_us=NOW)
    assert result.tasks == 1
    assert _keys(store) == {"a"}
    assert store.get("a").status is Status.TODO  # type: ignore[union-attr]


def test_retention_scheduled_on_the_observer(store: Store) -> None:
    """A Retention is a report: the observer prunes on its schedule and reports the counts."""
    old = NOW - 10 * DAY
    store.apply([_open("a", old)], at=old)
    _finish(store, "a", Outcome.DONE, old + S)
    observation = Observation("retention", Retention(86_400, 86_400), Interval(3600))
    observer = Observer.start(store, FakeClock(NOW), None, [observation], interval=None)
    run = observer.proxy().tick().get(timeout=10).get(timeout=10)
    assert run is not None
    [result] = run.results
    assert result.to_dict() == {
        "key": "retention",
        "at": NOW,
        "tasks": 1,
        "log_entries": 3,
        "complete": True,
    }
    assert _keys(store) == set()


def test_riaktq_prune(store: Store) -> None:
    """Riaktq.prune applies the ages to its own clock's now."""
    clock = FakeClock(NOW - 10 * DAY)
    tq = Riaktq(store, clock=clock, interval=None, debounce=None)
    tq.open("old", 1)
    clock.set(NOW)
    tq.open("new", 2)
    result = tq.prune(tasks_older_than=86_400, log_older_than=86_400)
    assert (result.tasks, result.log_entries) == (0, 1)  # todo tasks are never pruned
    assert _keys(store) == {"old", "new"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tasks_older_than": -1}, "tasks_older_than must be >= 0 seconds"),
        ({"log_older_than": "1d"}, "log_older_than must be >= 0 seconds"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"max_batches": 0}, "max_batches must be an integer >= 1"),
    ],
)
def test_bad_retention_settings_are_named(kwargs: dict[str, object], message: str) -> None:
    """Each invalid setting gives a ConfigError naming it."""
    with pytest.raises(ConfigError, match=message):
        Retention(**kwargs)  # type: ignore[arg-type]
