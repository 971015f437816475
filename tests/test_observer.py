"""The observer actor, driven by a fake clock and manual ticks: every schedule form."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pykka
import pytest

from riaktq_py import Riaktq, Status
from riaktq_py.actors.event_manager import EventManager
from riaktq_py.errors import ConfigError
from riaktq_py.observer import (
    Cron,
    Daily,
    Interval,
    Observation,
    Observer,
    ObserverRun,
    Query,
    QueryResult,
    StatusCounts,
    StatusCountsResult,
)
from riaktq_py.observer.queries import ReportResult
from riaktq_py.observer.schedule import Schedule
from riaktq_py.store import Store
from riaktq_py.testing import EventCapture, FakeClock

MINUTE = 60_000_000


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
    return int(moment.timestamp()) * 1_000_000


def berlin(now_us: int) -> str:
    moment = dt.datetime.fromtimestamp(now_us / 1e6, dt.UTC)
    return moment.astimezone(ZoneInfo("Europe/Berlin")).strftime("%m-%d %H:%M %Z")


def start(
    store: Store, clock: FakeClock, schedule: Schedule, name: str = "counts"
) -> pykka.ActorRef[Observer]:
    observation = Observation(name, StatusCounts(), schedule)
    return Observer.start(store, clock, None, [observation], interval=None)


def tick(ref: pykka.ActorRef[Observer]) -> ObserverRun:
    run: ObserverRun | None = ref.proxy().tick().get(timeout=10).get(timeout=10)
    assert run is not None
    return run


def ran(ref: pykka.ActorRef[Observer]) -> bool:
    return bool(tick(ref).results)


def drive(
    ref: pykka.ActorRef[Observer], clock: FakeClock, start_us: int, end_us: int, step_us: int
) -> list[int]:
    """Tick at every step from start to end; the times at which the report ran."""
    times: list[int] = []
    for now in range(start_us, end_us + 1, step_us):
        clock.set(now)
        if ran(ref):
            times.append(now)
    return times


def test_daily_runs_at_the_first_tick_after_the_time_once_per_day(store: Store) -> None:
    """Before 06:00 nothing; the first tick at/after 06:00 runs; no second run that day."""
    clock = FakeClock(utc(2024, 5, 10, 0))
    ref = start(store, clock, Daily("06:00"))
    times = drive(ref, clock, utc(2024, 5, 10, 0), utc(2024, 5, 12, 23), 7 * MINUTE)
    # ticks every 7 minutes from midnight: the first at/after 06:00 is 06:06 each day
    # (the step is not aligned to days, so the minute differs per day)
    assert [dt.datetime.fromtimestamp(t / 1e6, dt.UTC).date().day for t in times] == [10, 11, 12]
    for t in times:
        moment = dt.datetime.fromtimestamp(t / 1e6, dt.UTC)
        assert dt.time(6, 0) <= moment.time() < dt.time(6, 7)


def test_daily_started_late_runs_at_its_first_tick(store: Store) -> None:
    """An observer started at 15:00 runs the day's report at once, then not again that day."""
    clock = FakeClock(utc(2024, 5, 10, 15))
    ref = start(store, clock, Daily("06:00:30"))
    assert ran(ref)
    clock.set(utc(2024, 5, 10, 23, 59, 59))
    assert not ran(ref)
    clock.set(utc(2024, 5, 11, 6, 0, 29))
    assert not ran(ref)
    clock.set(utc(2024, 5, 11, 6, 0, 30))
    assert ran(ref)


def test_daily_restart_on_the_same_day_neither_repeats_nor_skips(store: Store) -> None:
    """A restart after the day's run does not run again; one before it still runs."""
    clock = FakeClock(utc(2024, 5, 10, 6, 30))
    first = start(store, clock, Daily("06:00"))
    assert ran(first)
    first.stop()
    clock.set(utc(2024, 5, 10, 8))
    second = start(store, clock, Daily("06:00"))
    assert not ran(second)  # not repeated
    second.stop()

    clock.set(utc(2024, 5, 11, 5))
    third = start(store, clock, Daily("06:00"))
    assert not ran(third)
    third.stop()  # stopped before 06:00: the day's report has not run
    clock.set(utc(2024, 5, 11, 9))
    fourth = start(store, clock, Daily("06:00"))
    assert ran(fourth)  # not skipped
    assert not ran(fourth)


