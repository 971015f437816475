"""Recurring schedules end to end: a Riaktq ticked by hand on a fake clock.

Misfire and overlap policies, exactly-once occurrences across a scheduler
restart, pause/resume, and the occurrence records and events.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from riaktq_py import (
    OccurrenceOutcome,
    Riaktq,
    ScheduleEvent,
    SqliteScheduleStore,
    SqliteStore,
    Status,
    Task,
    TaskEvent,
)
from riaktq_py.engine import Engine
from riaktq_py.schedules import occurrence_key
from riaktq_py.schedules.step import ScheduleStep
from riaktq_py.store.base import TaskQuery
from riaktq_py.testing import EventCapture, FakeClock, drive, run_tick
from tests.schedule_helpers import SECOND, T0, Gate, opened_dues, outcomes, queue


def _schedule_tasks(tq: Riaktq, name: str) -> list[str]:
    return [
        t.key for t in tq.store.find(TaskQuery(limit=10_000)) if t.key.startswith(f"sched:{name}:")
    ]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def test_an_interval_schedule_opens_one_task_per_occurrence(clock: FakeClock) -> None:
    """Every 60 s a task ``sched:<name>:<UTC ISO time>`` with the schedule's input runs."""
    with queue(clock=clock) as tq:
        tq.add_schedule("ping", interval=60, handler="echo", input={"n": 1}, priority=3)
        assert run_tick(tq).steps[-1] == ("schedules", 0)  # nothing due at creation
        for minute in (1, 2, 3):
            clock.set(T0 + minute * 60 * SECOND)
            drive(tq)
        keys = _schedule_tasks(tq, "ping")
        assert keys == [
            "sched:ping:2024-01-01T00:01:00Z",
            "sched:ping:2024-01-01T00:02:00Z",
            "sched:ping:2024-01-01T00:03:00Z",
        ]
        task = tq.get(keys[0])
        assert task is not None and task.status is Status.DONE
        assert task.output_value == {"n": 1} and task.priority == 3 and task.tags == {"echo"}
        assert outcomes(tq.occurrences("ping")) == [
            (60, "opened", "on time", 1),
            (120, "opened", "on time", 1),
            (180, "opened", "on time", 1),
        ]
        assert tq.get_schedule("ping").last_due == T0 + 180 * SECOND


def test_misfire_skip_records_the_missed_run_and_opens_only_the_current_one(
    clock: FakeClock,
) -> None:
    with queue(clock=clock) as tq:
        tq.add_schedule("m", interval=60, handler="echo")
        clock.set(T0 + 610 * SECOND)  # nine occurrences came and went with no tick
        run_tick(tq)
        records = tq.occurrences("m")
        assert outcomes(records) == [(60, "skipped", "misfire", 9), (600, "opened", "on time", 1)]
        assert records[0].until == T0 + 540 * SECOND
        assert _schedule_tasks(tq, "m") == [occurrence_key("m", T0 + 600 * SECOND)]


def test_misfire_latest_runs_the_latest_missed_occurrence_once(clock: FakeClock) -> None:
    with queue(clock=clock) as tq:
        tq.add_schedule("l", interval=300, handler="echo", misfire="latest")
        clock.set(T0 + 1000 * SECOND)  # 300, 600 and 900 missed; none on time
        run_tick(tq)
        assert outcomes(tq.occurrences("l")) == [
            (300, "skipped", "misfire", 2),
            (900, "opened", "catch-up", 1),
        ]
        assert _schedule_tasks(tq, "l") == [occurrence_key("l", T0 + 900 * SECOND)]


def test_misfire_latest_prefers_an_occurrence_that_is_on_time(clock: FakeClock) -> None:
    with queue(clock=clock) as tq:
        tq.add_schedule("l", interval=60, handler="echo", misfire="latest")
        clock.set(T0 + 610 * SECOND)
        run_tick(tq)
        assert outcomes(tq.occurrences("l")) == [
            (60, "skipped", "misfire", 9),
            (600, "opened", "on time", 1),
        ]


