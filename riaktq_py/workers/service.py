"""The scheduler service: a scheduler that ticks only while it holds the lease.

One thread drives the lease (renew every ``renew_every``; as a standby, watch
and take over) and, while the lease is held, a
:class:`~riaktq_py.actors.scheduler.Scheduler` actor over the remote instances
a :class:`~riaktq_py.workers.remote.RemoteFleet` keeps in step with the
registry, and over any in-process instances it was given (they keep their
direct path). Each time the lease is acquired a new term starts (a new
scheduler actor and fresh liveness observations); when it is lost the actor
stops. Every write of a tick goes through the lease-fenced store, so a tick
still running in a deposed scheduler commits nothing.
:meth:`SchedulerService.stop` releases the lease so a standby takes over at once.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from riaktq_py.actors.handles import InstanceHandle
from riaktq_py.actors.scheduler import Scheduler, SchedulerConfig
from riaktq_py.actors.tick import TickStep
from riaktq_py.clock import Clock, SystemClock
from riaktq_py.engine import Engine
from riaktq_py.errors import ConfigError
from riaktq_py.log import get_logger
from riaktq_py.workers.lease import Lease, LeaseConfig
from riaktq_py.workers.remote import DEFAULT_DEAD_AFTER, RemoteFleet
from riaktq_py.workers.sqlite_coordination import FencedSqliteStore, SqliteCoordination


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Ticks, lease, how often the registry is polled (s), and when instances are dead."""

    scheduler: SchedulerConfig = dataclasses.field(
        default_factory=lambda: SchedulerConfig(interval=1.0)
    )
    lease: LeaseConfig = dataclasses.field(default_factory=LeaseConfig)
    poll: float = 0.05
    #: an instance is dead after this many of its heartbeat intervals without one
    dead_after: int = DEFAULT_DEAD_AFTER
    stop_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.poll > 0:
            raise ConfigError(f"poll must be > 0 seconds, got {self.poll}")
        if self.dead_after < 1:
            raise ConfigError(f"dead_after must be >= 1 intervals, got {self.dead_after}")


class SchedulerService:
    """See the module docstring. ``report`` receives one line per lease change."""

    def __init__(
        self,
        store: FencedSqliteStore,
        config: ServiceConfig | None = None,
        *,
        clock: Clock | None = None,
        holder: str | None = None,
        steps: Sequence[TickStep] = (),
        instances: Sequence[InstanceHandle] = (),
        report: Callable[[str], object] | None = None,
    ) -> None:
        self.config = config or ServiceConfig()
        self.clock: Clock = clock or SystemClock()
        self.coordination = SqliteCoordination(store)
        self.lease = Lease(self.coordination, self.clock, self.config.lease, holder)
        self.coordination.install_fence(self.lease.name, self.lease.current)
        self.engine = Engine(store, self.clock)
        self.steps = list(steps)
        #: in-process instances (e.g. LocalInstance): every term's scheduler gets them too
        self.instances = list(instances)
        self.report = report or (lambda line: None)
        self.scheduler: pykka.ActorRef[Scheduler] | None = None
        self.fleet: RemoteFleet | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log = get_logger(component="scheduler-service", holder=self.lease.holder)

    @property
    def ticking(self) -> bool:
        return self.scheduler is not None

    # -- one step (the thread loops over these; tests call them by hand) ---------------------

    def lease_step(self) -> bool:
        """Renew or take the lease, and start or stop ticking to match; ``True`` if ticking."""
        held = self.lease.poll()
        if held and self.scheduler is None:
            self._begin()
        elif not held and self.scheduler is not None:
            self._end(self.lease.lost_reason or "lost")
        return self.scheduler is not None

    def fleet_step(self) -> bool:
        """Refresh the remote instances; trigger a tick if due. ``True`` if triggered."""
        fleet = self.fleet
        return fleet.poll() if fleet is not None else False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> SchedulerService:
        self.report(f"scheduler {self.lease.holder}: standing by for lease {self.lease.name!r}")
        self._thread = threading.Thread(target=self._run, name="riaktq-service", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop ticking (the running tick finishes) and release the lease."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.config.stop_timeout)
        if self.scheduler is not None:
            self._end("stopping")
        if self.lease.release():
            self.report(f"scheduler {self.lease.holder}: lease released")
        self.report(f"scheduler {self.lease.holder}: stopped")

    def _run(self) -> None:
        renew = self.config.lease.renew_interval
        next_lease = 0.0
        while not self._stop.is_set():
            # the holder renews every ``renew_every``; a standby watches at every poll
            if self.scheduler is None or time.monotonic() >= next_lease:
                next_lease = time.monotonic() + renew
                self._guard("lease", self.lease_step)
            self._guard("registry poll", self.fleet_step)
            self._stop.wait(self.config.poll)

    def _guard(self, what: str, step: Callable[[], Any]) -> None:
        try:
            step()
        except Exception as exc:
            self._log.error(f"{what} failed", error=f"{type(exc).__name__}: {exc}")

    def _begin(self) -> None:
        self.scheduler = Scheduler.start(
            self.engine, self.instances, self.config.scheduler, self.steps
        )
        self.fleet = RemoteFleet(
            self.coordination,
            self.engine,
            self.scheduler.proxy(),
            self.clock,
            dead_after=self.config.dead_after,
            call_timeout=self.config.scheduler.tick.call_timeout,
        )
        self.report(f"scheduler {self.lease.holder}: lease acquired, epoch {self.lease.epoch}")

    def _end(self, reason: str) -> None:
        ref, self.scheduler, self.fleet = self.scheduler, None, None
        self.report(f"scheduler {self.lease.holder}: ticking stopped ({reason})")
        if ref is not None:
            try:
                ref.stop(block=True, timeout=self.config.stop_timeout)
            except pykka.Timeout:
                self._log.warning("scheduler did not stop in time; its writes are fenced")
