"""The scheduler actor: ticks never overlap, crashes are contained, events trigger ticks."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pykka
import pytest

from riaktq_py import ConfigError, Riaktq, Status, Store
from riaktq_py.actors.handles import InstanceHandle
from riaktq_py.actors.instance import Assignment, InstanceState
from riaktq_py.actors.scheduler import BUSY_TICK, Scheduler, SchedulerConfig
from riaktq_py.actors.tick import Tick, TickConfig, TickReport
from riaktq_py.engine import Engine
from riaktq_py.testing import EventCapture, FakeClock
from riaktq_py.transitions import Assign, Open

T = 10.0


class BlockingInstance:
    """An instance handle whose ``get`` blocks until released: holds a tick open."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    @property
    def name(self) -> str:
        return "blocker"

    def get(self, timeout: float) -> InstanceState:
        self.entered.set()
        self.release.wait(T)
        return InstanceState("blocker", frozenset({"none"}), 1, False, (), ())

    def put(self, assignments: Sequence[Assignment], timeout: float) -> list[str]:
        return []

    def commit(self, entries: Sequence[tuple[str, int]], timeout: float) -> int:
        return 0


def _scheduler(
    store: Store, instances: Sequence[InstanceHandle] = (), **config: Any
) -> pykka.ActorRef[Scheduler]:
    engine = Engine(store, FakeClock())
    settings = {"interval": None, "debounce": None, **config}
    return Scheduler.start(engine, instances, SchedulerConfig(**settings))


def test_a_tick_requested_while_one_runs_is_dropped(store: Store) -> None:
    blocker = BlockingInstance()
    scheduler = _scheduler(store, [blocker]).proxy()
    first = scheduler.tick().get(timeout=T)
    assert blocker.entered.wait(T)
    second = scheduler.tick().get(timeout=T)
    assert second.get(timeout=T) is None  # dropped at once, while the first runs
    blocker.release.set()
    report = first.get(timeout=T)
    assert isinstance(report, TickReport)
    assert scheduler.ticks.get(timeout=T) == 1


def test_a_crashed_tick_is_reported_and_the_next_tick_runs(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = store.restartable

    def flaky(limit: int) -> list[Any]:
        calls.append(limit)
        if len(calls) == 1:
            raise RuntimeError("store hiccup")
        return real(limit)

    monkeypatch.setattr(store, "restartable", flaky)
    scheduler = _scheduler(store).proxy()
    with pytest.raises(RuntimeError, match="store hiccup"):
        scheduler.tick().get(timeout=T).get(timeout=T)
    report = scheduler.tick().get(timeout=T).get(timeout=T)
    assert isinstance(report, TickReport)
    assert len(calls) == 2


def test_opening_a_task_triggers_a_tick_without_waiting_for_the_interval(store: Store) -> None:
    """SPEC B10: the interval is an hour, yet tasks run at once (open and result trigger)."""
    tq = Riaktq(store, interval=3600.0, debounce=0.001)
    tq.add_handler("echo", lambda value: value, instances=2, capacity=4)
    events = EventCapture()
    with tq:
        tq.subscribe(events)
        tq.open_many([(f"t{i}", i) for i in range(50)], handler="echo")
        for i in range(50):
            assert tq.wait(f"t{i}", timeout=T).output_value == i
    assert events.count(lambda e: e.transition == "close" and e.ok) == 50


def test_the_interval_timer_ticks_on_its_own(store: Store) -> None:
    ticked = threading.Event()
    engine = Engine(store, FakeClock())
    scheduler = Scheduler.start(engine, [], SchedulerConfig(interval=0.01, debounce=None))
    original = scheduler.proxy()

    def watch() -> None:
        while original.ticks.get(timeout=T) < 3:
            pass
        ticked.set()

    threading.Thread(target=watch, daemon=True).start()
    assert ticked.wait(T)


def test_a_tick_reaches_tasks_beyond_the_batch_size_over_following_ticks(store: Store) -> None:
    tq = Riaktq(store, clock=FakeClock(), interval=None, debounce=None, batch_size=7)
    tq.add_handler("echo", lambda value: value, instances=1, capacity=50)
    with tq:
        tq.open_many([(f"t{i}", i) for i in range(20)], handler="echo")
        assert tq.tick(T).assigned == 7  # type: ignore[union-attr]
        assert tq.tick(T).assigned == 7  # type: ignore[union-attr]
        assert tq.tick(T).assigned == 6  # type: ignore[union-attr]
    assert tq.store.count_by_status()[Status.TODO] == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"interval": 0}, "interval must be > 0"),
        ({"debounce": -1}, "debounce must be >= 0"),
        ({"pace": -0.1}, "pace must be >= 0"),
        ({"tick": TickConfig(batch_size=1)}, None),
    ],
)
def test_bad_scheduler_configuration_is_named(config: dict[str, Any], message: str | None) -> None:
    if message is None:
        SchedulerConfig(**config)
        return
    with pytest.raises(ConfigError, match=message):
        SchedulerConfig(**config)


