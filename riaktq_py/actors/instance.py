"""Instance actors (SPEC A3): an input queue, an output queue, one task at a time.

The handler runs on the instance's own worker thread, so the actor keeps
answering ``get``, ``put`` and ``commit`` while a task runs; the worker takes
the next task from the input queue itself, so a busy instance costs no
message per task. A task stays at the head of the input queue while it runs;
its result then waits in the output queue, with ``sat`` and ``laf``, until
the scheduler commits it.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pykka

from riaktq_py import payload
from riaktq_py.actors.alarm import Alarm
from riaktq_py.clock import Clock
from riaktq_py.errors import ConfigError, PayloadError
from riaktq_py.handlers import Handler
from riaktq_py.log import get_logger
from riaktq_py.runner import HandlerFailed, SubprocessHandler
from riaktq_py.task import Outcome


@dataclasses.dataclass(frozen=True, slots=True)
class Assignment:
    """A task handed to an instance."""

    key: str
    token: int
    input: bytes
    tags: frozenset[str] = frozenset()
    #: seconds one attempt may run (None: no limit)
    timeout: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    """An instance's result for one assignment, waiting to be committed."""

    key: str
    token: int
    outcome: Outcome
    sat: int
    laf: int
    out: bytes | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class InstanceState:
    """What ``get`` answers: enough for the scheduler's tick."""

    name: str
    tags: frozenset[str]
    capacity: int
    busy: bool
    inputs: tuple[str, ...]
    outputs: tuple[Result, ...]

    @property
    def free(self) -> int:
        """How many more tasks the input queue accepts."""
        return max(0, self.capacity - len(self.inputs))


@dataclasses.dataclass(frozen=True, slots=True)
class _Expired:
    run: int


def run_handler(
    handler: Handler, state: Any, assignment: Assignment, clock: Clock, max_output: int
) -> Result:
    """Run one assignment through a handler and normalise the outcome into a Result."""
    sat = clock.now_us()
    outcome, out, error = Outcome.DONE, None, None
    try:
        value = payload.decode(assignment.input, what=f"input of {assignment.key!r}")
        if isinstance(handler, SubprocessHandler):  # enforces the timeout itself
            output = handler.run(assignment.key, value, assignment.tags, assignment.timeout)
        else:
            output = handler.handle(assignment.key, value, assignment.tags, state)
        out = payload.encode(output, limit=max_output, what=f"output of {assignment.key!r}")
    except (PayloadError, HandlerFailed) as exc:
        outcome, error = Outcome.FAILED, str(exc)
    except Exception as exc:
        outcome, error = Outcome.FAILED, f"{type(exc).__name__}: {exc}"
    return Result(assignment.key, assignment.token, outcome, sat, clock.now_us() - sat, out, error)