def test_cron_spring_forward_runs_the_skipped_time_once_at_the_shifted_time(store: Store) -> None:
    """02:30 Berlin on 2024-03-31 does not exist: the report runs once, at 03:00 CEST."""
    clock = FakeClock(utc(2024, 3, 30, 12))
    ref = start(store, clock, Cron("30 2 * * *", "Europe/Berlin"))
    times = drive(ref, clock, utc(2024, 3, 30, 12), utc(2024, 4, 1, 6), 15 * MINUTE)
    assert [berlin(t) for t in times] == ["03-31 03:00 CEST", "04-01 02:30 CEST"]


def test_cron_fall_back_runs_the_repeated_time_once(store: Store) -> None:
    """02:30 Berlin happens twice on 2024-10-27: the report runs once, the first time."""
    clock = FakeClock(utc(2024, 10, 26, 12))
    ref = start(store, clock, Cron("30 2 * * *", "Europe/Berlin"))
    times = drive(ref, clock, utc(2024, 10, 26, 12), utc(2024, 10, 28, 6), 15 * MINUTE)
    assert [berlin(t) for t in times] == ["10-27 02:30 CEST", "10-28 02:30 CET"]


def test_hourly_cron_across_both_dst_changes_runs_once_per_wall_clock_hour(store: Store) -> None:
    """Hourly in Berlin: the missing 02:00 runs once as 03:00; the repeated 02:00 once."""
    clock = FakeClock(utc(2024, 3, 30, 23, 30))
    ref = start(store, clock, Cron("0 * * * *", "Europe/Berlin"))
    spring = drive(ref, clock, utc(2024, 3, 30, 23, 30), utc(2024, 3, 31, 2, 30), 5 * MINUTE)
    # started at 00:30 CET; 02:00 does not exist (02:00 CET is 03:00 CEST): one run for both
    assert [berlin(t) for t in spring] == [
        "03-31 01:00 CET",
        "03-31 03:00 CEST",
        "03-31 04:00 CEST",
    ]
    ref.stop()
    clock.set(utc(2024, 10, 26, 23, 30))
    fall = start(store, clock, Cron("0 * * * *", "Europe/Berlin"), name="fall")
    times = drive(fall, clock, utc(2024, 10, 26, 23, 30), utc(2024, 10, 27, 2, 30), 5 * MINUTE)
    # started at 01:30 CEST; 02:00 comes twice (CEST, then CET an hour later): it runs once
    assert [berlin(t) for t in times] == ["10-27 02:00 CEST", "10-27 03:00 CET"]


def test_cron_first_seen_waits_for_the_next_occurrence_even_across_a_restart(store: Store) -> None:
    """A new cron query does not run past occurrences, but one passed while down still runs."""
    clock = FakeClock(utc(2024, 5, 10, 10))
    first = start(store, clock, Cron("0 12 * * *"))
    assert not ran(first)  # 12:00 yesterday is before the query was first seen
    first.stop()
    clock.set(utc(2024, 5, 10, 13))
    second = start(store, clock, Cron("0 12 * * *"))
    assert ran(second)  # today's 12:00 came while the observer was down
    assert not ran(second)


