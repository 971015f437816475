"""Report queries on every store backend: results equal a direct store query, no caps."""

from __future__ import annotations

import pykka
import pytest

from riaktq_py import payload
from riaktq_py.actors.event_manager import EventManager
from riaktq_py.errors import ConfigError
from riaktq_py.observer import (
    Interval,
    Observation,
    Observer,
    Query,
    QueryResult,
    StatusCounts,
    WindowStats,
)
from riaktq_py.observer.queries import percentile
from riaktq_py.store import Store, TaskQuery
from riaktq_py.task import Outcome, Status, Task
from riaktq_py.testing import EventCapture, FakeClock
from riaktq_py.transitions import Assign, Close, Open

S = 1_000_000
NOW = 1_700_000_000 * S


def _open(key: str, cat: int, priority: int = 0, tags: frozenset[str] = frozenset()) -> Open:
    return Open(key, payload.encode(key), cat=cat, priority=priority, tags=tags)


def _all_tasks(store: Store) -> list[Task]:
    tasks: list[Task] = []
    after = None
    while page := store.find(TaskQuery(limit=100, after_key=after)):
        tasks += page
        after = page[-1].key
    return tasks


def _populate(store: Store) -> None:
    """60 tasks: mixed ages, priorities, tags; some assigned, some done, some failed."""
    store.apply(
        [
            _open(
                f"t{i:02}",
                cat=NOW - i * 60 * S,
                priority=i % 7 - 3,
                tags=frozenset({"gpu"} if i % 3 == 0 else {"io", "net"} if i % 3 == 1 else set()),
            )
            for i in range(60)
        ],
        at=NOW,
    )
    store.apply([Assign(f"t{i:02}", f"worker-{i % 2}") for i in range(0, 60, 2)], at=NOW)
    store.apply(
        [
            Close(f"t{i:02}", f"worker-{i % 2}", 1, Outcome.DONE, NOW, i * 1000)
            for i in range(0, 60, 4)
        ],
        at=NOW,
    )
    store.apply(
        [
            Close(f"t{i:02}", f"worker-{i % 2}", 1, Outcome.FAILED, NOW, 5, error="x")
            for i in range(2, 60, 8)
        ],
        at=NOW,
    )


QUERIES = {
    "todo": Query(status=Status.TODO),
    "old-todo": Query(status="todo", age=30 * 60),  # type: ignore[arg-type]
    "gpu": Query(tags=frozenset({"gpu"})),
    "io-net": Query(tags=frozenset({"net", "io"})),
    "worker-0": Query(assignee="worker-0"),
    "mid-priority": Query(priority_min=-1, priority_max=1),
    "window": Query(created_after=NOW - 20 * 60 * S, created_before=NOW - 10 * 60 * S),
    "done-old-high": Query(status=Status.DONE, age=600, priority_min=0),
    "nothing": Query(status=Status.NEXTUP, tags=frozenset({"gpu"}), assignee="nobody"),
}


def test_observer_results_equal_a_direct_store_query(store: Store) -> None:
    """Each published result lists exactly the tasks the store query matches, with the count."""
    _populate(store)
    every = _all_tasks(store)
    events = EventManager.start("query-events")
    capture = EventCapture()
    events.proxy().subscribe(capture).get(timeout=10)
    observations = [Observation(k, q, Interval(60)) for k, q in QUERIES.items()]
    observer = Observer.start(store, FakeClock(NOW), events.proxy(), observations, interval=None)
    run = observer.proxy().tick().get(timeout=10).get(timeout=10)
    assert run is not None and run.failures == ()
    published = capture.wait_count(lambda r: True, len(QUERIES))
    assert [r.key for r in published] == list(QUERIES)
    for result in published:
        assert isinstance(result, QueryResult)
        query = QUERIES[result.key].task_query(NOW)
        expected = [(store.bucket, t.key) for t in every if query.matches(t)]
        assert list(result.tasks) == expected, result.key
        assert result.count == len(expected) == store.count(query), result.key
        assert not result.truncated
    by_key = {r.key: r for r in published}
    assert by_key["todo"].count == 30 and by_key["nothing"].count == 0
    assert all(int(k[1:]) >= 30 for _, k in by_key["old-todo"].tasks)  # created >= 30 min ago
    pykka.ActorRegistry.stop_all(timeout=10)


