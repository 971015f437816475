"""An embedded queue (:class:`~riaktq_py.Riaktq`, ``riaktq serve``) as a member of a cluster.

Several processes may share one SQLite file (issue 2), and two schedulers on
one store must never both tick (issue 6): each would roll back the other's
nextup tasks as "instance not live". A *coordinated* queue therefore joins
the store's coordination like a worker plus a scheduler candidate:

- its instances are run by a :class:`~riaktq_py.workers.worker.Worker` per
  handler: registered in the store's registry, heartbeating, fed from their
  mailboxes, so whichever process holds the lease gives them work;
- its scheduler actor ticks only while this process holds the scheduler
  lease (a gate on :class:`~riaktq_py.actors.scheduler.Scheduler`; a refused
  manual tick raises :class:`~riaktq_py.actors.scheduler.TickRefused`). It
  runs on its own :class:`~riaktq_py.workers.sqlite_access.FencedSqliteStore`
  connection, so every write a tick makes is fenced by the lease's epoch,
  while the API's writes (open, cancel...) from any process are not. During a
  term, a :class:`~riaktq_py.workers.remote.RemoteFleet` shows it every live
  instance, this process's own included (through the store, the one path:
  the lease may move between processes at any time, and an instance fed from
  two places could be robbed);
- its events come from the durable log (:mod:`~riaktq_py.workers._relay`),
  so its subscribers see every process's transitions, in log order.

Why not the simpler "refuse to start while another process holds the lease"?
It would forbid what issue 2 allows (several processes on one file, each
running instances), and a standby that cannot run work is no cluster.

Default (``coordinate=None``): on for a SQLite *file* store when the queue
ticks by itself (an ``interval`` or a ``debounce``); off for ``:memory:``
(nobody else can open it), for Riak (the coordination tables exist only in
SQLite: run one scheduler there), and for a queue ticked only by hand
(``interval=None, debounce=None``: the caller is its timer, as in tests).
``coordinate=True`` asks for it (a ConfigError where it is impossible),
``False`` refuses it.

Instance names stay ``{handler}-{n}`` when they are free in the registry (a
single process looks as before); a process that finds them taken uses
``{handler}@{node}-{n}``. The observer (retention included, one of its
reports) runs only while this process holds the lease, behind the scheduler's
gate: its served slots are shared in the store, so each slot's report runs
once, in the leader, and only the leader's query subscribers get the results.
The schedules step runs in the leader's tick, its occurrence records kept
single by their own compare-and-set.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from riaktq_py.actors.scheduler import TickGate
from riaktq_py.clock import Clock, SystemClock
from riaktq_py.engine import Engine
from riaktq_py.errors import ConfigError
from riaktq_py.handlers import Handler
from riaktq_py.log import get_logger
from riaktq_py.store.base import Store
from riaktq_py.store.sqlite import SqliteStore
from riaktq_py.workers._relay import LogRelay
from riaktq_py.workers.lease import Lease, LeaseConfig, default_holder
from riaktq_py.workers.remote import DEFAULT_DEAD_AFTER, RemoteFleet
from riaktq_py.workers.sqlite_coordination import FencedSqliteStore, SqliteCoordination
from riaktq_py.workers.worker import Worker, WorkerConfig


@dataclasses.dataclass(frozen=True, slots=True)
class CoordinationConfig:
    """How a coordinated embedded queue takes part in its store's coordination (seconds)."""

    lease: LeaseConfig = dataclasses.field(default_factory=LeaseConfig)
    heartbeat: float = 1.0
    #: an instance is dead after this many of its heartbeat intervals without one
    dead_after: int = DEFAULT_DEAD_AFTER
    #: how often the registry, mailboxes and log are polled
    poll: float = 0.05
    #: on stop(), how long running tasks get to finish and hand in their results
    grace: float = 5.0
    #: receives one line per lease change and worker event (``riaktq serve`` prints them)
    report: Callable[[str], object] | None = None
    #: True: this process's instances are registered workers that any leader feeds (and
    #: its events come from the log). False (the default for an embedded queue): only
    #: the scheduler is fenced by the lease; its instances stay on the direct in-process
    #: path and get work while this process leads (one process: no cost at all)
    share_instances: bool = True

    def __post_init__(self) -> None:
        for field in ("heartbeat", "poll"):
            if not getattr(self, field) > 0:
                raise ConfigError(f"{field} must be > 0 seconds, got {getattr(self, field)}")
        if self.grace < 0:
            raise ConfigError(f"grace must be >= 0 seconds, got {self.grace}")
        if self.dead_after < 1:
            raise ConfigError(f"dead_after must be >= 1 intervals, got {self.dead_after}")


