"""RiakStore specifics: index repair and verification, log gaps, search, store URLs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from riaktq_py import payload
from riaktq_py.errors import ConfigError, StoreError
from riaktq_py.store import SqliteStore, TaskQuery
from riaktq_py.store.riak import MapOps, RiakStore
from riaktq_py.store.riak import messages as pb
from riaktq_py.store.riak.index import FIELD, Entry
from riaktq_py.store.url import open_store
from riaktq_py.task import Status
from riaktq_py.transitions import Assign, Open
from tests.riak_double import RiakDouble


@pytest.fixture
def node() -> Iterator[RiakDouble]:
    with RiakDouble() as double:
        yield double


@pytest.fixture
def riak(node: RiakDouble) -> Iterator[RiakStore]:
    store = RiakStore([node.node], shards=4)
    yield store
    store.close()


def _open(key: str, cat: int = 0, **kw: Any) -> Open:
    return Open(key, payload.encode(key), cat=cat, **kw)


def _shard(store: RiakStore, status: Status, key: str) -> frozenset[bytes]:
    value = store.client.fetch(store.index.bucket, store.index.shard(status, key))
    return frozenset() if value is None else value.sets.get(FIELD, frozenset())


def _updates_to(bucket: bytes) -> Any:
    return lambda code, request: code == pb.DT_UPDATE_REQ and request.bucket == bucket


def test_index_is_sharded_per_status(riak: RiakStore, node: RiakDouble) -> None:
    """Entries spread over the status's shard keys; no one object holds them all."""
    riak.apply([_open(f"k{i}", cat=i) for i in range(40)], at=1)
    keys = {key for (_, bucket, key) in node.maps if bucket == "task.index"}
    assert keys == {f"todo/{n}" for n in range(4)}
    sizes = [len(_shard(riak, Status.TODO, k)) for k in ("k0",)]
    assert 0 < sizes[0] < 40
    assert (
        sum(
            len(node.maps[("riaktq_task_t", "task.index", k)][(FIELD, pb.SET)].elements)
            for k in keys
        )
        == 40
    )


def test_a_failed_task_write_leaves_the_index_usable(riak: RiakStore, node: RiakDouble) -> None:
    """A crash after the index add and before the task write: the task is still found where
    it is; the entry of the write that never landed is skipped, then dropped on the next write."""
    riak.apply([_open("t", cat=1)], at=1)
    node.fail_if = _updates_to(b"task")
    with pytest.raises(StoreError, match="update task/t"):
        riak.apply([Assign("t", "i")], at=2)
    node.fail_if = None
    assert len(_shard(riak, Status.NEXTUP, "t")) == 1  # the in-flight entry
    assert [t.key for t in riak.todo(10)] == ["t"]
    assert riak.find(TaskQuery(status=Status.NEXTUP)) == []
    assert len(_shard(riak, Status.NEXTUP, "t")) == 1  # in flight (newer rev): kept
    [event] = riak.apply([Assign("t", "j")], at=3)
    assert event.ok and [t.assignee for t in riak.find(TaskQuery(status=Status.NEXTUP))] == ["j"]
    assert [Entry.decode(Status.NEXTUP, e).assignee for e in _shard(riak, Status.NEXTUP, "t")] == [
        "j"
    ]
    assert _shard(riak, Status.TODO, "t") == frozenset()


def test_stale_entries_are_verified_away_on_read(riak: RiakStore) -> None:
    """An entry whose task moved on is not returned, and is removed; one whose task
    does not exist is not returned but kept (it may be a task being created right now:
    dropping it lost that task for good), until repair() removes it."""
    riak.apply([_open("a", cat=1), _open("b", cat=2)], at=1)
    task = riak.get("a")
    assert task is not None
    ghost = Entry.of(task.replace(key="ghost"), 1)
    old = Entry.of(task.replace(priority=9), 0)  # an older rev of "a"
    riak.index.add([ghost, old])
    assert [t.key for t in riak.todo(10)] == ["a", "b"]
    assert old.encode() not in _shard(riak, Status.TODO, "a")
    assert ghost.encode() in _shard(riak, Status.TODO, "ghost")
    assert riak.repair(["ghost"]) == 1
    assert ghost.encode() not in _shard(riak, Status.TODO, "ghost")


