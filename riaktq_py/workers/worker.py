"""A worker process: instance actors fed from, and reporting to, mailboxes in the store.

The worker runs ``instances`` :class:`~riaktq_py.actors.instance.Instance`
actors. Each takes one assignment at a time from its mailbox (the rest stay
queued in the store, untaken, up to ``capacity``), and its result goes back
to the store in the same transaction that removes the assignment. A pump
thread does this whenever an instance finishes (and every ``poll`` seconds);
a heartbeat thread bumps every instance's heartbeat every ``heartbeat``
seconds, whatever the handlers are doing.

Graceful shutdown (:meth:`Worker.shutdown`): stop taking work, return the
untaken assignments to the scheduler at once (they roll back to todo in its
next tick, no liveness timeout involved), let running tasks finish within a
grace period while their results are handed in, then leave the registry.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pykka

from riaktq_py import payload
from riaktq_py.actors.handles import LocalInstance
from riaktq_py.actors.instance import Instance, InstanceState
from riaktq_py.clock import Clock, SystemClock, seconds_to_us
from riaktq_py.errors import ConfigError, StoreError
from riaktq_py.handlers import Handler
from riaktq_py.log import get_logger
from riaktq_py.workers.coordination import Coordination, InstanceRecord


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerConfig:
    """A worker's instances and timings (seconds)."""

    instances: int = 1
    #: assignments each instance accepts (one runs, the others wait in the store)
    capacity: int = 1
    tags: frozenset[str] = frozenset()
    heartbeat: float = 1.0
    poll: float = 0.05
    call_timeout: float = 5.0
    #: instance names are ``{name}-1`` ... (default: ``{host}-{pid}``)
    name: str | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    max_output: int = payload.DEFAULT_MAX_PAYLOAD
    #: instance names unique to this process (the default ``{host}-{pid}`` prefix):
    #: a worker declared dead registers them again. ``False`` (names another process
    #: may take once ours are forgotten): it registers again only if they are free,
    #: and otherwise stops taking work.
    unique_names: bool = True

    def __post_init__(self) -> None:
        for field in ("instances", "capacity"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"worker {field} must be an integer >= 1, got {value!r}")
        for field in ("heartbeat", "poll", "call_timeout"):
            if not getattr(self, field) > 0:
                raise ConfigError(f"worker {field} must be > 0 seconds, got {getattr(self, field)}")
        if self.name is not None and not self.name:
            raise ConfigError("worker name must not be empty")


def _handler_maker(handler: Handler | Callable[[], Handler]) -> Callable[[], Handler]:
    if isinstance(handler, Handler) and not inspect.isclass(handler):
        shared = handler
        return lambda: shared
    return handler


