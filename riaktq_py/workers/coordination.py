"""The coordination contract: how schedulers and worker processes meet in the store.

A worker needs nothing but access to the store (no new network server). The
store holds, next to the tasks:

- an **instance registry**: one record per remote instance (name, worker,
  tags, capacity, heartbeat interval) and its heartbeat, a counter the worker
  bumps every interval;
- per-instance **mailboxes**: assignments the scheduler puts (a row stays
  until the worker hands in its result: ``taken`` once the worker started it),
  and results the worker puts, until the scheduler commits them;
- a **lease** with an epoch: the one scheduler allowed to tick holds it.

Who writes what::

    worker     register, beat, take, finish, drain, leave
    scheduler  put, commit, cancel, forget (fenced by the lease), lease_*

Every scheduler write is *fenced*: :meth:`Coordination.install_fence` makes
the store check, inside each write transaction, that the lease is still held
at the epoch the scheduler acquired, and raise :class:`LeaseLost` otherwise.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Sequence

from riaktq_py.actors.instance import Assignment, Result
from riaktq_py.errors import StoreError

#: the lease the scheduler holds (one per store)
SCHEDULER_LEASE = "scheduler"


class LeaseLost(StoreError):
    """A fenced write was refused: this process no longer holds the lease it acted under."""


@dataclasses.dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One remote instance, as registered by its worker."""

    name: str
    worker: str
    tags: frozenset[str]
    capacity: int
    #: the worker's heartbeat interval (µs); liveness is judged in these units
    interval_us: int
    #: heartbeat counter, bumped by the worker every interval
    beat: int = 0
    #: the worker's clock at the last beat (µs): informative only, never compared
    beat_at: int = 0
    #: the worker is shutting down: it takes no new work
    draining: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Mailbox:
    """One instance's registry record and queues, read in one consistent snapshot."""

    record: InstanceRecord | None
    #: keys of its assignments, oldest first (taken ones included)
    inputs: tuple[str, ...]
    #: keys it has taken (started); the worker runs one at a time per instance
    taken: tuple[str, ...]
    #: results waiting to be committed
    outputs: tuple[Result, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The lease as stored. ``beat`` changes at every renewal."""

    name: str
    holder: str | None
    epoch: int
    beat: int
    #: the holder's clock when it last renewed, plus the duration (informative)
    expires_at: int
    released: bool


class Coordination(abc.ABC):
    """Registry, mailboxes and lease over one store. See the module docstring."""

    # -- worker side ---------------------------------------------------------------

    @abc.abstractmethod
    def register(self, records: Sequence[InstanceRecord], *, replace: bool = False) -> None:
        """Add these instances to the registry.

        A name already registered is refused (:class:`~riaktq_py.errors.ConfigError`),
        unless ``replace`` (a worker registering its own instances again).
        """

    @abc.abstractmethod
    def beat(self, names: Sequence[str], at: int) -> list[str]:
        """Bump the heartbeat of ``names``; returns those no longer registered."""

    @abc.abstractmethod
    def take(self, names: Sequence[str]) -> dict[str, Assignment]:
        """For each idle instance, its next assignment, marked taken.

        That is its oldest untaken one, unless it already took one it has not
        finished: an idle instance lost it, so it is given again.
        """

    @abc.abstractmethod
    def finish(self, results: Sequence[tuple[str, Result]]) -> None:
        """Hand in results: each (instance, result) replaces its assignment, atomically."""

    @abc.abstractmethod
    def drain(self, names: Sequence[str]) -> list[str]:
        """Mark instances draining and drop their untaken assignments; returns those keys."""

    @abc.abstractmethod
    def leave(self, names: Sequence[str]) -> None:
        """Remove instances from the registry with their assignments (results stay)."""

    # -- scheduler side --------------------------------------------------------------

    @abc.abstractmethod
    def directory(self) -> dict[str, InstanceRecord | None]:
        """Every registered instance, and (as ``None``) unregistered ones with results."""

    @abc.abstractmethod
    def mailbox(self, name: str) -> Mailbox:
        """One instance's record and queues, in one snapshot."""

    @abc.abstractmethod
    def put(self, name: str, assignments: Sequence[Assignment]) -> list[str]:
        """Queue assignments for a registered, not draining instance; returns keys queued."""

    @abc.abstractmethod
    def commit(self, name: str, entries: Sequence[tuple[str, int]]) -> int:
        """Drop committed (key, token) results; returns how many were dropped."""

    @abc.abstractmethod
    def cancel(self, name: str, entries: Sequence[tuple[str, int]]) -> list[str]:
        """Drop canceled (key, token) assignments not taken yet; returns their keys."""

    @abc.abstractmethod
    def forget(self, name: str) -> int:
        """A dead instance: drop its registry record and assignments (results stay)."""

    @abc.abstractmethod
    def signal(self) -> tuple[int, ...]:
        """A value that changes whenever there may be work: a task changed, a result came."""

    # -- the lease ------------------------------------------------------------------

    @abc.abstractmethod
    def lease_get(self, name: str) -> LeaseRecord | None:
        """The lease as stored, or ``None`` if nobody ever took it."""

    @abc.abstractmethod
    def lease_acquire(
        self, name: str, holder: str, expected: LeaseRecord | None, now: int, duration_us: int
    ) -> LeaseRecord | None:
        """Take the lease with the next epoch, if it is still exactly ``expected``."""

    @abc.abstractmethod
    def lease_renew(self, name: str, holder: str, epoch: int, now: int, duration_us: int) -> bool:
        """Renew a held lease; ``False`` if ``holder`` no longer holds it at ``epoch``."""

    @abc.abstractmethod
    def lease_release(self, name: str, holder: str, epoch: int) -> bool:
        """Give the lease up so a standby takes it at once; ``False`` if not held."""

    @abc.abstractmethod
    def install_fence(self, name: str, current: Callable[[], tuple[str, int] | None]) -> None:
        """Fence every later write of this coordination's store by lease ``name``.

        ``current()`` gives the (holder, epoch) this process believes it holds,
        or ``None``; a write proceeds only if the stored lease matches it.
        """