def test_failed_index_removal_is_repaired(riak: RiakStore, node: RiakDouble) -> None:
    """If removing the old entry fails, reads ignore it; repair() removes it for good."""
    riak.apply([_open("t")], at=1)
    node.fail_if = lambda code, request: (
        code == pb.DT_UPDATE_REQ
        and request.bucket == b"task.index"
        and bool(request.op.map_op.updates[0].set_op.removes)
    )
    with pytest.raises(StoreError):
        riak.apply([Assign("t", "i")], at=2)
    node.fail_if = None
    assert len(_shard(riak, Status.TODO, "t")) == 1
    assert riak.count_by_status()[Status.TODO] == 0  # the latest rev wins in counts
    assert riak.repair(["t"]) == 1
    assert _shard(riak, Status.TODO, "t") == frozenset()
    assert riak.repair(["t"]) == 0


def test_a_key_recreated_after_a_failed_unindexing_outranks_its_old_entry(
    riak: RiakStore, node: RiakDouble
) -> None:
    """delete fails to remove the old entry; the key is opened again: the leftover entry of
    its earlier life is not taken for a write in flight (counts and todo see the new task)."""
    riak.apply([_open("t", cat=1)], at=1)
    riak.apply([Assign("t", "i")], at=2)
    node.fail_if = _updates_to(b"task.index")
    with pytest.raises(StoreError):
        riak.delete("t")
    node.fail_if = None
    riak.apply([_open("t", cat=3)], at=3)
    counts = riak.count_by_status()
    assert (counts[Status.TODO], counts[Status.NEXTUP]) == (1, 0)
    assert [t.key for t in riak.todo(10)] == ["t"]
    assert riak.find(TaskQuery(status=Status.NEXTUP)) == []
    assert _shard(riak, Status.NEXTUP, "t") == frozenset()  # verified away as stale


def test_delete_if_and_repair_touch_each_shard_once(riak: RiakStore, node: RiakDouble) -> None:
    """Deleting or repairing many keys reads/updates each index shard once, not once per key."""
    riak.apply([_open(f"k{i:02}", cat=i) for i in range(40)], at=1)
    shards = riak.index.shards
    node.requests.clear()
    assert riak.repair(f"k{i:02}" for i in range(20, 40)) == 0
    task_fetches = 20
    assert len(node.requests) == task_fetches + len(Status) * shards
    node.requests.clear()
    assert len(riak.delete_if([f"k{i:02}" for i in range(20)], lambda task: True)) == 20
    assert len(node.requests) == 20 * 2 + 2 * shards  # fetch + delete each; shard fetch + update
    assert riak.count_by_status()[Status.TODO] == 20
    assert sorted(t.key for t in riak.todo(100)) == [f"k{i:02}" for i in range(20, 40)]


def test_repair_from_log_reindexes_every_logged_task(riak: RiakStore) -> None:
    """repair_from_log re-adds entries lost from the index (e.g. two writers racing)."""
    riak.apply([_open("a"), _open("b")], at=1)
    shard = riak.index.shard(Status.TODO, "a")
    value = riak.client.fetch(riak.index.bucket, shard)
    assert value is not None
    riak.client.update(
        riak.index.bucket, shard, MapOps().discard(FIELD, value.sets[FIELD]), context=value.context
    )
    assert "a" not in [t.key for t in riak.todo(10)]
    assert riak.repair_from_log(0) >= 1
    assert sorted(t.key for t in riak.todo(10)) == ["a", "b"]