class Worker:
    """Runs instance actors for the scheduler of a store; see the module docstring."""

    def __init__(
        self,
        coordination: Coordination,
        handler: Handler | Callable[[], Handler],
        config: WorkerConfig | None = None,
        clock: Clock | None = None,
        report: Callable[[str], object] | None = None,
    ) -> None:
        """``handler``: one handler every instance shares, or what makes each instance's own
        (a function of no arguments, or a handler class)."""
        self.coordination = coordination
        self.report = report or (lambda line: None)
        #: makes each instance's handler
        self.make_handler = _handler_maker(handler)
        self.config = config or WorkerConfig()
        self.clock: Clock = clock or SystemClock()
        self.prefix = self.config.name or f"{socket.gethostname()}-{os.getpid()}"
        self.names = [f"{self.prefix}-{n}" for n in range(1, self.config.instances + 1)]
        self._refs: dict[str, pykka.ActorRef[Instance]] = {}
        #: the instances' queues, called directly under their lock (no actor round trip)
        self._handles: dict[str, LocalInstance] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drained = threading.Event()
        self._draining = False
        self._left = False
        self._threads: list[threading.Thread] = []
        self._log = get_logger(component="worker", worker=self.prefix)

    @property
    def draining(self) -> bool:
        return self._draining

    def records(self) -> list[InstanceRecord]:
        now = self.clock.now_us()
        interval = seconds_to_us(self.config.heartbeat)
        return [
            InstanceRecord(
                name,
                self.prefix,
                self.config.tags,
                self.config.capacity,
                interval,
                0,
                now,
                self._draining,
            )
            for name in self.names
        ]

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, *, threads: bool = True) -> Worker:
        """Start the instances and register them; ``threads=False``: pump and beat by hand."""
        self.coordination.register(self.records())  # refused if the names are taken
        try:
            for name in self.names:
                self._refs[name] = Instance.start(
                    name,
                    self.make_handler(),
                    clock=self.clock,
                    tags=self.config.tags,
                    capacity=1,
                    options=self.config.options,
                    max_output=self.config.max_output,
                    on_result=self._wake.set,
                )
                self._handles[name] = LocalInstance(
                    name, self._refs[name], self.config.call_timeout
                )
        except BaseException:
            self.stop()
            self.coordination.leave(self.names)
            raise
        if threads:
            for target, label in ((self._pump_loop, "pump"), (self._beat_loop, "heartbeat")):
                thread = threading.Thread(target=target, name=f"riaktq-worker-{label}", daemon=True)
                thread.start()
                self._threads.append(thread)
        self._log.info("worker started", instances=self.names)
        return self

    def shutdown(self, grace: float) -> bool:
        """Drain, let running tasks finish within ``grace`` s, leave; ``True`` if all finished."""
        deadline = time.monotonic() + grace
        released = self._until(deadline, self.drain)
        self._log.info("draining", released=len(released or ()))
        returned = "could not return" if released is None else f"returned {len(released)}"
        self.report(f"worker {self.prefix}: draining; {returned} queued task(s) to the scheduler")
        finished = self._drained.wait(max(0.0, deadline - time.monotonic()))
        self._left = True
        left = self._until(time.monotonic() + self.config.call_timeout, self._leave)
        if left is None:
            self._log.warning("could not leave the registry: the scheduler will find us dead")
        self.stop()
        return finished

    def stop(self) -> None:
        """Stop threads and instances at once (no draining, no leaving)."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(self.config.call_timeout)
        for ref in self._refs.values():
            ref.stop(block=False)

    def _until(self, deadline: float, step: Any) -> Any:
        """Run ``step`` until it does not raise a StoreError, or the deadline passes."""
        while True:
            try:
                return step()
            except StoreError as exc:
                self._log.warning("store unavailable; retrying", error=str(exc))
                if time.monotonic() >= deadline or self._stop.wait(self.config.poll):
                    return None

    def _leave(self) -> bool:
        self.coordination.leave(self.names)
        return True

    # -- one step each (the threads loop over these) ----------------------------------------

    def drain(self) -> list[str]:
        """Take no more work; hand the untaken assignments back; returns their keys."""
        self._draining = True
        released = self.coordination.drain(self.names)
        self._wake.set()
        return released

    def states(self) -> dict[str, InstanceState]:
        timeout = self.config.call_timeout
        return {name: handle.get(timeout) for name, handle in self._handles.items()}

    def wait_idle(self, timeout: float) -> None:
        """Block until every instance has run what it was given (its result is ready)."""
        for ref in self._refs.values():
            ref.proxy().idle().get(timeout=timeout).get(timeout=timeout)

    def pump(self) -> bool:
        """Hand in results, then give idle instances their next assignment.

        Returns ``True`` when draining and every instance is idle with its
        results handed in.
        """
        timeout = self.config.call_timeout
        states = self.states()
        results = [(name, r) for name, state in states.items() for r in state.outputs]
        if results:
            self.coordination.finish(results)  # durable first; then forget them locally
            for name, state in states.items():
                if state.outputs:
                    entries = [(r.key, r.token) for r in state.outputs]
                    self._handles[name].commit(entries, timeout)
        idle = [name for name, state in states.items() if not state.inputs]
        if self._draining:
            return len(idle) == len(states)
        for name, assignment in self.coordination.take(idle).items():
            self._handles[name].put([assignment], timeout)
        return False

    def beat(self) -> None:
        """One heartbeat for every instance; re-register any the scheduler forgot."""
        missing = self.coordination.beat(self.names, self.clock.now_us())
        if missing and not self._left:
            self._log.warning("instances were declared dead; registering again", names=missing)
            records = [r for r in self.records() if r.name in missing]
            try:
                self.coordination.register(records, replace=self.config.unique_names)
            except ConfigError as exc:  # another process took the names meanwhile
                self._log.error("instance names taken over; taking no more work", error=str(exc))
                self.report(f"worker {self.prefix}: {exc}; taking no more work")
                self._draining = True

    # -- threads ----------------------------------------------------------------------------

    def _pump_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.config.poll)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                idle = self.pump()
            except Exception as exc:  # the store or an instance failed: retry on the next turn
                self._log.warning("pump failed; retrying", error=f"{type(exc).__name__}: {exc}")
                continue
            if idle:
                self._drained.set()

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.config.heartbeat):
            try:
                self.beat()
            except StoreError as exc:
                self._log.warning("heartbeat failed", error=str(exc))
