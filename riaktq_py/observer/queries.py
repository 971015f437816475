"""Report queries (SPEC A5): what the observer runs, and the results it publishes.

A report is anything with ``run(store, *, key, now_us)`` returning a result
that carries the report's ``key``. Three kinds live here:

- :class:`Query`: the tasks matching criteria (status, minimum age, tags,
  assignee, priority range, creation-time window), as (bucket, task key) pairs
  with their exact count. No row caps (SPEC B2): every match is listed unless
  an explicit ``limit`` is given, and then ``count`` still counts them all.
- :class:`StatusCounts`: how many tasks are in each status.
- :class:`WindowStats`: for the tasks that finished in the last ``window``
  seconds, done/failed counts, failure rate and run time (laf) p50/p95/max.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from riaktq_py.errors import ConfigError
from riaktq_py.store.base import Store, TaskQuery
from riaktq_py.task import Status, Task

US = 1_000_000
#: Rows read per store call while paging through matches.
PAGE_SIZE = 1000


class ReportResult(Protocol):
    """What a report produces: published on the query event manager."""

    @property
    def key(self) -> str: ...

    @property
    def at(self) -> int: ...

    def to_dict(self) -> dict[str, Any]: ...


class Report(Protocol):
    """Something the observer can run."""

    def run(self, store: Store, *, key: str, now_us: int) -> ReportResult: ...


def _optional_int(name: str, value: object, minimum: int | None = None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer or None, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")


def _seconds(name: str, value: object, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ConfigError(f"{name} must be {'> 0' if positive else '>= 0'} seconds, got {value}")


def iter_matches(store: Store, query: TaskQuery, page_size: int = PAGE_SIZE) -> Iterator[Task]:
    """Every task matching ``query`` (its limit ignored), paging by key."""
    after = query.after_key
    while True:
        page = store.find(dataclasses.replace(query, limit=page_size, after_key=after))
        yield from page
        if len(page) < page_size:
            return
        after = page[-1].key


@dataclasses.dataclass(frozen=True, slots=True)
class QueryResult:
    """The tasks a query matched: ``count`` is exact even when ``tasks`` is limited."""

    key: str
    at: int
    count: int
    tasks: tuple[tuple[str, str], ...]  # (bucket, task key), ordered by key

    @property
    def truncated(self) -> bool:
        return self.count > len(self.tasks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "at": self.at,
            "count": self.count,
            "tasks": [list(pair) for pair in self.tasks],
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """Tasks matching every given criterion (riaktq's observer query, extended).

    ``age``: created at least that many seconds ago; ``created_after`` /
    ``created_before``: a creation-time window in Unix µs (``cat`` in
    ``[after, before)``); ``tags``: the task has all of them; ``limit``: list at
    most this many (the count stays exact).
    """

    status: Status | None = None
    age: float | None = None
    tags: frozenset[str] | None = None
    assignee: str | None = None
    priority_min: int | None = None
    priority_max: int | None = None
    created_after: int | None = None
    created_before: int | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.status is not None and not isinstance(self.status, Status):
            try:
                object.__setattr__(self, "status", Status(self.status))
            except ValueError:
                known = ", ".join(s.value for s in Status)
                raise ConfigError(f"status must be one of {known}, got {self.status!r}") from None
        if self.age is not None:
            _seconds("age", self.age)
        if self.tags is not None:
            if isinstance(self.tags, str) or not all(isinstance(t, str) and t for t in self.tags):
                raise ConfigError(f"tags must be a set of non-empty strings, got {self.tags!r}")
            object.__setattr__(self, "tags", frozenset(self.tags))
        if self.assignee is not None and not isinstance(self.assignee, str):
            raise ConfigError(f"assignee must be a string, got {self.assignee!r}")
        for name in ("priority_min", "priority_max", "created_after", "created_before"):
            _optional_int(name, getattr(self, name))
        _optional_int("limit", self.limit, 1)
        low, high = self.priority_min, self.priority_max
        if low is not None and high is not None and low > high:
            raise ConfigError(f"priority_min {low} is above priority_max {high}")
        after, before = self.created_after, self.created_before
        if after is not None and before is not None and after >= before:
            raise ConfigError(f"created_after {after} must be before created_before {before}")

    def task_query(self, now_us: int) -> TaskQuery:
        """The store query at ``now_us`` (the age becomes a creation-time bound)."""
        before = self.created_before
        if self.age is not None:
            aged = now_us - round(self.age * US) + 1  # cat <= now - age
            before = aged if before is None else min(before, aged)
        return TaskQuery(
            status=self.status,
            created_before=before,
            created_after=self.created_after,
            tags=self.tags,
            assignee=self.assignee,
            priority_min=self.priority_min,
            priority_max=self.priority_max,
        )

    def run(self, store: Store, *, key: str, now_us: int) -> QueryResult:
        query = self.task_query(now_us)
        limit = self.limit
        keys: list[str] = []
        page_size = PAGE_SIZE if limit is None else min(limit, PAGE_SIZE)
        for task in iter_matches(store, query, page_size):
            keys.append(task.key)
            if len(keys) == limit:
                break
        exhausted = limit is None or len(keys) < limit
        count = len(keys) if exhausted else store.count(query)
        return QueryResult(key, now_us, count, tuple((store.bucket, k) for k in keys))


@dataclasses.dataclass(frozen=True, slots=True)
class StatusCountsResult:
    key: str
    at: int
    counts: dict[Status, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "at": self.at,
            "counts": {s.value: self.counts.get(s, 0) for s in Status},
        }


@dataclasses.dataclass(frozen=True, slots=True)
class StatusCounts:
    """How many tasks are in each status."""

    def run(self, store: Store, *, key: str, now_us: int) -> StatusCountsResult:
        return StatusCountsResult(key, now_us, store.count_by_status())


def finished_at(task: Task) -> int:
    """When a done or failed task's last attempt ended (its creation time if unknown)."""
    if task.sat is not None and task.laf is not None:
        return task.sat + task.laf
    return task.cat


def percentile(ordered: list[int], pct: float) -> int | None:
    """Nearest-rank percentile of an ascending list (``None`` when empty)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclasses.dataclass(frozen=True, slots=True)
class WindowStatsResult:
    """Tasks that finished in ``[start, end)``: counts, failure rate, laf (µs) percentiles."""

    key: str
    at: int
    start: int
    end: int
    done: int
    failed: int
    laf_p50: int | None
    laf_p95: int | None
    laf_max: int | None

    @property
    def failure_rate(self) -> float | None:
        finished = self.done + self.failed
        return None if finished == 0 else self.failed / finished

    def to_dict(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        fields["failure_rate"] = self.failure_rate
        return fields


def window_stats(
    key: str, tasks: Iterable[Task], start: int, end: int, at: int
) -> WindowStatsResult:
    """Aggregate the given tasks that finished (done or failed) in ``[start, end)``."""
    done = failed = 0
    lafs: list[int] = []
    for task in tasks:
        if task.status not in (Status.DONE, Status.FAILED) or not start <= finished_at(task) < end:
            continue
        if task.status is Status.DONE:
            done += 1
        else:
            failed += 1
        if task.laf is not None:
            lafs.append(task.laf)
    lafs.sort()
    return WindowStatsResult(
        key,
        at,
        start,
        end,
        done,
        failed,
        percentile(lafs, 50),
        percentile(lafs, 95),
        lafs[-1] if lafs else None,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class WindowStats:
    """Done/failed counts, failure rate and laf p50/p95/max over the last ``window`` s.

    A task counts when its current status is done or failed and its last
    attempt ended (``sat + laf``) inside the window. Every done and failed task
    created before the window's end is read (paged): no sampling, no cap.
    """

    window: float = 86_400.0

    def __post_init__(self) -> None:
        _seconds("window", self.window, positive=True)

    def run(self, store: Store, *, key: str, now_us: int) -> WindowStatsResult:
        start, end = now_us - round(self.window * US), now_us + 1
        tasks = (
            task
            for status in (Status.DONE, Status.FAILED)
            for task in iter_matches(store, TaskQuery(status=status, created_before=end))
        )
        return window_stats(key, tasks, start, end, now_us)