def test_log_steps_over_a_gap_left_by_a_failed_write(riak: RiakStore, node: RiakDouble) -> None:
    """Positions taken by a crashed writer stay gaps; later events keep increasing positions."""
    riak.apply([_open("a")], at=1)
    node.fail_if = lambda code, request: (
        code == pb.DT_UPDATE_REQ and request.bucket == b"task.log" and request.key != b"head"
    )
    with pytest.raises(StoreError):
        riak.apply([_open("b")], at=2)
    node.fail_if = None
    riak.apply([_open("c")], at=3)
    events = riak.events_after(0, 10)
    assert [(e.key, e.position) for e in events] == [("a", 1), ("c", 3)]
    assert riak.events_after(1, 1)[0].key == "c"


def test_a_write_failing_mid_batch_logs_the_tasks_already_written(
    riak: RiakStore, node: RiakDouble
) -> None:
    """One task write of a batch fails: the tasks written before it changed, so their events
    are in the log; the failed and later ones are neither written nor logged."""
    node.fail_if = lambda code, request: (
        code == pb.DT_UPDATE_REQ and request.bucket == b"task" and request.key == b"k3"
    )
    with pytest.raises(StoreError, match="update task/k3"):
        riak.apply([_open(f"k{i}", cat=i) for i in range(5)], at=1)
    node.fail_if = None
    assert sorted(riak.get_many([f"k{i}" for i in range(5)])) == ["k0", "k1", "k2"]
    assert [e.key for e in riak.events_after(0, 10)] == ["k0", "k1", "k2"]


def test_log_reader_stops_at_the_committed_position(riak: RiakStore) -> None:
    """Positions handed out but not committed are not read yet (a write in flight)."""
    riak.apply([_open("a")], at=1)
    riak.client.update(riak.log.bucket, "head", MapOps().increment("next", 5))
    assert [e.key for e in riak.events_after(0, 10)] == ["a"]


def test_delete_removes_task_and_entry(riak: RiakStore) -> None:
    """delete leaves no index entry behind."""
    riak.apply([_open("t")], at=1)
    assert riak.delete("t")
    assert _shard(riak, Status.TODO, "t") == frozenset()


def test_todo_now_skips_tasks_not_yet_due(riak: RiakStore) -> None:
    """todo(now=...) leaves out tasks whose run_at is later."""
    task = riak.apply([_open("a", cat=1)], at=1)[0].task
    assert task is not None
    if not hasattr(task, "run_at"):
        pytest.skip("Task has no run_at")
    later: dict[str, Any] = {"run_at": 100}
    riak.apply([Open("later", b"\xc0", cat=2, **later)], at=1)
    assert [t.key for t in riak.todo(10, now=50)] == ["a"]
    assert [t.key for t in riak.todo(10, now=100)] == ["a", "later"]


def test_verifying_fetches_no_more_tasks_than_the_limit_needs(
    riak: RiakStore, node: RiakDouble
) -> None:
    """todo(1) over many entries reads the shards and fetches one task, not a whole chunk."""
    riak.apply([_open(f"k{i:03}", cat=i) for i in range(100)], at=1)
    node.requests.clear()
    assert [t.key for t in riak.todo(1)] == ["k000"]
    assert len(node.requests) == riak.index.shards + 1


def test_unique_and_waiting_read_the_index_not_every_task(
    riak: RiakStore, node: RiakDouble
) -> None:
    """active_with_unique and waiting filter the index entries, then fetch only candidates."""
    riak.apply([_open(f"k{i:03}", cat=i, unique=f"u{i}") for i in range(200)], at=1)
    node.requests.clear()
    assert riak.active_with_unique("nope") is None
    assert len(node.requests) == 2 * riak.index.shards  # the todo and nextup shards only
    holder = riak.active_with_unique("u7")
    assert holder is not None and holder.key == "k007"
    node.requests.clear()
    assert [t.key for t in riak.waiting(1000, 3)] == ["k000", "k001", "k002"]
    assert len(node.requests) < 100


# -- search (Yokozuna) ---------------------------------------------------------