def test_interval_runs_at_the_first_tick_then_every_interval_across_a_restart(
    store: Store,
) -> None:
    """Every 300 s from the first run; a restarted observer keeps the grid."""
    clock = FakeClock(utc(2024, 5, 10))
    ref = start(store, clock, Interval(300))
    times = drive(ref, clock, utc(2024, 5, 10), utc(2024, 5, 10, 0, 20), MINUTE)
    assert [(t - times[0]) // MINUTE for t in times] == [0, 5, 10, 15, 20]
    ref.stop()
    clock.set(utc(2024, 5, 10, 0, 24))
    again = start(store, clock, Interval(300))
    assert not ran(again)
    clock.set(utc(2024, 5, 10, 0, 25))
    assert ran(again)


class Flaky:
    """A report that crashes the first ``failures`` times it runs."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def run(self, store: Store, *, key: str, now_us: int) -> ReportResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"crash {self.calls}")
        return StatusCountsResult(key, now_us, store.count_by_status())


def test_a_crashed_run_is_retried_at_the_next_tick(store: Store) -> None:
    """A report that raises is not recorded as run: the next tick runs it, then it is done."""
    clock = FakeClock(utc(2024, 5, 10, 7))
    flaky = Flaky(failures=2)
    steady = Observation("steady", StatusCounts(), Daily("06:00"))
    ref = Observer.start(
        store, clock, None, [Observation("flaky", flaky, Daily("06:00")), steady], interval=None
    )
    run = tick(ref)
    assert run.failures == (("flaky", "RuntimeError: crash 1"),)
    assert [r.key for r in run.results] == ["steady"]  # one crash does not stop the others
    assert tick(ref).failures == (("flaky", "RuntimeError: crash 2"),)
    run = tick(ref)
    assert ([r.key for r in run.results], run.failures) == (["flaky"], ())
    assert tick(ref).results == ()
    assert flaky.calls == 3


class Blocking:
    """A report that waits until released, to hold a run open."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def run(self, store: Store, *, key: str, now_us: int) -> ReportResult:
        self.started.set()
        assert self.release.wait(10)
        return StatusCountsResult(key, now_us, store.count_by_status())


def test_runs_never_overlap(store: Store) -> None:
    """A tick while a run is going is dropped (None); the running one completes."""
    clock = FakeClock(utc(2024, 5, 10, 7))
    blocking = Blocking()
    ref = Observer.start(
        store, clock, None, [Observation("slow", blocking, Interval(1))], interval=None
    )
    first = ref.proxy().tick().get(timeout=10)
    assert blocking.started.wait(10)
    clock.advance(5)
    assert ref.proxy().tick().get(timeout=10).get(timeout=10) is None
    blocking.release.set()
    run = first.get(timeout=10)
    assert run is not None and [r.key for r in run.results] == ["slow"]


@pytest.fixture
def query_events() -> Iterator[pykka.ActorRef[EventManager]]:
    ref = EventManager.start("query-events")
    yield ref
    ref.stop()


def test_results_are_published_on_the_query_event_manager(
    store: Store, query_events: pykka.ActorRef[EventManager]
) -> None:
    """Each result goes to the query event manager's subscribers, with its key."""
    capture = EventCapture()
    query_events.proxy().subscribe(capture).get(timeout=10)
    clock = FakeClock(utc(2024, 5, 10, 7))
    observations = [
        Observation("morning", StatusCounts(), Daily("06:00")),
        Observation("evening", StatusCounts(), Daily("18:00")),
    ]
    ref = Observer.start(store, clock, query_events.proxy(), observations, interval=None)
    tick(ref)
    clock.set(utc(2024, 5, 10, 18))
    tick(ref)
    published = capture.wait_count(lambda r: True, 2)
    assert [(r.key, r.at) for r in published] == [
        ("morning", utc(2024, 5, 10, 7)),
        ("evening", utc(2024, 5, 10, 18)),
    ]


def test_observations_are_validated(store: Store) -> None:
    """A nameless observation, a non-report or a duplicate name is a ConfigError."""
    with pytest.raises(ConfigError, match="non-empty string"):
        Observation("", StatusCounts(), Daily("06:00"))
    with pytest.raises(ConfigError, match="is not a report"):
        Observation("x", object(), Daily("06:00"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="is not a schedule"):
        Observation("x", StatusCounts(), "06:00")  # type: ignore[arg-type]
    observation = Observation("x", StatusCounts(), Daily("06:00"))
    ref = Observer.start(store, FakeClock(), None, [observation], interval=None)
    with pytest.raises(ConfigError, match="already exists"):
        ref.proxy().observe(observation).get(timeout=10)


def test_riaktq_observe_publishes_results_and_reports_on_demand(store: Store) -> None:
    """Riaktq.observe + subscribe_queries + observer_tick; report() runs now, off schedule."""
    clock = FakeClock(utc(2024, 5, 10, 5))
    tq = Riaktq(store, clock=clock, interval=None, debounce=None)
    tq.observe("stale", Query(status=Status.TODO, age=3600), Daily("06:00"))
    tq.open("old", 1)
    clock.set(utc(2024, 5, 10, 5, 30))
    tq.open("new", 2)
    capture = EventCapture()
    with tq:
        tq.subscribe_queries(capture)
        tq.observe("counts", StatusCounts(), Interval(7200))  # added while running
        first = tq.observer_tick()
        assert first is not None and [r.key for r in first.results] == ["counts"]
        clock.set(utc(2024, 5, 10, 6))
        second = tq.observer_tick()
        assert second is not None and [r.key for r in second.results] == ["stale"]
        capture.wait_count(lambda r: True, 2)
        [stale] = tq.report("stale")
        with pytest.raises(ConfigError, match="no observation named 'nope'"):
            tq.report("nope")
        assert [r.key for r in tq.report()] == ["stale", "counts"]
        assert tq.observer_tick() is not None
    assert [r.key for r in capture.events] == ["counts", "stale"]
    published = capture.events[1]
    assert isinstance(published, QueryResult) and isinstance(stale, QueryResult)
    assert published.tasks == stale.tasks == ((store.bucket, "old"),)
    with pytest.raises(ConfigError, match="already exists"):
        tq.observe("stale", StatusCounts(), Daily("06:00"))
