"""Schedule health: keeping up, behind when the scheduler stops ticking, paused, counts."""

from __future__ import annotations

from typing import Any

import pytest

from riaktq_py.errors import ConfigError
from riaktq_py.observer import Interval, Observation, Observer
from riaktq_py.observer.health import ScheduleHealth, ScheduleHealthResult
from riaktq_py.testing import FakeClock, drive, run_tick
from tests.schedule_helpers import SECOND, T0, queue

MINUTE = 60 * SECOND


def test_schedule_health_reports_keeping_up_then_behind() -> None:
    """Ticking: not behind, counts and last task status; no ticks for 5 min: behind."""
    clock = FakeClock(T0)
    with queue(clock=clock) as tq:
        tq.add_schedule("ping", interval=60, handler="echo")
        tq.add_schedule("broken", interval=60, tags=["nobody-runs-this"])
        tq.add_schedule("resting", interval=60, handler="echo", paused=True)
        for minute in (1, 2, 3):
            clock.set(T0 + minute * MINUTE)
            drive(tq)
        health = ScheduleHealth(window=3600, grace=90).run(tq.store, key="h", now_us=clock.now_us())
        by_name = {s.name: s for s in health.schedules}
        assert health.behind == ()
        ping = by_name["ping"]
        assert (ping.opened, ping.skipped, ping.last_due) == (3, 0, T0 + 3 * MINUTE)
        assert ping.last_task_status == "done" and ping.overdue is None
        broken = by_name["broken"]  # its first task never runs: later ones are overlap-skipped
        assert (broken.opened, broken.skipped, broken.last_task_status) == (1, 2, "todo")
        assert by_name["resting"].paused and by_name["resting"].skipped == 3

        clock.set(T0 + 8 * MINUTE)  # five occurrences pass with no tick
        stalled = ScheduleHealth(grace=90).run(tq.store, key="h", now_us=clock.now_us())
        assert stalled.behind == ("broken", "ping")  # the paused one is never behind
        assert {s.name: s.overdue for s in stalled.schedules}["ping"] == T0 + 4 * MINUTE
        run_tick(tq)
        assert ScheduleHealth(grace=90).run(tq.store, key="h", now_us=clock.now_us()).behind == ()

        recent = ScheduleHealth(window=150).run(tq.store, key="h", now_us=T0 + 3 * MINUTE)
        assert {s.name: s.opened for s in recent.schedules}["ping"] == 3  # due in (30 s, 180 s]
        narrow = ScheduleHealth(window=90).run(tq.store, key="h", now_us=T0 + 3 * MINUTE)
        assert {s.name: s.opened for s in narrow.schedules}["ping"] == 2


def test_schedule_health_on_the_observer() -> None:
    """Scheduled like any report; its result lists every schedule."""
    clock = FakeClock(T0)
    tq = queue(clock=clock)
    tq.add_schedule("ping", interval=60, handler="echo")
    observation = Observation("health", ScheduleHealth(), Interval(60))
    observer = Observer.start(tq.store, clock, None, [observation], interval=None)
    run = observer.proxy().tick().get(timeout=10).get(timeout=10)
    assert run is not None
    [result] = run.results
    assert isinstance(result, ScheduleHealthResult)
    info = result.to_dict()
    assert [s["name"] for s in info["schedules"]] == ["ping"] and info["behind"] == []


def test_bad_health_settings_are_named() -> None:
    """window must be > 0 and grace >= 0 seconds."""
    with pytest.raises(ConfigError, match="window must be > 0 seconds"):
        ScheduleHealth(window=0)
    with pytest.raises(ConfigError, match="grace must be >= 0 seconds"):
        ScheduleHealth(grace=-1)


def test_schedule_health_reads_the_last_tasks_in_one_get_many(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock(T0)
    with queue(clock=clock) as tq:
        tq.add_schedule("ping", interval=60, handler="echo")
        tq.add_schedule("broken", interval=60, tags=["nobody-runs-this"])
        tq.add_schedule("new", interval=3600, handler="echo")  # no task yet
        clock.set(T0 + MINUTE)
        drive(tq)
        asked: list[list[str]] = []
        get_many = tq.store.get_many

        def counted(keys: list[str]) -> Any:
            asked.append(sorted(keys))
            return get_many(keys)

        def no_get(key: str) -> None:
            raise AssertionError(f"one read per schedule ({key!r})")

        monkeypatch.setattr(tq.store, "get_many", counted)
        monkeypatch.setattr(tq.store, "get", no_get)
        health = ScheduleHealth().run(tq.store, key="h", now_us=clock.now_us())
        statuses = {s.name: s.last_task_status for s in health.schedules}
        assert statuses == {"broken": "todo", "new": None, "ping": "done"}
        assert asked == [
            sorted(["sched:ping:2024-01-01T00:01:00Z", "sched:broken:2024-01-01T00:01:00Z"])
        ]