@pytest.mark.parametrize(
    ("config", "message"),
    [({"batch_size": 0}, "batch_size must be >= 1"), ({"call_timeout": 0}, "call_timeout")],
)
def test_bad_tick_configuration_is_named(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TickConfig(**config)


class OpenOneStep:
    """An extra tick step that opens one task per tick; crashes when told."""

    name = "opener"

    def __init__(self) -> None:
        self.runs = 0
        self.crash = False

    def run(self, engine: Engine) -> int:
        self.runs += 1
        if self.crash:
            raise RuntimeError("step bug")
        from riaktq_py.transitions import Open

        engine.apply([Open(f"step-{self.runs}", b"\xc0", cat=engine.clock.now_us())])
        return 1


def test_extra_steps_run_in_each_tick_and_a_crashing_step_does_not_stop_it(
    store: Store,
) -> None:
    step = OpenOneStep()
    engine = Engine(store, FakeClock())
    config = SchedulerConfig(interval=None, debounce=None)
    scheduler = Scheduler.start(engine, [], config, [step]).proxy()
    first = scheduler.tick().get(timeout=T).get(timeout=T)
    assert first.steps == (("opener", 1),)
    assert store.get("step-1") is not None
    step.crash = True
    second = scheduler.tick().get(timeout=T).get(timeout=T)
    assert second.steps == (("opener", -1),)


def test_subscribers_receive_events_in_log_order_under_concurrent_writers(store: Store) -> None:
    """Opens from two threads race the ticks; every subscriber still sees log order."""
    tq = Riaktq(store, interval=None, debounce=0.0)
    tq.add_handler("echo", lambda value: value, instances=2, capacity=8)
    events = EventCapture()
    with tq:
        tq.subscribe(events)

        def opener(prefix: str) -> None:
            for i in range(150):
                tq.open(f"{prefix}{i}", i, handler="echo")

        threads = [threading.Thread(target=opener, args=(p,)) for p in "ab"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(T)
        events.wait_count(lambda e: e.transition == "close", 300, timeout=T)
    positions = [e.position for e in events.events]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)


def test_the_doorbell_sends_one_ring_per_tick(store: Store) -> None:
    ref = _scheduler(store, debounce=60.0)  # a trigger waits: no tick runs by itself
    try:
        scheduler = ref.proxy()
        doorbell = scheduler.doorbell.get(timeout=T)
        told: list[Any] = []
        real_ref, doorbell._ref = doorbell._ref, type("Ref", (), {"tell": told.append})()
        for _ in range(50):
            doorbell.ring()
        assert len(told) == 1  # one ring for a burst
        doorbell._ref = real_ref
        scheduler.tick().get(timeout=T).get(timeout=T)  # a tick started: the bell is re-armed
        doorbell._ref = type("Ref", (), {"tell": told.append})()
        doorbell.ring()
        doorbell.ring()
        assert len(told) == 2
    finally:
        ref.stop()


class RoomyInstance:
    """An instance handle with room for ``capacity`` tasks that it keeps (never runs)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held: list[str] = []

    @property
    def name(self) -> str:
        return "roomy"

    def get(self, timeout: float) -> InstanceState:
        return InstanceState("roomy", frozenset(), self.capacity, False, tuple(self.held), ())

    def put(self, assignments: Sequence[Assignment], timeout: float) -> list[str]:
        self.held += [a.key for a in assignments]
        return [a.key for a in assignments]

    def commit(self, entries: Sequence[tuple[str, int]], timeout: float) -> int:
        return 0


def _open(store: Store, keys: Sequence[str]) -> None:
    store.apply([Open(key, b"\xc0", cat=1) for key in keys], at=1)


def test_a_busy_tick_with_room_left_paces_the_next_triggered_tick(store: Store) -> None:
    instance = RoomyInstance(capacity=100)
    ref = _scheduler(store, [instance], debounce=0.0, pace=30.0)
    try:
        scheduler = ref.proxy()
        _open(store, [f"light-{i}" for i in range(BUSY_TICK - 1)])
        report = scheduler.tick().get(timeout=T).get(timeout=T)
        assert (report.assigned, report.room) == (BUSY_TICK - 1, 100 - BUSY_TICK + 1)
        assert scheduler.paced_until().get(timeout=T) == 0.0  # a light tick: no pacing
        _open(store, [f"busy-{i}" for i in range(BUSY_TICK)])
        report = scheduler.tick().get(timeout=T).get(timeout=T)
        assert report.assigned == BUSY_TICK and report.room > 0
        assert scheduler.paced_until().get(timeout=T) > time.monotonic() + 29
        _open(store, ["next"])
        scheduler.trigger().get(timeout=T)  # paced: the alarm is set 30 s out, no tick now
        assert scheduler.ticks.get(timeout=T) == 2
        assert store.get("next").status is Status.TODO  # type: ignore[union-attr]
    finally:
        ref.stop()


def test_a_busy_tick_that_filled_the_instances_is_not_paced(store: Store) -> None:
    instance = RoomyInstance(capacity=BUSY_TICK)
    ref = _scheduler(store, [instance], debounce=0.0, pace=30.0)
    try:
        scheduler = ref.proxy()
        _open(store, [f"t-{i}" for i in range(BUSY_TICK + 5)])
        report = scheduler.tick().get(timeout=T).get(timeout=T)
        assert (report.assigned, report.room) == (BUSY_TICK, 0)
        assert scheduler.paced_until().get(timeout=T) == 0.0  # results will ring: no wait
    finally:
        ref.stop()


class RefusingInstance(RoomyInstance):
    """Has room, but every put fails (its tasks are then in no queue)."""

    def put(self, assignments: Sequence[Assignment], timeout: float) -> list[str]:
        raise TimeoutError("no answer")


def test_a_tick_may_skip_the_lost_task_scan_unless_something_went_wrong(store: Store) -> None:
    engine = Engine(store, FakeClock())
    _open(store, ["lost", "fresh"])
    engine.apply([Assign("lost", "ghost")])  # nextup on an instance nobody has
    config = TickConfig()
    quiet = Tick(engine, [RoomyInstance(capacity=0)], config, scan_lost=False).run()
    assert quiet.rolled_back == 0 and store.get("lost").status is Status.NEXTUP  # type: ignore[union-attr]
    troubled = Tick(engine, [RefusingInstance(capacity=10)], config, scan_lost=False).run()
    assert troubled.assigned == 0  # the put failed: "fresh" is in no queue, so scan anyway
    assert troubled.rolled_back == 2
    assert store.get("lost").status is Status.TODO  # type: ignore[union-attr]
    assert Tick(engine, [RoomyInstance(capacity=0)], config).run().rolled_back == 0


def test_the_queue_passes_its_pace_on_and_names_a_bad_one() -> None:
    assert Riaktq(":memory:", pace=None).config.pace is None
    assert Riaktq(":memory:").config.pace == 0.02
    with pytest.raises(ConfigError, match="pace must be >= 0"):
        Riaktq(":memory:", pace=-1)