def test_misfire_all_runs_every_occurrence_within_the_catch_up_window(clock: FakeClock) -> None:
    with queue(clock=clock) as tq:
        tq.add_schedule(
            "a", interval=60, handler="echo", misfire="all", catchup=180, overlap="allow"
        )
        clock.set(T0 + 610 * SECOND)
        run_tick(tq)
        records = tq.occurrences("a")
        assert outcomes(records) == [
            (60, "skipped", "misfire", 7),  # 60 .. 420: older than 180 s
            (480, "opened", "catch-up", 1),  # late by 130 s: more than the 60 s grace
            (540, "opened", "catch-up", 1),
            (600, "opened", "on time", 1),
        ]
        assert "catch-up window of 180 s" in records[0].reason
        assert len(_schedule_tasks(tq, "a")) == 3


def test_misfire_all_with_overlap_skip_opens_one_while_it_waits(clock: FakeClock) -> None:
    """Catch-up occurrences still respect the overlap policy (the first is still todo)."""
    with queue(clock=clock) as tq:
        tq.add_schedule("a", interval=60, tags=["nobody-runs-this"], misfire="all", catchup=150)
        clock.set(T0 + 310 * SECOND)
        run_tick(tq)
        assert outcomes(tq.occurrences("a")) == [
            (60, "skipped", "misfire", 2),
            (180, "opened", "catch-up", 1),
            (240, "skipped", "overlap", 1),
            (300, "skipped", "overlap", 1),
        ]


def test_overlap_skip_waits_for_the_previous_run_to_finish(clock: FakeClock) -> None:
    gate = Gate()
    tq = queue(clock=clock)
    tq.add_handler("slow", gate)
    with tq:
        tq.add_schedule("o", interval=60, handler="slow")
        clock.set(T0 + 60 * SECOND)
        run_tick(tq)  # opened and assigned: the handler runs (nextup) until the gate opens
        assert gate.started.wait(10)
        clock.set(T0 + 120 * SECOND)
        run_tick(tq)
        gate.open.set()
        drive(tq)
        clock.set(T0 + 180 * SECOND)
        drive(tq)
        records = tq.occurrences("o")
        assert outcomes(records) == [
            (60, "opened", "on time", 1),
            (120, "skipped", "overlap", 1),
            (180, "opened", "on time", 1),
        ]
        first = occurrence_key("o", T0 + 60 * SECOND)
        assert records[1].reason == f"overlap: previous occurrence {first!r} is nextup"
        assert [tq.get(k).status for k in _schedule_tasks(tq, "o")] == [Status.DONE] * 2  # type: ignore[union-attr]


def test_overlap_allow_opens_while_the_previous_run_is_still_going(clock: FakeClock) -> None:
    gate = Gate()
    tq = queue(clock=clock)
    tq.add_handler("slow", gate, capacity=2)
    with tq:
        tq.add_schedule("o", interval=60, handler="slow", overlap="allow")
        clock.set(T0 + 60 * SECOND)
        run_tick(tq)
        assert gate.started.wait(10)
        clock.set(T0 + 120 * SECOND)
        run_tick(tq)
        assert [r.outcome for r in tq.occurrences("o")] == [OccurrenceOutcome.OPENED] * 2
        gate.open.set()
        drive(tq)
        assert len(_schedule_tasks(tq, "o")) == 2


def test_each_occurrence_happens_once_across_a_scheduler_restart(tmp_path: Path) -> None:
    """Stop the queue, start a new one on the same file and tick at the same fake time."""
    path = str(tmp_path / "q.db")
    clock = FakeClock(T0)
    with queue(SqliteStore(path), clock) as first:
        first.add_schedule("r", interval=60, handler="echo")
        clock.set(T0 + 60 * SECOND)
        drive(first)
    with queue(SqliteStore(path), clock) as second:
        drive(second)
        assert _schedule_tasks(second, "r") == [occurrence_key("r", T0 + 60 * SECOND)]
        assert outcomes(second.occurrences("r")) == [(60, "opened", "on time", 1)]
        clock.set(T0 + 120 * SECOND)
        drive(second)
        assert len(_schedule_tasks(second, "r")) == 2