def shared_file(store: Store) -> bool:
    """Whether other processes can open ``store``: a SQLite file (not ``:memory:``, not Riak)."""
    return isinstance(store, SqliteStore) and store.path not in ("", ":memory:")


def coordination_for(
    store: Store, coordinate: bool | CoordinationConfig | None, *, ticks_itself: bool
) -> CoordinationConfig | None:
    """The coordination a queue on ``store`` runs with (see the module docstring), or None."""
    if coordinate is False:
        return None
    shared = shared_file(store)
    if coordinate is None:
        return CoordinationConfig(share_instances=False) if shared and ticks_itself else None
    if not shared:
        raise ConfigError(
            f"coordinate needs a SQLite file store, not {store!r}: the lease and the instance"
            " registry live in SQLite (':memory:' cannot be shared; on Riak run one scheduler)"
        )
    return coordinate if isinstance(coordinate, CoordinationConfig) else CoordinationConfig()


@dataclasses.dataclass(frozen=True, slots=True)
class InstanceGroup:
    """One handler's instances, as a coordinated queue runs them."""

    name: str
    handler: Callable[[], Handler]
    instances: int
    capacity: int
    tags: frozenset[str]
    options: Any
    max_output: int


class Membership:
    """This process in its store's cluster: its workers, its candidacy, its log relay."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        config: CoordinationConfig,
        events: Any,
        *,
        call_timeout: float = 5.0,
        lease_clock: Clock | None = None,
        engine_lock: threading.Lock | None = None,
        outbox: Any | None = None,
    ) -> None:
        """``events``: the event manager's proxy; ``outbox``: where the scheduler's engine
        publishes when instances are not shared (the manager's outbox, or ``events``).
        """
        if not isinstance(store, SqliteStore):
            raise ConfigError(f"coordination needs a SqliteStore, got {store!r}")
        self.config = config
        self.report = config.report or (lambda line: None)
        self.call_timeout = call_timeout
        #: liveness and the lease run on real time, whatever clock the tasks use
        self.lease_clock: Clock = lease_clock or SystemClock()
        self.node = default_holder()
        #: the scheduler's store: this process's connection to the file, with the fence
        self.fenced = FencedSqliteStore(store.path, bucket=store.bucket, share=store)
        self.coordination = SqliteCoordination(self.fenced)
        self.lease = Lease(self.coordination, self.lease_clock, config.lease, self.node)
        self.coordination.install_fence(self.lease.name, self.lease.current)
        #: registry, mailboxes and heartbeats of this process's workers (unfenced)
        self.registry = SqliteCoordination(store)
        self.relay = LogRelay(store, events, poll=config.poll)
        #: the scheduler's engine: fenced writes; events reach subscribers through the log
        #: (sharing instances) or directly, in order with the API's (``engine_lock``)
        self.engine = Engine(
            self.fenced,
            clock,
            self.relay if config.share_instances else (outbox or events),
            lock=engine_lock,
        )
        self.clock = clock
        self.workers: list[Worker] = []
        self.fleet: RemoteFleet | None = None
        self._scheduler: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log = get_logger(component="membership", node=self.node)

    # -- the scheduler's gate and candidacy ------------------------------------------------

    @property
    def gate(self) -> TickGate:
        def may_tick() -> str | None:
            if self.lease.held:
                return None
            return f"this process does not hold the scheduler lease of {self.fenced.path!r}"

        return may_tick

    @property
    def leading(self) -> bool:
        return self.fleet is not None

    def lease_step(self) -> bool:
        """Renew or take the lease, and begin or end a term to match; ``True`` if leading."""
        held = self.lease.poll()
        if held and self.fleet is None:
            self.fleet = RemoteFleet(
                self.coordination,
                self.engine,
                self._scheduler,
                self.lease_clock,
                dead_after=self.config.dead_after,
                call_timeout=self.call_timeout,
            )
            self.report(f"scheduler {self.node}: lease acquired, epoch {self.lease.epoch}")
            self.fleet.poll()
            self._scheduler.trigger()
        elif not held and self.fleet is not None:
            self._end_term(self.lease.lost_reason or "lost")
        return self.fleet is not None

    def _end_term(self, reason: str) -> None:
        fleet, self.fleet = self.fleet, None
        self.report(f"scheduler {self.node}: ticking stopped ({reason})")
        if fleet is not None:
            for name in list(fleet.handles):
                self._scheduler.remove_instance(name).get(timeout=self.call_timeout)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, scheduler: Any, groups: Sequence[InstanceGroup]) -> Membership:
        """Start the workers, take the lease if it is free, start the background threads.

        ``scheduler`` is the queue's Scheduler proxy (its engine is :attr:`engine`).
        """
        self._scheduler = scheduler
        if not self.config.share_instances:
            groups = ()  # the queue runs its own instances on the direct path
        else:
            self.relay.start()
        try:
            for group in groups:
                self.workers.append(self._start_worker(group))
        except BaseException:
            self.stop()
            raise
        self._guard("lease", self.lease_step)  # its first term sees this process's instances
        if not self.leading:
            self.report(f"scheduler {self.node}: standing by for lease {self.lease.name!r}")
        self._thread = threading.Thread(target=self._run, name="riaktq-member", daemon=True)
        self._thread.start()
        return self

    def _start_worker(self, group: InstanceGroup) -> Worker:
        for name in (group.name, f"{group.name}@{self.node}"):
            config = WorkerConfig(
                instances=group.instances,
                capacity=group.capacity,
                tags=group.tags,
                heartbeat=self.config.heartbeat,
                poll=self.config.poll,
                call_timeout=self.call_timeout,
                name=name,
                options=group.options,
                max_output=group.max_output,
                unique_names=name != group.name,
            )
            worker = Worker(self.registry, group.handler, config, self.clock, self.report)
            try:
                return worker.start()
            except ConfigError:
                if name != group.name:
                    raise
                self._log.info("instance names taken; using this process's own", handler=name)
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Drain the workers (within ``grace``), stop the candidacy, release the lease."""
        for worker in self.workers:
            worker.shutdown(self.config.grace)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.call_timeout)
        if self.fleet is not None:
            self._end_term("stopping")
        if self.lease.release():
            self.report(f"scheduler {self.node}: lease released")
        if self.config.share_instances:
            self.relay.stop(self.call_timeout)

    def close(self) -> None:
        """Close the scheduler's fenced connection (after its scheduler stopped)."""
        self.fenced.close()

    def wait_idle(self, timeout: float) -> None:
        """Block until every assignment given to this process's instances is run and handed in.

        Polls the mailboxes (the workers' pumps run on their own threads) until
        none holds an assignment, or raises TimeoutError after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        names = [name for worker in self.workers for name in worker.names]
        while any(self.registry.mailbox(name).inputs for name in names):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"instances not idle after {timeout} s")
            self._stop.wait(self.config.poll / 2)

    def _run(self) -> None:
        renew = self.config.lease.renew_interval
        next_lease = time.monotonic() + renew
        while not self._stop.wait(self.config.poll):
            # the holder renews every ``renew_every``; a standby watches at every poll
            if self.fleet is None or time.monotonic() >= next_lease:
                next_lease = time.monotonic() + renew
                self._guard("lease", self.lease_step)
            fleet = self.fleet
            if fleet is not None:
                self._guard("registry poll", fleet.poll)

    def _guard(self, what: str, step: Callable[[], Any]) -> None:
        try:
            step()
        except Exception as exc:
            self._log.error(f"{what} failed", error=f"{type(exc).__name__}: {exc}")
