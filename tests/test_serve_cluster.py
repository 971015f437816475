"""Two ``riaktq serve`` processes on one SQLite file: one scheduler ticks, both run tasks.

Real processes; every wait is on an output line or a store poll with a deadline.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from riaktq_py.store.sqlite import SqliteStore
from riaktq_py.task import Status
from riaktq_py.workers import SCHEDULER_LEASE, SqliteCoordination
from tests.test_faults_support import (
    HEARTBEAT,
    LEASE,
    Proc,
    T,
    assert_done_exactly_once,
    done,
    open_tasks,
    wait_until,
)

ACQUIRED = re.compile(r"scheduler (\S+): lease acquired")


def serve(db: Path, *extra: str, handler: str = "Quiet") -> Proc:
    return Proc(
        db,
        "serve",
        "--handler",
        f"q=tests.test_faults_support:{handler}",
        "--instances",
        "2",
        "--interval",
        "0.3",
        "--lease",
        str(LEASE),
        "--heartbeat",
        str(HEARTBEAT),
        "--dead-after",
        "10",
        *extra,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "q.db"


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.cleanup()


def _leader(store: SqliteStore) -> str | None:
    lease = SqliteCoordination(store).lease_get(SCHEDULER_LEASE)
    return None if lease is None or lease.released else lease.holder


def _registered(store: SqliteStore) -> dict[str, str]:
    """instance -> its process's worker name, for the registered instances."""
    return {
        name: record.worker
        for name, record in SqliteCoordination(store).directory().items()
        if record is not None
    }


def _rollbacks(store: SqliteStore) -> int:
    return sum(1 for e in store.events_after(0, 100_000) if e.transition == "rollback")


def _printed_close(proc: Proc, key: str) -> bool:
    return re.search(rf"close\s+{key}\s+-> done", proc.text("out")) is not None


def test_two_serves_share_the_work_under_one_scheduler(db: Path, procs: list[Proc]) -> None:
    """Both processes' instances run tasks, only one process ticks, each task is done once."""
    first = serve(db)
    procs.append(first)
    first.wait_for("lease acquired")
    first.wait_for("serving ")
    second = serve(db)
    procs.append(second)
    second.wait_for("standing by")
    second.wait_for("serving ")
    store = SqliteStore(str(db))
    try:
        wait_until(lambda: len(_registered(store)) == 4, "four instances registered")
        registered = _registered(store)
        assert sorted(n for n in registered if "@" not in n) == ["q-1", "q-2"]  # the first's
        keys = [f"t{i}" for i in range(40)]
        open_tasks(store, [(k, {"sleep": 0.05}) for k in keys], tags=frozenset({"q"}))
        wait_until(lambda: done(store) == len(keys), "every task done")
        assert_done_exactly_once(store, keys)
        assignees = {t.assignee for t in store.get_many(keys).values()}
        workers = {registered[a] for a in assignees if a is not None}
        assert len(workers) == 2, f"only one process ran tasks: {assignees}"
        assert _rollbacks(store) == 0  # nobody rolled back another's tasks
        assert "lease acquired" not in second.text("out")  # it never ticked
        # every serve prints every transition of the store, whoever made it
        for proc in (first, second):
            wait_until(partial(_printed_close, proc, keys[-1]), f"{proc} printed the close")
    finally:
        store.close()
    for proc in (second, first):
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
        assert "Traceback" not in proc.text("err")
    assert "lease released" in first.text("out")


def test_killing_the_leading_serve_lets_the_other_take_over(db: Path, procs: list[Proc]) -> None:
    """kill -9 of the leader mid-task: the standby takes the lease, reruns what was lost;
    every task ends done exactly once."""
    first = serve(db, handler="Loud")
    procs.append(first)
    first.wait_for("lease acquired")
    second = serve(db, handler="Loud")
    procs.append(second)
    second.wait_for("standing by")
    store = SqliteStore(str(db))
    try:
        wait_until(lambda: len(_registered(store)) == 4, "four instances registered")
        leader = _leader(store)
        keys = [f"t{i}" for i in range(20)]
        open_tasks(store, [(k, {"sleep": 0.2}) for k in keys], tags=frozenset({"q"}))
        first.wait_for("started ")  # the leader's own instances are running tasks
        first.kill()
        line = second.wait_for("lease acquired", timeout=T)
        assert ACQUIRED.search(line) is not None
        wait_until(lambda: done(store) == len(keys), "every task done after the takeover")
        assert_done_exactly_once(store, keys)
        new_leader = _leader(store)
        assert new_leader is not None and new_leader != leader
        assert store.count_by_status()[Status.NEXTUP] == 0
    finally:
        store.close()
    second.signal(signal.SIGTERM)
    assert second.wait() == 0


def test_instances_lists_both_serves(db: Path, procs: list[Proc]) -> None:
    """``riaktq instances`` shows the processes' instances and the one lease holder."""
    first = serve(db)
    procs.append(first)
    first.wait_for("serving ")
    second = serve(db)
    procs.append(second)
    second.wait_for("serving ")
    store = SqliteStore(str(db))
    try:
        wait_until(lambda: len(_registered(store)) == 4, "four instances registered")
    finally:
        store.close()
    lister = Proc(db, "instances", "--json")
    assert lister.wait() == 0
    shown = json.loads(lister.text("out"))
    assert len(shown["instances"]) == 4 and shown["lease"]["released"] is False
    for proc in (first, second):
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
