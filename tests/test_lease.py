"""The scheduler lease, driven by hand with fake clocks: one holder, takeover, fencing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from riaktq_py import payload
from riaktq_py.actors.scheduler import SchedulerConfig
from riaktq_py.engine import Engine
from riaktq_py.errors import ConfigError
from riaktq_py.testing import FakeClock
from riaktq_py.transitions import Open
from riaktq_py.workers import (
    FencedSqliteStore,
    Lease,
    LeaseConfig,
    LeaseLost,
    SchedulerService,
    ServiceConfig,
    SqliteCoordination,
)

CONFIG = LeaseConfig(duration=3.0, renew_every=1.0)


class Contender:
    """One scheduler process: its own connection to the file, its own clock."""

    def __init__(self, path: Path, name: str, clock: FakeClock) -> None:
        self.clock = clock
        self.store = FencedSqliteStore(str(path))
        self.coordination = SqliteCoordination(self.store)
        self.lease = Lease(self.coordination, clock, CONFIG, holder=name)
        self.coordination.install_fence(self.lease.name, self.lease.current)
        self.engine = Engine(self.store, clock)

    def open(self, key: str) -> None:
        self.engine.apply([Open(key, payload.encode(key), cat=self.clock.now_us())])


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Contender, Contender]]:
    # clocks far apart: the lease never compares one process's clock with another's
    a = Contender(tmp_path / "q.db", "a", FakeClock(1_000_000_000))
    b = Contender(tmp_path / "q.db", "b", FakeClock(9_000_000_000_000))
    yield a, b
    a.store.close()
    b.store.close()


def advance(seconds: float, *contenders: Contender) -> None:
    for contender in contenders:
        contender.clock.advance(seconds)


def test_the_first_contender_takes_the_lease_and_a_renewing_holder_keeps_it(
    pair: tuple[Contender, Contender],
) -> None:
    a, b = pair
    assert a.lease.poll() and a.lease.epoch == 1
    for _ in range(10):  # 10 s of renewals every second: b never gets it
        advance(1.0, a, b)
        assert a.lease.poll()
        assert not b.lease.poll()
    assert a.lease.epoch == 1 and b.lease.epoch is None


def test_a_standby_takes_over_once_the_lease_went_unrenewed_for_its_duration(
    pair: tuple[Contender, Contender],
) -> None:
    a, b = pair
    assert a.lease.poll()
    assert not b.lease.poll()  # b notes the lease as it is now
    advance(2.9, a, b)  # a is silent (paused, partitioned, dead)
    assert not b.lease.poll()
    advance(0.2, a, b)
    assert b.lease.poll() and b.lease.epoch == 2 and b.lease.terms == 1


def test_a_deposed_holder_commits_nothing_and_steps_down(
    pair: tuple[Contender, Contender],
) -> None:
    """Its clock says it still holds the lease; the store's epoch says no: writes are refused."""
    a, b = pair
    assert a.lease.poll()
    a.open("before")
    assert not b.lease.poll()
    advance(3.1, b)  # only b's time passes: a was paused and does not know
    assert b.lease.poll()
    assert a.lease.current() == ("a", 1)  # a still believes it holds epoch 1
    with pytest.raises(LeaseLost, match="held by b at epoch 2"):
        a.open("after")
    assert a.store.get("after") is None and a.store.get("before") is not None
    b.open("by-b")  # the new holder writes
    assert not a.lease.poll()  # a's renewal is refused: it steps down
    assert a.lease.lost_reason == "taken over by another scheduler"


def test_a_holder_that_cannot_renew_in_time_refuses_its_own_writes_before_a_takeover(
    pair: tuple[Contender, Contender],
) -> None:
    a, _ = pair
    assert a.lease.poll()
    advance(1.9, a)
    a.open("in-time")
    advance(0.2, a)  # 2.1 s without renewal: past duration - renew_every
    assert a.lease.current() is None
    with pytest.raises(LeaseLost, match="does not hold"):
        a.open("too-late")
    assert not a.lease.poll() and a.lease.lost_reason == "not renewed in time"


def test_a_released_lease_is_taken_at_once_with_the_next_epoch(
    pair: tuple[Contender, Contender],
) -> None:
    a, b = pair
    assert a.lease.poll()
    assert not b.lease.poll()
    assert a.lease.release()
    assert b.lease.poll() and b.lease.epoch == 2
    with pytest.raises(LeaseLost):
        a.open("x")


def test_two_standbys_racing_for_an_expired_lease_give_it_to_one(
    tmp_path: Path,
) -> None:
    holder, *standbys = (
        Contender(tmp_path / "q.db", name, FakeClock()) for name in ("h", "s1", "s2")
    )
    assert holder.lease.poll()
    for standby in standbys:
        assert not standby.lease.poll()
        advance(3.5, standby)
    won = [standby.lease.poll() for standby in standbys]
    assert won == [True, False]
    record = standbys[0].coordination.lease_get("scheduler")
    assert record is not None and (record.holder, record.epoch) == ("s1", 2)


def test_two_scheduler_services_on_one_store_never_both_write(tmp_path: Path) -> None:
    """Driven step by step, with a pause, a takeover and a release on the way.

    A paused scheduler cannot know it was deposed, so for a moment both may
    think they tick; the store's fence lets only the holder's writes through.
    """
    clocks = [FakeClock(), FakeClock()]
    config = ServiceConfig(SchedulerConfig(interval=None, debounce=None), CONFIG)
    services = [
        SchedulerService(
            FencedSqliteStore(str(tmp_path / "q.db")), config, clock=clock, holder=name
        )
        for clock, name in zip(clocks, ("s1", "s2"), strict=True)
    ]
    writers: list[str] = []

    def can_write(service: SchedulerService) -> bool:
        if not service.ticking:
            return False
        key = f"probe-{len(writers)}-{service.lease.holder}"
        try:
            service.engine.apply([Open(key, payload.encode(0), cat=0)])
        except LeaseLost:
            return False
        return True

    def step(*which: int) -> None:
        for index in which:
            services[index].lease_step()
        # only the services that ran try to write (a paused process does nothing)
        wrote = [services[i].lease.holder for i in which if can_write(services[i])]
        assert len(wrote) <= 1
        writers.append(wrote[0] if wrote else "-")

    step(0, 1)
    for _ in range(5):  # s1 renews, s2 stands by
        for clock in clocks:
            clock.advance(1.0)
        step(0, 1)
    for _ in range(4):  # s1 is paused: only s2's time passes
        clocks[1].advance(1.0)
        step(1)
    assert services[0].ticking  # s1 has not noticed...
    assert not can_write(services[0])  # ...but the store refuses its writes
    clocks[0].advance(0.5)
    step(0, 1)  # when it runs again it steps down
    assert not services[0].ticking
    services[1].stop()  # releases: s1 takes over at once
    step(0)
    assert writers == ["s1"] * 6 + ["-"] * 2 + ["s2"] * 3 + ["s1"]
    services[0].stop()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"duration": 0}, "duration must be > 0"),
        ({"duration": 3, "renew_every": 3}, "renew_every must be > 0 and < duration"),
        ({"name": ""}, "name must not be empty"),
    ],
)
def test_bad_lease_settings_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LeaseConfig(**options)  # type: ignore[arg-type]


def test_fencing_needs_a_fenced_store(tmp_path: Path) -> None:
    from riaktq_py.store.sqlite import SqliteStore

    store = SqliteStore(str(tmp_path / "q.db"))
    try:
        with pytest.raises(ConfigError, match="FencedSqliteStore"):
            SqliteCoordination(store).install_fence("scheduler", lambda: None)
    finally:
        store.close()
