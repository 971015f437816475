"""Schedules through the API: validation errors, CRUD, and the schedule store contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from riaktq_py import (
    ConfigError,
    MemoryScheduleStore,
    Misfire,
    Occurrence,
    OccurrenceOutcome,
    Overlap,
    RecurringSchedule,
    ScheduleExists,
    ScheduleNotFound,
    ScheduleStep,
    ScheduleStore,
    SqliteScheduleStore,
    SqliteStore,
    UnencodablePayload,
    UnknownHandler,
)
from riaktq_py.engine import Engine
from riaktq_py.testing import FakeClock, run_tick
from tests.backends import riak_double
from tests.schedule_helpers import SECOND, T0, outcomes, queue


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cron": "61 * * * *"}, r"invalid cron expression '61 \* \* \* \*': .*out of range"),
        ({"cron": "* * * *"}, r"invalid cron expression '\* \* \* \*': it needs 5 fields"),
        ({"cron": "0 0 * * * 5"}, r"it needs 5 fields \(minute hour day-of-month"),
        ({"cron": "@reboot"}, r"invalid cron expression '@reboot': unknown alias"),
        ({"cron": "0 0 31 2 *"}, r"invalid cron expression '0 0 31 2 \*': it never matches"),
        ({"cron": "bad cron here x y"}, r"invalid cron expression 'bad cron here x y'"),
        ({"cron": ""}, r"cron must be a non-empty string"),
        ({"cron": "0 * * * *", "timezone": "Mars/Olympus"}, r"unknown timezone 'Mars/Olympus'"),
        ({"cron": "0 * * * *", "timezone": "../etc"}, r"unknown timezone '../etc'"),
        ({"interval": 0}, r"interval \(seconds\) must be >= 1, got 0"),
        ({"interval": -60}, r"interval \(seconds\) must be >= 1, got -60"),
        ({"interval": 1.5}, r"interval \(seconds\) must be an integer, got 1.5"),
        ({"interval": True}, r"interval \(seconds\) must be an integer, got True"),
        ({"interval": "60"}, r"interval \(seconds\) must be an integer, got '60'"),
        ({}, r"needs either cron \(with timezone\) or interval, not neither"),
        ({"cron": "* * * * *", "interval": 60}, r"not both"),
        ({"interval": 60, "misfire": "sometimes"}, r"misfire must be one of skip, latest, all"),
        ({"interval": 60, "overlap": "queue"}, r"overlap must be one of skip, allow, got 'queue'"),
        ({"interval": 60, "misfire": "all"}, r"misfire 'all' needs a catch-up window"),
        ({"interval": 60, "catchup": 60}, r"catchup is only used with misfire 'all'"),
        ({"interval": 60, "misfire": "all", "catchup": 0}, r"catchup \(seconds\) must be >= 1"),
        ({"interval": 60, "retry": -1}, r"retry must be >= 0, got -1"),
        ({"interval": 60, "priority": "high"}, r"priority must be an integer"),
        ({"interval": 60, "tags": "echo"}, r"tags must be a list of strings"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_error(options: dict[str, Any], message: str) -> None:
    tq = queue()
    with pytest.raises(ConfigError, match=message):
        tq.add_schedule("s", handler="echo", **options)
    assert tq.list_schedules() == []


@pytest.mark.parametrize("name", ["", "has space", "sched:colon", "-leading", "x" * 201, 7])
def test_bad_names_are_refused(name: Any) -> None:
    with pytest.raises(ConfigError, match="schedule name must be 1 to 200 letters"):
        queue().add_schedule(name, interval=60, handler="echo")


def test_routing_input_and_handler_errors() -> None:
    tq = queue()
    with pytest.raises(ConfigError, match="needs a handler or tags"):
        tq.add_schedule("s", interval=60)
    with pytest.raises(UnknownHandler, match=r"unknown handler 'nope' \(registered: echo\)"):
        tq.add_schedule("s", interval=60, handler="nope")
    with pytest.raises(UnencodablePayload, match="input of schedule 's'"):
        tq.add_schedule("s", interval=60, handler="echo", input=object())
    tq.add_schedule("s", interval=60, handler="echo")
    with pytest.raises(ScheduleExists, match="a schedule named 's' exists already"):
        tq.add_schedule("s", cron="* * * * *", handler="echo")
    with pytest.raises(ScheduleNotFound, match="no schedule 'missing'"):
        tq.get_schedule("missing")
    with pytest.raises(ScheduleNotFound):
        tq.pause_schedule("missing")


def test_crud_round_trip() -> None:
    clock = FakeClock(T0)
    tq = queue(clock=clock)
    made = tq.add_schedule(
        "report", cron="0  9 * * mon-fri", timezone="Europe/Berlin", handler="echo",
        tags=["eu"], input={"to": ["a@b"]}, priority=2, retry=3, misfire=Misfire.LATEST,
    )  # fmt: skip
    assert made.cron == "0 9 * * mon-fri"  # normalised
    assert tq.get_schedule("report") == made
    assert made.input_value == {"to": ["a@b"]} and made.task_tags == {"echo", "eu"}
    clock.advance(10)
    updated = tq.update_schedule("report", input=[1], priority=5, overlap="allow")
    assert (updated.input_value, updated.priority, updated.overlap) == ([1], 5, Overlap.ALLOW)
    assert updated.start == made.start  # same timing
    assert tq.update_schedule("report", interval=3600).start == T0 + 10 * SECOND
    assert tq.get_schedule("report").cron is None
    with pytest.raises(ConfigError, match="cannot update created, paused"):
        tq.update_schedule("report", created=1, paused=True)
    with pytest.raises(ConfigError, match="invalid cron"):
        tq.update_schedule("report", cron="nope")
    assert tq.get_schedule("report").interval == 3600
    tq.add_schedule("another", interval=60, tags=["x"])
    assert [s.name for s in tq.list_schedules()] == ["another", "report"]
    assert tq.delete_schedule("report") and not tq.delete_schedule("report")
    assert [s.name for s in tq.list_schedules()] == ["another"]


def test_update_away_from_misfire_all_clears_the_catch_up_window() -> None:
    tq = queue()
    tq.add_schedule("c", interval=60, tags=["x"], misfire="all", catchup=300)
    updated = tq.update_schedule("c", misfire="latest")
    assert (updated.misfire, updated.catchup) == (Misfire.LATEST, None)
    assert tq.get_schedule("c").catchup is None


def test_update_refuses_a_string_for_tags() -> None:
    tq = queue()
    tq.add_schedule("s", interval=60, tags=["eu"])
    with pytest.raises(ConfigError, match="tags must be a list of strings, not 'abc'"):
        tq.update_schedule("s", tags="abc")
    assert tq.get_schedule("s").tags == {"eu"}


def test_an_unknown_setting_is_refused() -> None:
    settings: dict[str, Any] = {"interval": 60, "tags": ["x"], "priorty": 3}
    with pytest.raises(TypeError, match=r"unexpected schedule setting.*priorty"):
        queue().add_schedule("u", **settings)


def test_occurrences_are_read_by_pages_and_the_newest_kept() -> None:
    clock = FakeClock(T0)
    with queue(clock=clock) as tq:
        tq.add_schedule("n", interval=60, tags=["nobody"], overlap="allow")
        for minute in range(1, 6):
            clock.set(T0 + minute * 60 * SECOND)
            run_tick(tq)
        dues = [T0 + m * 60 * SECOND for m in range(1, 6)]
        store = tq.schedules.store
        assert [r.due for r in store.iter_occurrences("n", page_size=2)] == dues
        assert [r.due for r in store.iter_occurrences("n", after=dues[2], page_size=1)] == dues[3:]
        assert [r.due for r in tq.schedules.newest("n", 2)] == dues[3:]
        assert tq.schedules.audit("n", until=dues[3]).opened == 4
        with pytest.raises(ScheduleNotFound):
            tq.schedules.newest("missing", 2)


def test_changing_the_timing_starts_it_afresh_from_the_change() -> None:
    clock = FakeClock(T0)
    with queue(clock=clock) as tq:
        tq.add_schedule("t", interval=60, handler="echo")
        clock.set(T0 + 90 * SECOND)
        run_tick(tq)  # the 60 s occurrence
        tq.update_schedule("t", interval=300)
        clock.set(T0 + 300 * SECOND)
        run_tick(tq)  # nothing: the new timing counts from 90 s
        clock.set(T0 + 390 * SECOND)
        run_tick(tq)
        assert outcomes(tq.occurrences("t")) == [(60, "opened", "on time", 1),
                                                  (390, "opened", "on time", 1)]  # fmt: skip


def test_deleting_a_schedule_keeps_its_tasks_and_a_new_one_starts_afresh() -> None:
    clock = FakeClock(T0)
    with queue(clock=clock) as tq:
        tq.add_schedule("d", interval=60, tags=["elsewhere"])
        clock.set(T0 + 60 * SECOND)
        run_tick(tq)
        assert tq.delete_schedule("d")
        assert tq.get("sched:d:2024-01-01T00:01:00Z") is not None
        clock.set(T0 + 90 * SECOND)
        tq.add_schedule("d", interval=60, tags=["elsewhere"])
        assert tq.occurrences("d") == []
        clock.set(T0 + 120 * SECOND)
        run_tick(tq)
        assert outcomes(tq.occurrences("d")) == []  # first occurrence: 60 s after re-creation
        clock.set(T0 + 150 * SECOND)
        run_tick(tq)
        assert outcomes(tq.occurrences("d")) == [(150, "opened", "on time", 1)]


def test_the_riak_store_says_schedules_are_not_implemented(tmp_path: Path) -> None:
    with riak_double(tmp_path) as store:
        tq = queue(store)
        with pytest.raises(ConfigError, match="RiakStore has no schedule storage yet"):
            tq.add_schedule("s", interval=60, handler="echo")
        with tq:  # the queue runs without the schedules step
            assert [name for name, _ in run_tick(tq).steps] == ["aging"]


@pytest.fixture(params=["memory", "sqlite"])
def schedules(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ScheduleStore]:
    if request.param == "memory":
        yield MemoryScheduleStore()
    else:
        store = SqliteStore(str(tmp_path / "s.db"))
        yield SqliteScheduleStore(store)
        store.close()


def _record(due: int, outcome: OccurrenceOutcome = OccurrenceOutcome.OPENED) -> Occurrence:
    return Occurrence("s", due, outcome, "on time", due, f"sched:s:{due}", due)


def test_store_contract(schedules: ScheduleStore) -> None:
    schedule = RecurringSchedule.new("s", now_us=T0, interval=60, tags=["t"])
    schedules.add(schedule)
    with pytest.raises(ScheduleExists):
        schedules.add(schedule)
    assert schedules.get("s") == schedule and schedules.get("nope") is None
    assert schedules.advance(schedule, T0 + 120, "k2", [_record(T0 + 60), _record(T0 + 120)])
    assert schedules.advance(schedule, T0 + 60, None, [_record(T0 + 60, OccurrenceOutcome.SKIPPED)])
    stored = schedules.get("s")
    assert stored is not None and (stored.last_due, stored.last_task) == (T0 + 120, "k2")
    assert [r.outcome for r in schedules.occurrences("s")] == [OccurrenceOutcome.OPENED] * 2
    assert schedules.occurrences("s", after=T0 + 60) == [_record(T0 + 120)]
    assert schedules.occurrences("s", limit=1) == [_record(T0 + 60)]
    assert schedules.update(schedule.replace(priority=9, paused=True))  # state is kept
    stored = schedules.get("s")
    assert stored is not None and (stored.priority, stored.paused, stored.last_due) == (
        9, True, T0 + 120,
    )  # fmt: skip
    assert not schedules.update(schedule.replace(created=T0 + 1))  # another incarnation
    assert schedules.delete("s") and schedules.get("s") is None and schedules.occurrences("s") == []
    assert not schedules.advance(schedule, T0 + 180, None, [_record(T0 + 180)])
    assert schedules.occurrences("s") == [] and not schedules.delete("s")


def test_the_step_works_on_a_memory_store_and_an_engine() -> None:
    """The step needs only a ScheduleStore and an Engine (no Riaktq)."""
    clock = FakeClock(T0)
    store = SqliteStore()
    schedules = MemoryScheduleStore()
    schedules.add(RecurringSchedule.new("m", now_us=T0, cron="*/5 * * * *", tags=["x"]))
    step = ScheduleStep(schedules, grace=0)
    engine = Engine(store, clock)
    assert step.run(engine) == 0
    clock.set(T0 + 300 * SECOND)
    assert step.run(engine) == 1 and step.run(engine) == 0
    assert store.get("sched:m:2024-01-01T00:05:00Z") is not None
    clock.set(T0 + 601 * SECOND)  # grace 0: the 600 s occurrence is one second late
    assert step.run(engine) == 0
    assert outcomes(schedules.occurrences("m")) == [(300, "opened", "on time", 1),
                                                     (600, "skipped", "misfire", 1)]  # fmt: skip


@pytest.mark.parametrize(("grace", "limit"), [(-1, 10), (1, 0), (1, True)])
def test_step_settings_are_checked(grace: float, limit: Any) -> None:
    with pytest.raises(ConfigError):
        ScheduleStep(MemoryScheduleStore(), grace=grace, limit=limit)
