"""Embedded queues sharing one SQLite file: one scheduler ticks, every queue's instances work.

Two :class:`~riaktq_py.Riaktq` on one file, each with its own connection (as two
processes would be; the serve tests run real processes). Waits are on report
lines, events, or store polls with a deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from riaktq_py import EchoHandler, Riaktq, SqliteStore
from riaktq_py.actors.scheduler import TickRefused
from riaktq_py.errors import ConfigError
from riaktq_py.task import Status
from riaktq_py.testing import FakeClock, drive, run_tick
from riaktq_py.workers import LeaseConfig
from riaktq_py.workers._embedded import CoordinationConfig, coordination_for
from tests.test_faults_support import Quiet, T, assert_done_exactly_once


class Reports:
    """Collects a queue's coordination report lines; a test waits for one."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, line: str) -> None:
        with self._cond:
            self.lines.append(line)
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = T) -> str:
        with self._cond:
            found: list[str] = []

            def seen() -> bool:
                found[:] = [line for line in self.lines if text in line][:1]
                return bool(found)

            if not self._cond.wait_for(seen, timeout):
                raise AssertionError(f"no report line with {text!r} in {timeout} s: {self.lines}")
            return found[0]

    def count(self, text: str) -> int:
        with self._cond:
            return sum(text in line for line in self.lines)


def member(path: Path, reports: Reports) -> Riaktq:
    config = CoordinationConfig(
        lease=LeaseConfig(duration=1.0), heartbeat=0.1, dead_after=10, grace=5.0, report=reports
    )
    tq = Riaktq(SqliteStore(str(path)), interval=0.2, coordinate=config)
    tq.add_handler("q", Quiet(), instances=2)
    return tq


def ticks(tq: Riaktq) -> int:
    assert tq._scheduler is not None
    count: int = tq._scheduler.proxy().ticks.get(timeout=T)
    return count


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "q.db"


@pytest.fixture
def pair(path: Path) -> Iterator[tuple[Riaktq, Reports, Riaktq, Reports]]:
    one_reports, two_reports = Reports(), Reports()
    one, two = member(path, one_reports), member(path, two_reports)
    one.start()
    one_reports.wait_for("lease acquired")
    two.start()
    two_reports.wait_for("standing by")
    yield one, one_reports, two, two_reports
    for tq in (two, one):
        tq.stop()
        tq.store.close()


def test_one_ticks_the_other_stands_by_and_both_run_tasks(
    pair: tuple[Riaktq, Reports, Riaktq, Reports],
) -> None:
    """Tasks opened on the standby run on both queues' instances, each done once, and
    the standby never ticks (no rollback of the other's tasks)."""
    one, _, two, two_reports = pair
    with pytest.raises(TickRefused, match="does not hold the scheduler lease"):
        two.tick(T)
    keys = [f"t{i}" for i in range(30)]
    two.open_many([(k, {"sleep": 0.02}) for k in keys], handler="q")
    finals = [two.wait(k, timeout=T) for k in keys]  # the leader's closes reach the standby
    assert {t.status for t in finals} == {Status.DONE}
    assert_done_exactly_once(one.store, keys)  # type: ignore[arg-type]
    assignees = {t.assignee for t in finals}
    assert {"q-1", "q-2"} & assignees, assignees  # the first queue's instances
    assert any(a is not None and "@" in a for a in assignees), assignees  # the second's
    logged = one.store.events_after(0, 10_000)
    assert [e for e in logged if e.transition == "rollback"] == []
    assert ticks(one) > 0 and ticks(two) == 0
    assert two_reports.count("lease acquired") == 0


def test_the_standby_takes_over_when_the_leader_stops(
    pair: tuple[Riaktq, Reports, Riaktq, Reports],
) -> None:
    one, one_reports, two, two_reports = pair
    one.open("before", 1, handler="q")
    assert one.wait("before", timeout=T).status is Status.DONE
    one.stop()  # drains its instances and releases the lease: no expiry wait
    one_reports.wait_for("lease released")
    two_reports.wait_for("lease acquired")
    two.open("after", 2, handler="q")
    task = two.wait("after", timeout=T)
    assert task.status is Status.DONE and task.output_value == 2
    assert task.assignee is not None and "@" in task.assignee  # only the second runs now
    assert [e for e in two.store.events_after(0, 100) if e.transition == "rollback"] == []