def test_a_crash_before_recording_does_not_open_the_occurrence_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task was opened, then the scheduler died before recording it: the next
    scheduler's attempt to open the same occurrence is refused (Open only_new)."""
    path = str(tmp_path / "q.db")
    clock = FakeClock(T0)

    def crash(*args: object) -> bool:
        raise RuntimeError("power cut")

    with queue(SqliteStore(path), clock) as first, monkeypatch.context() as patch:
        patch.setattr(SqliteScheduleStore, "advance", crash)
        first.add_schedule("r", interval=60, tags=["elsewhere"])
        clock.set(T0 + 60 * SECOND)
        assert run_tick(first).steps[-1] == ("schedules", 0)  # the step crashed for "r"
        assert first.occurrences("r") == []
    key = occurrence_key("r", T0 + 60 * SECOND)
    with queue(SqliteStore(path), clock) as second:
        events = EventCapture()
        second.subscribe(events)
        run_tick(second)
        refused = events.wait_for(lambda e: isinstance(e, TaskEvent) and e.key == key)
        assert refused.transition == "open" and refused.error == (
            f"open {key!r}: expected no task, found todo"
        )
        assert _schedule_tasks(second, "r") == [key]
        assert outcomes(second.occurrences("r")) == [(60, "opened", "already opened", 1)]
        assert second.get_schedule("r").last_task == key


def test_two_schedulers_on_one_file_open_each_occurrence_once(tmp_path: Path) -> None:
    path = str(tmp_path / "q.db")
    clock = FakeClock(T0)
    with queue(SqliteStore(path), clock) as one, queue(SqliteStore(path), clock) as two:
        one.add_schedule("f", interval=60, tags=["elsewhere"], overlap="allow")
        for minute in range(1, 6):
            clock.set(T0 + minute * 60 * SECOND)
            run_tick(one if minute % 2 else two)
            run_tick(two if minute % 2 else one)
        assert len(_schedule_tasks(one, "f")) == 5
        assert len(opened_dues(one.occurrences("f"))) == 5


def test_paused_occurrences_are_recorded_as_skipped_and_resume_goes_on(clock: FakeClock) -> None:
    with queue(clock=clock) as tq:
        tq.add_schedule("p", interval=60, handler="echo")
        clock.set(T0 + 30 * SECOND)
        assert tq.pause_schedule("p").paused
        clock.set(T0 + 130 * SECOND)
        run_tick(tq)  # 60 and 120 are due while paused
        clock.set(T0 + 200 * SECOND)
        resumed = tq.resume_schedule("p")  # 180 came with no tick: still a paused one
        assert not resumed.paused and resumed.resumed_at == T0 + 200 * SECOND
        clock.set(T0 + 240 * SECOND)
        drive(tq)
        assert outcomes(tq.occurrences("p")) == [
            (60, "skipped", "paused", 2),
            (180, "skipped", "paused", 1),
            (240, "opened", "on time", 1),
        ]
        assert _schedule_tasks(tq, "p") == [occurrence_key("p", T0 + 240 * SECOND)]


def test_skipped_occurrences_are_published_and_opened_ones_are_open_events(
    clock: FakeClock,
) -> None:
    with queue(clock=clock) as tq:
        events = EventCapture()
        tq.subscribe(events)
        tq.add_schedule("e", interval=60, handler="echo")
        clock.set(T0 + 310 * SECOND)
        run_tick(tq)
        skipped = events.wait_for(lambda e: isinstance(e, ScheduleEvent))
        assert skipped.transition == "occurrence_skipped" and skipped.schedule == "e"
        assert skipped.key == occurrence_key("e", T0 + 60 * SECOND) and skipped.task is None
        assert skipped.occurrence.count == 4 and skipped.reason.startswith("misfire")
        key = occurrence_key("e", T0 + 300 * SECOND)
        opened = events.wait_for(lambda e: isinstance(e, TaskEvent) and e.key == key)
        assert opened.transition == "open" and opened.position > 0  # in the transition log
        logged = [(e.transition, e.key) for e in tq.store.events_after(0, 10)]
        assert logged[:2] == [
            ("open", key),  # opened, then the run's records (the skip among them) written
            ("occurrence_skipped", occurrence_key("e", T0 + 60 * SECOND)),
        ]
        logged_skip = tq.store.events_after(0, 10)[1]
        assert logged_skip.task is None and (logged_skip.error or "").startswith("misfire")


