"""Remote instances in-process: a worker and a scheduler service on one file, by hand.

Ticks, pumps, heartbeats and time (a FakeClock) are driven by the test, so
liveness and draining are checked step by step; tests/test_faults*.py do the
same with real processes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from riaktq_py import payload
from riaktq_py.actors.handles import InstanceHandle, LocalInstance
from riaktq_py.actors.instance import Instance
from riaktq_py.actors.scheduler import SchedulerConfig
from riaktq_py.actors.tick import TickReport
from riaktq_py.engine import Engine
from riaktq_py.errors import ConfigError
from riaktq_py.handlers import EchoHandler, Handler
from riaktq_py.store.sqlite import SqliteStore
from riaktq_py.task import Outcome, Status, Task
from riaktq_py.testing import FakeClock, Gate
from riaktq_py.transitions import Cancel, Open
from riaktq_py.workers import (
    FencedSqliteStore,
    LeaseConfig,
    LeaseLost,
    SchedulerService,
    ServiceConfig,
    SqliteCoordination,
    Worker,
    WorkerConfig,
)

T = 10.0
DEAD_AFTER = 3  # heartbeat intervals (1 s each here)


class System:
    """A scheduler service, an API engine and workers on one SQLite file."""

    def __init__(self, path: Path, instances: Sequence[InstanceHandle] = ()) -> None:
        self.path = path
        self.clock = FakeClock()
        config = ServiceConfig(
            SchedulerConfig(interval=None, debounce=None),
            LeaseConfig(duration=60.0),
            dead_after=DEAD_AFTER,
        )
        self.service = SchedulerService(
            FencedSqliteStore(str(path)),
            config,
            clock=self.clock,
            holder="sched",
            instances=instances,
        )
        assert self.service.lease_step()
        self.store = SqliteStore(str(path))
        self.api = Engine(self.store, self.clock)
        self.workers: list[Worker] = []

    def worker(
        self, name: str, handler: Handler, capacity: int = 1, *, unique_names: bool = True
    ) -> Worker:
        config = WorkerConfig(
            capacity=capacity, heartbeat=1.0, name=name, unique_names=unique_names
        )
        coordination = SqliteCoordination(SqliteStore(str(self.path)))
        worker = Worker(coordination, handler, config, clock=self.clock).start(threads=False)
        self.workers.append(worker)
        return worker

    def open(self, *keys: str, tags: frozenset[str] = frozenset()) -> None:
        now = self.clock.now_us()
        self.api.apply(
            [Open(k, payload.encode(k), cat=now + i, tags=tags) for i, k in enumerate(keys)]
        )

    def tick(self) -> TickReport:
        self.service.fleet_step()
        assert self.service.scheduler is not None
        report: TickReport = self.service.scheduler.proxy().tick().get(timeout=T).get(timeout=T)
        return report

    def task(self, key: str) -> Task:
        task = self.store.get(key)
        assert task is not None
        return task

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.service.stop()
        self.store.close()


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    system = System(tmp_path / "q.db")
    yield system
    system.close()


def closes(store: SqliteStore, key: str) -> int:
    """How many times the transition log shows ``key`` committed (an accepted close)."""
    return sum(
        1
        for e in store.events_after(0, 100_000)
        if e.key == key and e.transition == "close" and e.ok
    )


def test_a_remote_instance_gets_work_and_hands_results_in_like_a_local_one(
    system: System,
) -> None:
    worker = system.worker("w", EchoHandler(), capacity=2)
    system.open("a", "b", "c")
    assert system.tick().assigned == 2  # its capacity: both wait in its mailbox
    box = system.service.coordination.mailbox("w-1")
    assert (box.inputs, box.taken) == (("a", "b"), ())
    for _ in range(2):  # it runs them one at a time
        worker.pump()
        worker.wait_idle(T)
    worker.pump()
    report = system.tick()
    assert (report.committed, report.assigned, report.rolled_back) == (2, 1, 0)
    worker.pump()
    worker.wait_idle(T)
    worker.pump()
    assert system.tick().committed == 1
    for key in "abc":
        task = system.task(key)
        assert task.status is Status.DONE and task.output_value == key
        assert [(a.assignee, a.outcome) for a in task.history] == [("w-1", Outcome.DONE)]


def test_a_dead_instance_loses_its_task_to_another_and_its_late_result_never_commits(
    system: System,
) -> None:
    gate = Gate()
    first = system.worker("w1", gate)
    system.open("t")
    assert system.tick().assigned == 1
    first.pump()
    gate.wait_started("t")
    second = system.worker("w2", EchoHandler())
    system.tick()
    for _ in range(DEAD_AFTER + 1):  # w1 is silent, w2 beats
        system.clock.advance(1.0)
        second.beat()
        system.tick()
    assert system.task("t").status is Status.TODO  # w1 is dead: rolled back
    system.tick()
    assert system.task("t").assignee == "w2-1"
    second.pump()
    second.wait_idle(T)
    second.pump()
    system.tick()
    gate.release("t")  # w1 was only slow to beat: it hands in its superseded result
    first.wait_idle(T)
    first.pump()
    system.tick()
    system.tick()
    task = system.task("t")
    assert task.status is Status.DONE and task.assignee == "w2-1"
    assert [(a.number, a.assignee, a.outcome) for a in task.history] == [
        (1, "w1-1", Outcome.LOST),
        (2, "w2-1", Outcome.DONE),
        (1, "w1-1", Outcome.LATE),
    ]
    assert task.history[-1].out == payload.encode("t")
    assert closes(system.store, "t") == 1
    assert system.service.coordination.directory().keys() == {"w2-1"}


def test_a_slow_but_live_instance_is_never_robbed(system: System) -> None:
    gate = Gate()
    worker = system.worker("w", gate)
    system.open("slow")
    system.tick()
    worker.pump()
    gate.wait_started("slow")
    for _ in range(10 * DEAD_AFTER):  # the task takes 30 intervals; the heartbeat goes on
        system.clock.advance(1.0)
        worker.beat()
        report = system.tick()
        assert (report.rolled_back, report.unreachable) == (0, ())
    gate.release("slow")
    worker.wait_idle(T)
    worker.pump()
    assert system.tick().committed == 1
    task = system.task("slow")
    assert task.status is Status.DONE
    assert [a.outcome for a in task.history] == [Outcome.DONE]


def test_draining_returns_unstarted_tasks_at_once_and_results_outlive_the_worker(
    system: System,
) -> None:
    gate = Gate()
    worker = system.worker("w", gate, capacity=3)
    system.open("run", "q1", "q2")
    assert system.tick().assigned == 3
    worker.pump()
    gate.wait_started("run")
    assert sorted(worker.drain()) == ["q1", "q2"]
    report = system.tick()  # no time passed: no liveness timeout involved
    assert (report.rolled_back, report.assigned) == (2, 0)  # a draining instance takes nothing
    assert [system.task(k).status for k in ("run", "q1", "q2")] == [
        Status.NEXTUP,
        Status.TODO,
        Status.TODO,
    ]
    assert system.service.coordination.put("w-1", []) == []
    gate.release("run")
    worker.wait_idle(T)
    assert worker.pump()  # drained: idle, result handed in
    system.service.coordination.leave(worker.names)
    assert system.tick().committed == 1  # committed after the worker left
    assert system.task("run").status is Status.DONE
    system.tick()
    assert system.service.coordination.directory() == {}
    assert system.service.fleet is not None and system.service.fleet.handles == {}


def test_a_deposed_scheduler_can_neither_assign_nor_commit(system: System) -> None:
    worker = system.worker("w", EchoHandler())
    system.open("a")
    system.tick()
    worker.pump()
    worker.wait_idle(T)
    worker.pump()  # a's result waits in the store
    system.open("b")
    # another scheduler takes the lease over (the first one was paused)
    system.service.coordination.lease_release("scheduler", "sched", 1)
    with pytest.raises(LeaseLost):
        system.tick()
    assert system.task("a").status is Status.NEXTUP
    assert system.task("b").status is Status.TODO
    assert [r.key for r in system.service.coordination.mailbox("w-1").outputs] == ["a"]


def test_an_assignment_an_idle_instance_lost_on_the_way_is_given_again(system: System) -> None:
    coordination = system.service.coordination
    worker = system.worker("w", EchoHandler(), capacity=2)
    system.open("a", "b")
    assert system.tick().assigned == 2
    first = coordination.take(worker.names)
    assert [a.key for a in first.values()] == ["a"]
    # the instance never got it (say the hand-over timed out): it is idle, so "a" comes again
    assert coordination.take(worker.names) == first
    worker.pump()  # the worker's own take: "a" again, this time it runs
    worker.wait_idle(T)
    worker.pump()
    worker.wait_idle(T)
    worker.pump()
    assert system.tick().committed == 2
    assert [system.task(k).status for k in "ab"] == [Status.DONE, Status.DONE]


def test_results_handed_in_before_an_instance_died_are_committed_not_rerun(
    system: System,
) -> None:
    worker = system.worker("w", EchoHandler())
    system.open("t")
    system.tick()
    worker.pump()
    worker.wait_idle(T)
    worker.pump()  # the result is in the store; then the worker dies (no more beats)
    worker.stop()
    system.clock.advance(DEAD_AFTER + 1.0)
    report = system.tick()
    assert (report.committed, report.rolled_back) == (1, 0)
    task = system.task("t")
    assert task.status is Status.DONE and [a.outcome for a in task.history] == [Outcome.DONE]
    system.tick()
    assert system.service.coordination.directory() == {}  # forgotten once committed


def forget(system: System, worker: Worker) -> None:
    """Let ``worker`` stay silent until the scheduler finds it dead and forgets it."""
    system.tick()  # the scheduler sees it join
    for _ in range(DEAD_AFTER + 1):
        system.clock.advance(1.0)
        system.tick()
    assert not any(name in system.service.coordination.directory() for name in worker.names)


def test_a_worker_declared_dead_registers_again_at_its_next_beat(system: System) -> None:
    worker = system.worker("w1", EchoHandler())
    forget(system, worker)
    worker.beat()
    assert "w1-1" in system.service.coordination.directory()
    assert not worker.draining
    worker.beat()  # registered again with a fresh counter: its next beat shows it live
    system.open("t")
    assert system.tick().assigned == 1


def test_a_worker_whose_shared_names_were_taken_meanwhile_takes_no_more_work(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = system.worker("w1", EchoHandler(), unique_names=False)
    forget(system, worker)
    others: list[Worker] = []
    beat = worker.coordination.beat

    def beat_then_taken(names: Sequence[str], at: int) -> list[str]:
        missing = beat(names, at)  # ours are gone...
        others.append(system.worker("w1", EchoHandler(), unique_names=False))  # ...and taken
        return missing

    monkeypatch.setattr(worker.coordination, "beat", beat_then_taken)
    worker.beat()
    assert worker.draining
    assert system.service.coordination.directory()["w1-1"] == others[0].records()[0]


def test_a_worker_shares_a_handler_and_calls_a_maker_once_per_instance(system: System) -> None:
    made: list[Handler] = []

    def make() -> Handler:
        made.append(EchoHandler())
        return made[-1]

    shared = EchoHandler()
    coordination = SqliteCoordination(system.store)
    workers = [
        Worker(coordination, make, WorkerConfig(instances=2, name="m")),
        Worker(coordination, shared, WorkerConfig(instances=2, name="s")),
    ]
    system.workers.extend(workers)
    for worker in workers:
        worker.start(threads=False)
    handlers = [[r.proxy().handler.get(timeout=T) for r in w._refs.values()] for w in workers]
    assert len(made) == 2 and made[0] is not made[1]
    assert all(a is b for a, b in zip(handlers[0], made, strict=True))
    assert all(h is shared for h in handlers[1]) and len(handlers[1]) == 2


def test_a_second_worker_with_the_same_names_is_refused(system: System) -> None:
    system.worker("w", EchoHandler())
    with pytest.raises(ConfigError, match=r"already registered: w-1 \(worker w\)"):
        system.worker("w", EchoHandler())


def test_the_package_exports_exactly_its_public_names() -> None:
    import riaktq_py.workers as workers

    public = {name for name in vars(workers) if not name.startswith("_")}
    modules = {
        "coordination", "late", "lease", "remote", "service", "sqlite_access",
        "sqlite_coordination", "sqlite_lease", "worker",
    }  # fmt: skip
    assert set(workers.__all__) == public - modules


def test_local_instances_keep_their_direct_path_beside_remote_ones(tmp_path: Path) -> None:
    clock = FakeClock()
    ref = Instance.start("local-1", EchoHandler(), clock=clock, tags=frozenset({"local"}))
    system = System(tmp_path / "q.db", instances=[LocalInstance("local-1", ref)])
    try:
        worker = system.worker("w", EchoHandler())
        system.open("r")
        system.open("l", tags=frozenset({"local"}))
        assert system.tick().assigned == 2
        assert system.service.coordination.mailbox("w-1").inputs == ("r",)  # only r goes remote
        ref.proxy().idle().get(timeout=T).get(timeout=T)
        worker.pump()
        worker.wait_idle(T)
        worker.pump()
        assert system.tick().committed == 2
        assert (system.task("l").assignee, system.task("r").assignee) == ("local-1", "w-1")
        assert {system.task(k).status for k in "lr"} == {Status.DONE}
    finally:
        system.close()


def test_a_canceled_task_waiting_in_a_remote_mailbox_never_runs(system: System) -> None:
    gate = Gate()
    worker = system.worker("w", gate, capacity=2)
    system.open("a", "b")
    system.tick()
    worker.pump()
    gate.wait_started("a")
    system.api.apply([Cancel("a"), Cancel("b")])
    system.tick()  # tells the instance: b, not started, is dropped; a runs on
    assert system.service.coordination.mailbox("w-1").inputs == ("a",)
    gate.release("a")
    worker.wait_idle(T)
    worker.pump()
    system.tick()
    assert gate.started == ["a"]
    a, b = system.task("a"), system.task("b")
    assert (a.status, b.status) == (Status.CANCELED, Status.CANCELED)
    assert [h.outcome for h in a.history] == [Outcome.DONE] and b.history == ()


def test_a_task_timeout_is_enforced_by_the_remote_instance(system: System) -> None:
    gate = Gate()
    worker = system.worker("w", gate)
    now = system.clock.now_us()
    system.api.apply([Open("slow", payload.encode(1), cat=now, timeout=0.2)])
    system.tick()
    worker.pump()
    worker.wait_idle(T)  # the instance gives up on it after 0.2 s
    worker.pump()
    assert system.tick().committed == 1
    gate.release("slow")
    task = system.task("slow")
    assert task.status is Status.FAILED
    assert (task.error or "").startswith("TimeoutError: ran longer than 0.2 s")
