"""Test helpers, part of the public API: a fake clock, event capture, manual ticks.

``drive(tq)`` ticks by hand until there is nothing left to do.

clock = FakeClock()
tq = Riaktq(SqliteStore(), clock=clock, interval=None, debounce=None)
events = EventCapture()
with tq:
    tq.subscribe(events)
    tq.open("k", 1, handler="echo")
    run_tick(tq)                        # assign
    events.wait_for(lambda e: e.transition == "assign")
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from riaktq_py.actors.tick import TickReport
from riaktq_py.events import TaskEvent


class FakeClock:
    """A clock that only moves when told to. Thread-safe."""

    def __init__(self, start_us: int = 1_700_000_000_000_000) -> None:
        self._now = start_us
        self._lock = threading.Lock()

    def now_us(self) -> int:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0.0, *, us: int = 0) -> int:
        """Move forward by ``seconds`` (and ``us`` microseconds); returns the new time."""
        with self._lock:
            self._now += round(seconds * 1_000_000) + us
            return self._now

    def set(self, now_us: int) -> None:
        with self._lock:
            self._now = now_us


class Gate:
    """A handler that holds each task until the test releases its key (or all).

    ``started`` lists the task keys in the order they began; the handler returns
    its input. Waits are bounded by ``timeout`` so a test never hangs.
    """

    def __init__(self, timeout: float = 10.0) -> None:
        self.started: list[str] = []
        self.timeout = timeout
        self._released: set[str] = set()
        self._all = False
        self._cond = threading.Condition()

    def init(self, options: Any) -> Any:
        return None

    def handle(self, task_id: str, input: Any, tags: frozenset[str], state: Any) -> Any:
        with self._cond:
            self.started.append(task_id)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._all or task_id in self._released, self.timeout)
        return input

    def release(self, *keys: str) -> None:
        with self._cond:
            self._released.update(keys)
            self._cond.notify_all()

    def release_all(self) -> None:
        """Let every task through, now and from now on."""
        with self._cond:
            self._all = True
            self._cond.notify_all()

    def wait_started(self, key: str) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: key in self.started, self.timeout):
                raise TimeoutError(f"task {key!r} did not start within {self.timeout} s")


class EventCapture:
    """A subscriber that keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, event: Any) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        """The first captured event satisfying ``predicate``; waits for it up to ``timeout``."""
        with self._cond:
            found: list[Any] = []

            def ready() -> bool:
                found[:] = [e for e in self.events if predicate(e)][:1]
                return bool(found)

            if not self._cond.wait_for(ready, timeout):
                raise TimeoutError(f"no matching event within {timeout} s; saw {self.events!r}")
            return found[0]

    def wait_count(
        self, predicate: Callable[[Any], bool], count: int, timeout: float = 10.0
    ) -> list[Any]:
        """Wait until ``count`` captured events satisfy ``predicate``; returns them."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.count(predicate) >= count, timeout):
                raise TimeoutError(f"fewer than {count} matching events within {timeout} s")
            return [e for e in self.events if predicate(e)]

    def count(self, predicate: Callable[[Any], bool]) -> int:
        return sum(1 for e in self.events if predicate(e))

    def transitions(self, key: str | None = None) -> list[str]:
        """The transition names captured (for one task key, if given), in order."""
        with self._cond:
            return [
                e.transition
                for e in self.events
                if isinstance(e, TaskEvent) and (key is None or e.key == key)
            ]


def run_tick(queue: Any, timeout: float = 60.0) -> TickReport:
    """Run one tick by hand on a started :class:`~riaktq_py.Riaktq` and return its report."""
    report = queue.tick(timeout)
    if report is None:
        raise RuntimeError("the tick was dropped: another tick was running")
    assert isinstance(report, TickReport)
    return report


def _idle_report(report: TickReport) -> bool:
    return not (report.committed or report.restarted or report.assigned or report.rolled_back)


def drive(queue: Any, max_ticks: int = 1000, timeout: float = 60.0) -> list[TickReport]:
    """Tick by hand until a tick finds nothing to do; returns every tick's report.

    Before each tick it waits until the instances have run what they were given,
    so every tick sees their results: no sleeps, no timer.
    """
    reports: list[TickReport] = []
    for _ in range(max_ticks):
        queue.wait_idle(timeout)
        report = run_tick(queue, timeout)
        reports.append(report)
        if _idle_report(report):
            return reports
    raise RuntimeError(f"still busy after {max_ticks} ticks: {reports[-1]}")