def test_subscribers_see_every_queues_transitions_in_log_order(
    pair: tuple[Riaktq, Reports, Riaktq, Reports],
) -> None:
    one, _, two, _ = pair
    seen: list[int] = []
    arrived = threading.Event()

    def watch(event: object) -> None:
        seen.append(getattr(event, "position", -1))
        if getattr(event, "key", None) == "last" and getattr(event, "transition", "") == "close":
            arrived.set()

    two.subscribe(watch)
    one.open_many([(f"a{i}", i) for i in range(10)], handler="q")
    two.open_many([(f"b{i}", i) for i in range(10)], handler="q")
    one.open("last", 0, handler="q")
    assert arrived.wait(T)
    assert seen == sorted(seen) and len(set(seen)) == len(seen)


def test_a_hand_ticked_coordinated_queue_drives_and_a_second_is_refused(path: Path) -> None:
    """``coordinate=True`` with manual ticks: drive() works through the mailboxes, and a
    second queue on the file cannot tick while the first holds the lease."""
    clock = FakeClock()
    first, second = (
        Riaktq(SqliteStore(str(path)), clock=clock, interval=None, debounce=None, coordinate=True)
        for _ in range(2)
    )
    first.add_handler("echo", EchoHandler(), instances=2)
    second.add_handler("echo", EchoHandler())
    with first, second:
        first.open_many([(f"k{i}", i) for i in range(6)], handler="echo")
        drive(first)
        assert first.store.count_by_status()[Status.DONE] == 6
        with pytest.raises(TickRefused):
            run_tick(second)
    for tq in (first, second):
        tq.store.close()


def test_which_queues_coordinate_by_default(path: Path) -> None:
    memory, shared = SqliteStore(), SqliteStore(str(path))
    try:
        assert coordination_for(memory, None, ticks_itself=True) is None
        assert coordination_for(shared, None, ticks_itself=False) is None  # ticked by hand
        # by default only the scheduler is fenced; instances stay on the direct path
        assert coordination_for(shared, None, ticks_itself=True) == CoordinationConfig(
            share_instances=False
        )
        assert coordination_for(shared, True, ticks_itself=True) == CoordinationConfig()
        assert coordination_for(shared, False, ticks_itself=True) is None
        with pytest.raises(ConfigError, match="needs a SQLite file store"):
            coordination_for(memory, True, ticks_itself=True)
        assert Riaktq(str(path)).coordination is not None  # Riaktq("tasks.db")
        assert Riaktq(str(path), interval=None, debounce=None).coordination is None
    finally:
        memory.close()
        shared.close()


def test_a_queue_whose_names_are_taken_uses_its_own(path: Path) -> None:
    reports = Reports()
    one, two = member(path, reports), member(path, reports)
    with one, two:
        members = [tq._member for tq in (one, two) if tq._member is not None]
        names = [n for m in members for w in m.workers for n in w.names]
        assert names[:2] == ["q-1", "q-2"]
        assert all(n.startswith("q@") for n in names[2:]) and len(set(names)) == 4
    for tq in (one, two):
        tq.store.close()


def test_two_default_queues_on_one_file_never_both_tick(path: Path) -> None:
    """Default embedded queues: the lease fences the scheduler only; the leader's own
    instances (direct path) run every task, tasks opened by the standby included."""
    reports = [Reports(), Reports()]
    queues = []
    for number in range(2):
        config = CoordinationConfig(
            lease=LeaseConfig(duration=1.0), share_instances=False, report=reports[number]
        )
        tq = Riaktq(SqliteStore(str(path)), interval=0.2, coordinate=config)
        tq.add_handler("q", Quiet(), instances=2)
        queues.append(tq)
    one, two = queues
    one.start()
    reports[0].wait_for("lease acquired")
    two.start()
    reports[1].wait_for("standing by")
    try:
        with pytest.raises(TickRefused):
            two.tick(T)
        keys = [f"t{i}" for i in range(20)]
        two.open_many([(k, {"sleep": 0.0}) for k in keys], handler="q")
        finals = [one.wait(k, timeout=T) for k in keys]
        assert {t.status for t in finals} == {Status.DONE}
        assert {t.assignee for t in finals} <= {"q-1", "q-2"}
        assert all(len(t.history) == 1 for t in finals)  # no rollback by a second scheduler
        assert ticks(two) == 0 and ticks(one) > 0
    finally:
        for tq in (two, one):
            tq.stop()
            tq.store.close()