class Instance(pykka.ThreadingActor):
    """Runs tasks through one handler, one at a time, in arrival order."""

    def __init__(
        self,
        name: str,
        handler: Handler,
        *,
        clock: Clock,
        tags: frozenset[str] = frozenset(),
        capacity: int = 1,
        options: Mapping[str, Any] | None = None,
        max_output: int = payload.DEFAULT_MAX_PAYLOAD,
        on_result: Callable[[], object] | None = None,
    ) -> None:
        super().__init__()
        if capacity < 1:
            raise ConfigError(f"instance {name!r}: capacity must be >= 1, got {capacity}")
        self.name = name
        self.handler = handler
        self.clock = clock
        self.tags = frozenset(tags)
        self.capacity = capacity
        self.options = dict(options or {})
        self.max_output = max_output
        self.on_result = on_result
        self._inputs: collections.deque[Assignment] = collections.deque()
        self._outputs: dict[tuple[str, int], Result] = {}
        self._running: Assignment | None = None
        self._state: Any = None
        self._idle_waiters: list[pykka.ThreadingFuture[None]] = []
        self._runs = itertools.count(1)
        self._run_id = 0
        self._started_us = 0
        self._alarm: Alarm | None = None  # task timeouts in thread mode
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"riaktq-{name}")
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._log = get_logger(instance=name)

    def on_start(self) -> None:
        self._state = self.handler.init(self.options)

    def on_stop(self) -> None:
        self._stopping.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._alarm is not None:
            self._alarm.stop()
        if isinstance(self.handler, SubprocessHandler):
            self.handler.close()

    # -- the instance's operations -------------------------------------------------
    # The queues are shared with the worker thread, which takes its next task
    # itself (no message per task): every access holds ``self._lock``.

    @contextlib.contextmanager
    def _locked(self, timeout: float | None) -> Iterator[None]:
        """Hold the queues' lock; TimeoutError if it is not free within ``timeout`` s."""
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError(f"instance {self.name!r}: queues busy for {timeout} s")
        try:
            yield
        finally:
            self._lock.release()

    def queues(self) -> Instance:
        """This instance, whose queue operations are thread-safe (see :class:`LocalInstance`)."""
        return self

    def get(self, timeout: float | None = None) -> InstanceState:
        with self._locked(timeout):
            return InstanceState(
                self.name,
                self.tags,
                self.capacity,
                self._running is not None,
                tuple(a.key for a in self._inputs),
                tuple(self._outputs.values()),
            )

    def put(self, assignments: Sequence[Assignment], timeout: float | None = None) -> list[str]:
        """Append to the input queue, up to capacity; returns the keys accepted."""
        with self._locked(timeout):
            accepted = list(assignments[: max(0, self.capacity - len(self._inputs))])
            self._inputs.extend(accepted)
            started = self._next_locked()
        if started is not None:
            self._executor.submit(self._work, *started)
        return [a.key for a in accepted]

    def commit(self, entries: Sequence[tuple[str, int]], timeout: float | None = None) -> int:
        """Drop committed (key, token) entries from the output queue."""
        with self._locked(timeout):
            return sum(self._outputs.pop(entry, None) is not None for entry in entries)

    def cancel(self, entries: Sequence[tuple[str, int]], timeout: float | None = None) -> list[str]:
        """Drop canceled (key, token) tasks not started yet; returns their keys.

        A task already running is not interrupted (threads cannot be killed):
        its result arrives as usual and is recorded in the task's history.
        """
        doomed = set(entries)
        with self._locked(timeout):
            dropped = [
                a.key for a in self._inputs if (a.key, a.token) in doomed and a is not self._running
            ]
            self._inputs = collections.deque(
                a for a in self._inputs if a.key not in dropped or a is self._running
            )
            self._notify_idle_locked()
        return dropped

    def idle(self) -> pykka.ThreadingFuture[None]:
        """A future set once the input queue is empty (every result is in the output queue)."""
        future: pykka.ThreadingFuture[None] = pykka.ThreadingFuture()
        with self._lock:
            if self._inputs:
                self._idle_waiters.append(future)
                return future
        future.set(None)
        return future

    # -- running ---------------------------------------------------------------------

    def _next_locked(self) -> tuple[Assignment, int] | None:
        """Mark the head of the input queue running, if nothing runs; returns it."""
        if self._running is not None or not self._inputs or self._stopping.is_set():
            return None
        assignment = self._running = self._inputs[0]
        run = self._run_id = next(self._runs)
        self._started_us = self.clock.now_us()
        if assignment.timeout is not None and not isinstance(self.handler, SubprocessHandler):
            if self._alarm is None:  # made on the first timeout: most instances need none
                self._alarm = Alarm(self.actor_ref, f"riaktq-{self.name}-timeout")
            self._alarm.after(assignment.timeout, _Expired(run))
        return assignment, run

    def _work(self, assignment: Assignment, run: int) -> None:
        """The worker thread: run tasks until the input queue is empty."""
        next_task: tuple[Assignment, int] | None = (assignment, run)
        while next_task is not None:
            assignment, run = next_task
            result = run_handler(self.handler, self._state, assignment, self.clock, self.max_output)
            with self._lock:
                if self._stopping.is_set():
                    return  # stopped meanwhile: the scheduler's rollback runs it again
                if run != self._run_id:
                    self._log.warning("late result of an abandoned run ignored", key=assignment.key)
                    return
                self._finish_locked(result)
                next_task = self._next_locked()
            if self.on_result is not None:
                self.on_result()

    def on_receive(self, message: Any) -> None:
        if not isinstance(message, _Expired):
            return
        with self._lock:
            if message.run != self._run_id or self._running is None:
                return
            self._finish_locked(self._timed_out(self._running))
            started = self._next_locked()
        if started is not None:
            self._executor.submit(self._work, *started)
        if self.on_result is not None:
            self.on_result()

    def _timed_out(self, assignment: Assignment) -> Result:
        """Thread mode: the run is abandoned (its thread ends when the handler returns)."""
        self._executor.shutdown(wait=False)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"riaktq-{self.name}")
        error = (
            f"TimeoutError: ran longer than {assignment.timeout} s;"
            " abandoned (its thread runs on until the handler returns)"
        )
        laf = self.clock.now_us() - self._started_us
        self._log.warning("task timed out", key=assignment.key, timeout=assignment.timeout)
        return Result(
            assignment.key, assignment.token, Outcome.FAILED, self._started_us, laf, None, error
        )

    def _finish_locked(self, result: Result) -> None:
        if self._alarm is not None:
            self._alarm.cancel()
        self._inputs.popleft()
        self._running = None
        self._run_id = 0
        self._outputs[(result.key, result.token)] = result
        self._notify_idle_locked()

    def _notify_idle_locked(self) -> None:
        if not self._inputs:
            waiters, self._idle_waiters = self._idle_waiters, []
            for future in waiters:
                future.set(None)