def test_no_row_cap_and_an_explicit_limit_keeps_the_count_exact(store: Store) -> None:
    """2,345 matches are all listed (beyond any page size); limit=10 lists 10, counts all."""
    store.apply([_open(f"k{i:05}", cat=i) for i in range(2345)], at=NOW)
    everything = Query(status=Status.TODO).run(store, key="all", now_us=NOW)
    assert everything.count == len(everything.tasks) == 2345
    assert [k for _, k in everything.tasks] == [f"k{i:05}" for i in range(2345)]
    limited = Query(status=Status.TODO, limit=10).run(store, key="first-ten", now_us=NOW)
    assert [k for _, k in limited.tasks] == [f"k{i:05}" for i in range(10)]
    assert limited.count == 2345 and limited.truncated
    roomy = Query(limit=5000).run(store, key="roomy", now_us=NOW)
    assert (roomy.count, len(roomy.tasks), roomy.truncated) == (2345, 2345, False)
    assert roomy.to_dict()["tasks"][0] == [store.bucket, "k00000"]


def test_age_is_created_at_least_that_long_ago(store: Store) -> None:
    """age=60 matches a task created exactly 60 s ago, not one created 59.999999 s ago."""
    store.apply([_open("exact", NOW - 60 * S), _open("younger", NOW - 60 * S + 1)], at=NOW)
    result = Query(age=60).run(store, key="aged", now_us=NOW)
    assert result.tasks == ((store.bucket, "exact"),)


def test_status_counts(store: Store) -> None:
    """Counts per status, every status present."""
    _populate(store)
    result = StatusCounts().run(store, key="counts", now_us=NOW)
    assert result.counts == store.count_by_status()
    assert result.to_dict()["counts"] == {
        **{s.value: 0 for s in Status},
        "todo": 30,
        "nextup": 7,
        "done": 15,
        "failed": 8,
    }


def test_window_stats_count_finished_tasks_and_laf_percentiles(store: Store) -> None:
    """Only tasks that ended inside the window count; laf p50/p95/max over them."""
    hour = 3600 * S
    store.apply([_open(f"d{i:03}", cat=NOW - 2 * hour) for i in range(100)], at=NOW)
    store.apply([_open(f"f{i}", cat=NOW - 2 * hour) for i in range(4)], at=NOW)
    store.apply([_open("old", cat=NOW - 9 * hour), _open("waiting", cat=NOW - hour)], at=NOW)
    keys = [f"d{i:03}" for i in range(100)] + [f"f{i}" for i in range(4)] + ["old"]
    store.apply([Assign(k, "w") for k in keys], at=NOW)
    start = NOW - hour
    store.apply(
        [Close(f"d{i:03}", "w", 1, Outcome.DONE, start + i, (i + 1) * 1000) for i in range(100)]
        + [Close(f"f{i}", "w", 1, Outcome.FAILED, start, 500_000, error="x") for i in range(4)]
        + [Close("old", "w", 1, Outcome.DONE, NOW - 8 * hour, 1)],  # ended before the window
        at=NOW,
    )
    result = WindowStats(window=3600).run(store, key="last-hour", now_us=NOW)
    assert (result.done, result.failed) == (100, 4)
    assert result.failure_rate == pytest.approx(4 / 104)
    lafs = sorted([(i + 1) * 1000 for i in range(100)] + [500_000] * 4)
    assert (result.laf_p50, result.laf_p95, result.laf_max) == (
        lafs[51],  # nearest rank: ceil(0.5 * 104) = 52nd
        lafs[98],  # ceil(0.95 * 104) = 99th
        500_000,
    )
    empty = WindowStats(window=60).run(store, key="quiet", now_us=NOW + 10 * hour)
    assert (empty.done, empty.failed, empty.failure_rate, empty.laf_max) == (0, 0, None, None)
    assert empty.to_dict()["failure_rate"] is None


def test_percentile_is_nearest_rank() -> None:
    """p50 of 1..10 is 5, p95 is 10, p100 is the max; an empty list has none."""
    values = list(range(1, 11))
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (5, 10, 10)
    assert percentile([7], 50) == 7 and percentile([], 50) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "running"}, "status must be one of todo, nextup"),
        ({"age": -1}, "age must be >= 0 seconds"),
        ({"age": "1h"}, "age must be a number of seconds"),
        ({"tags": "gpu"}, "tags must be a set of non-empty strings"),
        ({"priority_min": 3, "priority_max": 1}, "priority_min 3 is above priority_max 1"),
        ({"created_after": 10, "created_before": 10}, "created_after 10 must be before"),
        ({"limit": 0}, "limit must be >= 1"),
        ({"limit": 2.5}, "limit must be an integer"),
    ],
)
def test_bad_queries_are_refused_with_the_problem_named(
    kwargs: dict[str, object], message: str
) -> None:
    """Each invalid criterion gives a ConfigError that names it."""
    with pytest.raises(ConfigError, match=message):
        Query(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="window must be > 0 seconds"):
        WindowStats(window=0)
