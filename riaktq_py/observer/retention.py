"""Retention: prune finished tasks and old log entries, in bounded batches.

Only *final* tasks go: done, canceled, or failed with no retries left, whose
last attempt ended (for a task that never ran: was created) more than
``tasks_older_than`` seconds ago. The check is repeated by the
store at deletion time (:meth:`Store.delete_if`), so a task re-opened or
restarted meanwhile is left alone; todo and nextup tasks are never touched.
Log entries recorded more than ``log_older_than`` seconds ago are removed
oldest first. Each store write handles at most ``batch_size`` rows, so pruning
a large backlog never holds the store for long; ``max_batches`` bounds the
writes (deletion batches) of one run.

A :class:`Retention` is also a report: scheduled on the observer it prunes on
that schedule and publishes a :class:`PruneResult`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from riaktq_py.errors import ConfigError
from riaktq_py.observer.queries import US, finished_at
from riaktq_py.store.base import Store, TaskQuery
from riaktq_py.task import ACTIVE, Status, Task, is_final

#: Statuses retention looks in (failed ones still need retry <= 0).
FINISHED = tuple(s for s in Status if s not in ACTIVE)


def finished_before(cutoff_us: int) -> Callable[[Task], bool]:
    """The deletion check: final and finished before ``cutoff_us``."""

    def check(task: Task) -> bool:
        return is_final(task) and finished_at(task) < cutoff_us

    return check


@dataclasses.dataclass(frozen=True, slots=True)
class PruneResult:
    """How many tasks and log entries one prune removed."""

    key: str
    at: int
    tasks: int
    log_entries: int
    complete: bool  # False when max_batches stopped it with more left

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class Retention:
    """What to prune; ``None`` keeps that kind forever."""

    tasks_older_than: float | None = None
    log_older_than: float | None = None
    batch_size: int = 500
    max_batches: int | None = None

    def __post_init__(self) -> None:
        for name in ("tasks_older_than", "log_older_than"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ConfigError(f"{name} must be >= 0 seconds (or None), got {value!r}")
        for name, value, allow_none in (
            ("batch_size", self.batch_size, False),
            ("max_batches", self.max_batches, True),
        ):
            if value is None and allow_none:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")

    def run(self, store: Store, *, key: str = "prune", now_us: int) -> PruneResult:
        budget = _Budget(self.max_batches)
        tasks = log_entries = 0
        complete = True
        if self.tasks_older_than is not None:
            cutoff = now_us - round(self.tasks_older_than * US)
            tasks, done = _prune_tasks(store, cutoff, self.batch_size, budget)
            complete = complete and done
        if self.log_older_than is not None:
            cutoff = now_us - round(self.log_older_than * US)
            log_entries, done = _prune_log(store, cutoff, self.batch_size, budget)
            complete = complete and done
        return PruneResult(key, now_us, tasks, log_entries, complete)


class _Budget:
    """Batches left in one run (``None``: unbounded)."""

    def __init__(self, batches: int | None) -> None:
        self.left = batches

    def take(self) -> bool:
        if self.left is None:
            return True
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def _prune_tasks(store: Store, cutoff: int, batch_size: int, budget: _Budget) -> tuple[int, bool]:
    check = finished_before(cutoff)
    removed = 0
    for status in FINISHED:
        after: str | None = None
        while True:
            # finished_at >= cat, so tasks created after the cutoff cannot qualify
            page = store.find(
                TaskQuery(status=status, created_before=cutoff, limit=batch_size, after_key=after)
            )
            keys = [task.key for task in page if check(task)]
            if keys:
                if not budget.take():
                    return removed, False
                removed += len(store.delete_if(keys, check))
            if len(page) < batch_size:
                break
            after = page[-1].key
    return removed, True


def _prune_log(store: Store, cutoff: int, batch_size: int, budget: _Budget) -> tuple[int, bool]:
    removed = 0
    while True:
        if not budget.take():
            return removed, False
        gone = store.prune_log(cutoff, batch_size)
        removed += gone
        if gone < batch_size:
            return removed, True
