"""The scheduler lease: one scheduler ticks; a standby takes over when it goes silent.

The lease is a record in the store: holder, epoch, and a counter the holder
bumps at every renewal (every ``renew_every`` seconds). As in Kubernetes'
leader election, nobody compares clocks across hosts: a standby notes, on its
own clock, when it last saw the record change, and takes the lease over (with
the next epoch, by compare-and-set) once it has not changed for ``duration``.
A holder that cannot renew for ``duration - renew_every`` steps down by itself,
before any standby may take over.

Safety does not rest on timing: every write a tick makes is fenced by the
epoch (see :meth:`~riaktq_py.workers.coordination.Coordination.install_fence`),
so a deposed scheduler (paused, partitioned, slow clock) cannot commit
anything. :meth:`Lease.poll` is one step, driven by the caller: unit tests
drive it with a :class:`~riaktq_py.testing.FakeClock`.

On SQLite, a scheduler paused *inside* a write transaction keeps the file's
write lock: nobody writes, and no standby takes over, until it resumes (and
commits a write fenced when it began, before anyone else could act) or dies.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import uuid

from riaktq_py.clock import Clock, seconds_to_us
from riaktq_py.errors import ConfigError, StoreError
from riaktq_py.log import get_logger
from riaktq_py.workers.coordination import SCHEDULER_LEASE, Coordination


@dataclasses.dataclass(frozen=True, slots=True)
class LeaseConfig:
    """How long a lease lasts without renewal, and how often its holder renews it."""

    duration: float = 5.0
    #: default: a third of ``duration``
    renew_every: float | None = None
    name: str = SCHEDULER_LEASE

    def __post_init__(self) -> None:
        if not self.duration > 0:
            raise ConfigError(f"lease duration must be > 0 seconds, got {self.duration}")
        if self.renew_every is not None and not 0 < self.renew_every < self.duration:
            raise ConfigError(
                f"lease renew_every must be > 0 and < duration ({self.duration} s),"
                f" got {self.renew_every}"
            )
        if not self.name:
            raise ConfigError("lease name must not be empty")

    @property
    def renew_interval(self) -> float:
        return self.renew_every if self.renew_every is not None else self.duration / 3


def default_holder() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Lease:
    """One process's view of a lease: acquire, renew, step down, release."""

    def __init__(
        self,
        coordination: Coordination,
        clock: Clock,
        config: LeaseConfig | None = None,
        holder: str | None = None,
    ) -> None:
        self.coordination = coordination
        self.clock = clock
        self.config = config or LeaseConfig()
        self.holder = holder or default_holder()
        self.name = self.config.name
        self._duration = seconds_to_us(self.config.duration)
        self._hold_for = seconds_to_us(self.config.duration - self.config.renew_interval)
        self._lock = threading.Lock()
        self._epoch: int | None = None
        self._renewed_at = 0
        self._seen: tuple[str | None, int, int] | None = None
        self._seen_at = 0
        #: how many times this process acquired the lease (a new term each time)
        self.terms = 0
        self.lost_reason: str | None = None
        self._log = get_logger(component="lease", lease=self.name, holder=self.holder)

    @property
    def held(self) -> bool:
        return self.current() is not None

    @property
    def epoch(self) -> int | None:
        with self._lock:
            return self._epoch

    def current(self) -> tuple[str, int] | None:
        """(holder, epoch) while this process holds the lease and renewed it in time."""
        with self._lock:
            if self._epoch is None:
                return None
            if self.clock.now_us() - self._renewed_at >= self._hold_for:
                return None
            return (self.holder, self._epoch)

    def poll(self) -> bool:
        """Renew the lease if held, else try to take it; ``True`` if held afterwards."""
        if self.epoch is not None:
            self._renew()
        else:
            self._try_acquire()
        return self.held

    def release(self) -> bool:
        """Give the lease up (on shutdown): a standby takes it at once."""
        with self._lock:
            epoch, self._epoch = self._epoch, None
        if epoch is None:
            return False
        self.lost_reason = "released"
        try:
            released = self.coordination.lease_release(self.name, self.holder, epoch)
        except StoreError as exc:
            self._log.warning("lease not released", error=str(exc))
            return False
        self._log.info("lease released", epoch=epoch)
        return released

    # -- steps --------------------------------------------------------------------------

    def _renew(self) -> None:
        epoch = self.epoch
        assert epoch is not None
        now = self.clock.now_us()
        with self._lock:
            late = now - self._renewed_at >= self._hold_for
        if late:  # a standby may take over soon: never extend a stale term
            self._step_down("not renewed in time")
            return
        try:
            renewed = self.coordination.lease_renew(
                self.name, self.holder, epoch, now, self._duration
            )
        except StoreError as exc:
            self._log.warning("lease renewal failed; will retry", error=str(exc))
            return
        if renewed:
            with self._lock:
                self._renewed_at = now
        else:
            self._step_down("taken over by another scheduler")

    def _try_acquire(self) -> None:
        try:
            found = self.coordination.lease_get(self.name)
        except StoreError as exc:
            self._log.warning("cannot read the lease", error=str(exc))
            return
        now = self.clock.now_us()
        if found is not None and not found.released:
            seen = (found.holder, found.epoch, found.beat)
            if seen != self._seen:
                self._seen, self._seen_at = seen, now
                return
            if now - self._seen_at < self._duration:
                return
        try:
            taken = self.coordination.lease_acquire(
                self.name, self.holder, found, now, self._duration
            )
        except StoreError as exc:
            self._log.warning("cannot take the lease", error=str(exc))
            return
        if taken is None:
            return  # another standby was faster
        with self._lock:
            self._epoch, self._renewed_at = taken.epoch, now
        self.terms += 1
        self.lost_reason = None
        self._seen = None
        self._log.info("lease acquired", epoch=taken.epoch)

    def _step_down(self, reason: str) -> None:
        with self._lock:
            epoch, self._epoch = self._epoch, None
        self.lost_reason = reason
        self._log.warning("lease lost", epoch=epoch, reason=reason)