def test_search_queries_use_riaktqs_schema_fields(node: RiakDouble) -> None:
    """todo asks Solr for status_register:todo sorted by priority then cat, in this bucket."""
    node.indexes["riaktq_task"] = "riaktq_task_t"
    store = RiakStore([node.node], search_index="riaktq_task")
    store.apply(
        [_open("a", cat=2, priority=1), _open("b", cat=1, priority=1), _open("c", cat=0)], at=1
    )
    assert [t.key for t in store.todo(10)] == ["b", "a", "c"]
    [(_, search)] = [(c, r) for c, r in node.requests if c == pb.SEARCH_QUERY_REQ]
    assert search.filter == b"_yz_rb:task AND status_register:todo"
    assert search.sort == b"priority_register desc,cat_register asc,_yz_rk asc"
    assert not any(bucket == "task.index" for (_, bucket, _) in node.maps)
    store.close()


def test_search_todo_now_skips_a_delayed_task_before_the_limit(node: RiakDouble) -> None:
    """With limit 1, a delayed higher-priority task does not hide the due one behind it."""
    node.indexes["riaktq_task"] = "riaktq_task_t"
    store = RiakStore([node.node], search_index="riaktq_task")
    store.apply([_open("late", cat=0, priority=9, run_at=100), _open("due", cat=1)], at=1)
    assert [t.key for t in store.todo(1, now=50)] == ["due"]
    assert [t.key for t in store.todo(1, now=100)] == ["late"]
    store.close()


# -- store URLs ------------------------------------------------------------------


def test_riak_url_selects_riak_store_with_options(node: RiakDouble) -> None:
    """riak://h:p,h:p/type/bucket?opts builds a RiakStore on those nodes."""
    store = open_store(
        f"riak://{node.url_host},127.0.0.1:1/riaktq_task_t/jobs"
        "?pool=2&timeout=1.5&shards=8&pr=one&w=2"
    )
    assert isinstance(store, RiakStore)
    assert [str(n) for n in store.nodes] == [node.url_host, "127.0.0.1:1"]
    assert (store.bucket_type, store.bucket, store.index.shards) == ("riaktq_task_t", "jobs", 8)
    assert (store.client.pool.size, store.client.pool.timeout) == (2, 1.5)
    assert (store.client.quorum.pr, store.client.quorum.w) == ("one", 2)
    store.ping()
    store.close()


def test_sqlite_urls_and_plain_paths(tmp_path: Any) -> None:
    """sqlite:///path, sqlite://:memory: and a plain path select SQLite."""
    for url in (
        f"sqlite://{tmp_path}/a.db",
        "sqlite://:memory:",
        str(tmp_path / "b.db"),
        ":memory:",
    ):
        store = open_store(url)
        assert isinstance(store, SqliteStore)
        store.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "non-empty"),
        ("redis://x/y", "unknown scheme 'redis'"),
        ("riak:///t/b", "no host:port"),
        ("riak://h:8087/onlytype", "/bucket_type/bucket"),
        ("riak://h:notaport/t/b", "not host:port"),
        ("riak://h:8087/t/b?pool=0", "pool must be > 0"),
        ("riak://h:8087/t/b?timeout=soon", "timeout must be a number"),
        ("riak://h:8087/t/b?colour=red", "unknown riak option"),
        ("riak://h:8087/t/b?pr=most", "pr must be"),
        ("riak://h:8087/t/b?pr=0", r"^store URL .*: riak pr must be >= 1"),
        ("riak://h:8087/t/b?timeout=inf", "timeout must be a finite number"),
        ("riak://h:8087/t/b?timeout=nan", "timeout must be a finite number"),
        ("sqlite://", "no path"),
    ],
)
def test_bad_urls_name_the_problem(url: str, problem: str) -> None:
    """A bad store URL is a ConfigError that says what is wrong."""
    with pytest.raises(ConfigError, match=problem):
        open_store(url)
