"""The observer in queues sharing one SQLite file: only the lease holder runs reports.

The slots served are shared in the store (``observer:<name>`` meta), so an
observer in every process would let one process serve a slot another's query
subscribers never see, or let two both run it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from riaktq_py import Riaktq, SqliteStore, Status
from riaktq_py.actors.scheduler import TickRefused
from riaktq_py.observer import Interval, Query
from riaktq_py.testing import FakeClock
from tests.test_faults_support import T


def test_only_the_lease_holder_runs_reports(tmp_path: Path) -> None:
    path = str(tmp_path / "q.db")
    clock = FakeClock()
    first, second = (
        Riaktq(SqliteStore(path), clock=clock, interval=None, debounce=None, coordinate=True)
        for _ in range(2)
    )
    for tq in (first, second):
        tq.observe("waiting", Query(status=Status.TODO), Interval(60))
    with first, second:  # the first takes the lease
        first.open("k", 1)
        with pytest.raises(TickRefused, match="does not hold the scheduler lease"):
            second.observer_tick(T)
        run = first.observer_tick(T)
        assert run is not None and [r.key for r in run.results] == ["waiting"]
        clock.advance(60)
        with pytest.raises(TickRefused):
            second.observer_tick(T)
        run = first.observer_tick(T)
        assert run is not None and len(run.results) == 1
    for tq in (first, second):
        tq.store.close()