def test_wait_is_not_disturbed_by_schedule_events(clock: FakeClock) -> None:
    """``wait`` (a task-event subscriber) keeps working when a ScheduleEvent goes by."""
    gate = Gate()
    tq = queue(clock=clock)
    tq.add_handler("slow", gate)
    with tq:
        tq.add_schedule("w", interval=60, handler="slow")
        clock.set(T0 + 60 * SECOND)
        run_tick(tq)
        assert gate.started.wait(10)
        manager = tq._events
        assert manager is not None
        waited: list[Task] = []
        waiter = threading.Thread(
            target=lambda: waited.append(tq.wait(occurrence_key("w", T0 + 60 * SECOND), 10))
        )
        waiter.start()
        deadline = time.monotonic() + 10
        while manager.proxy().subscribers().get(timeout=10) == 0:  # until wait subscribed
            assert time.monotonic() < deadline
        clock.set(T0 + 310 * SECOND)
        run_tick(tq)  # publishes ScheduleEvents: misfire 120..240, overlap 300
        gate.open.set()
        drive(tq)
        waiter.join(15)
        assert [t.status for t in waited] == [Status.DONE]


def test_every_occurrence_is_accounted_for(clock: FakeClock) -> None:
    """Over a day with downtime, a pause and an overlap, the records cover each due time once."""
    with queue(clock=clock) as tq:
        tq.add_schedule("acc", interval=600, tags=["nobody"], misfire="latest", overlap="allow")
        for step in range(1, 145):  # a tick every 10 min, with gaps
            if 30 <= step < 50:
                continue  # scheduler down
            if step == 80:
                tq.pause_schedule("acc")
            if step == 90:
                tq.resume_schedule("acc")
            clock.set(T0 + step * 600 * SECOND)
            run_tick(tq)
        audit = tq.schedules.audit("acc")
        assert audit.expected == 144 and audit.unrecorded == ()
        assert audit.opened + audit.skipped == 144
        assert audit.opened == len(_schedule_tasks(tq, "acc"))


def test_a_change_made_by_another_process_is_seen_at_the_next_tick(tmp_path: Path) -> None:
    """The step skips schedules with nothing due, but notices a schedule changed elsewhere."""
    path = str(tmp_path / "q.db")
    clock = FakeClock(T0)
    with queue(SqliteStore(path), clock) as scheduler:
        admin = queue(SqliteStore(path), clock)  # another process: the API only, not started
        admin.add_schedule("x", interval=600, tags=["elsewhere"])
        clock.set(T0 + 60 * SECOND)
        run_tick(scheduler)  # nothing due before 600 s
        admin.update_schedule("x", interval=120)  # from now (60 s): next at 180 s
        clock.set(T0 + 180 * SECOND)
        run_tick(scheduler)
        admin.pause_schedule("x")
        clock.set(T0 + 300 * SECOND)
        run_tick(scheduler)
        assert outcomes(scheduler.occurrences("x")) == [
            (180, "opened", "on time", 1),
            (300, "skipped", "paused", 1),
        ]
        admin.store.close()


class _CountingStore(SqliteStore):
    """Counts the single-task reads (``get``) made through it."""

    gets = 0

    def get(self, key: str) -> Task | None:
        self.gets += 1
        return super().get(key)


@pytest.mark.parametrize(("overlap", "reads"), [("allow", 0), ("skip", 1)])
def test_the_step_reads_tasks_only_for_overlap_skip(
    clock: FakeClock, overlap: str, reads: int
) -> None:
    """Overlap ``allow`` reads no task; ``skip`` reads only the last task of a previous tick
    (an occurrence it opens is known from its open event)."""
    store = _CountingStore()
    with queue(store, clock=clock) as tq:
        tq.add_schedule(
            "r", interval=60, tags=["nobody"], misfire="all", catchup=600, overlap=overlap
        )
        clock.set(T0 + 190 * SECOND)
        step = ScheduleStep(SqliteScheduleStore(store))
        engine = Engine(store, clock)
        store.gets = 0
        step.run(engine)
        clock.set(T0 + 250 * SECOND)
        step.run(engine)
        assert store.gets == reads
        opened = [r for r in tq.occurrences("r") if r.outcome is OccurrenceOutcome.OPENED]
        assert len(opened) == (4 if overlap == "allow" else 1)
