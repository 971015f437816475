"""One throughput run of riaktq-py: N no-op tasks, open to done, on a SQLite file store.

The producer (the calling thread) opens the tasks while W instances run them.
The clock runs from just before the first open until every task is ``done`` in
the store. Completion is detected without a subscriber during the run (so the
fan-out benchmark can compare 0 and 10 subscribers): the handler counts its
calls, and only once it has run N times does a watcher subscribe and wait for
the last commits. Latencies (open to done) are read afterwards from the
store's transition log: the close event's ``at`` minus the task's ``cat``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import tempfile
import threading
import time
from typing import Any

from bench.common import positive_int
from riaktq_py.app import Riaktq
from riaktq_py.events import TaskEvent
from riaktq_py.store.base import TaskQuery
from riaktq_py.store.sqlite import SqliteStore
from riaktq_py.task import Status

HANDLER = "noop"
QUICK_N = 2_000
LOG_PAGE = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class RunConfig:
    n: int = 20_000
    workers: int = 4
    capacity: int = 64
    batch: int = 1  # tasks per open call: 1 uses Riaktq.open, more use open_many
    synchronous: str = "NORMAL"
    timeout: float = 600.0
    drain_timeout: float = 60.0  # for subscribers to catch up after the last done


@dataclasses.dataclass(frozen=True, slots=True)
class RunResult:
    system: str
    n: int
    seconds: float
    latencies_ms: tuple[float, ...]
    open_seconds: float = 0.0  # how long the producer took to open everything
    events: int = 0  # transitions logged by the store during the run
    drain_seconds: float = 0.0  # after the last done, until every subscriber caught up
    delivery: Delivery | None = None  # None without subscribers

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else math.inf


def add_run_options(parser: argparse.ArgumentParser, n: int = 20_000) -> None:
    """The options that shape a run (shared by the throughput and fan-out scripts)."""
    parser.add_argument("--n", type=positive_int, default=n, help="tasks per run")
    parser.add_argument("--quick", action="store_true", help=f"small run: N={QUICK_N}")
    parser.add_argument("--workers", type=positive_int, default=4, help="worker threads")
    parser.add_argument(
        "--capacity", type=positive_int, default=64,
        help="riaktq instance capacity (queued tasks per instance; workers stay one thread each)",
    )  # fmt: skip
    parser.add_argument(
        "--batch", type=positive_int, default=1,
        help="riaktq tasks per open call (1: Riaktq.open per task, as Huey enqueues)",
    )  # fmt: skip
    parser.add_argument(
        "--synchronous", choices=("OFF", "NORMAL", "FULL"), default="NORMAL",
        help="PRAGMA synchronous of the SQLite file (WAL mode)",
    )  # fmt: skip


def run_config(args: argparse.Namespace) -> RunConfig:
    return RunConfig(
        n=QUICK_N if args.quick else args.n,
        workers=args.workers,
        capacity=args.capacity,
        batch=args.batch,
        synchronous=args.synchronous,
    )


def warm_up_config(config: RunConfig) -> RunConfig:
    """A short run of the same shape, left out of the figures: the first run in a
    process is 10-15 % slower here (first statements prepared, caches filled)."""
    return dataclasses.replace(config, n=min(config.n, QUICK_N))


def describe_config(config: RunConfig) -> str:
    return (
        f"N={config.n} workers={config.workers} riaktq capacity={config.capacity}"
        f" batch={config.batch} synchronous={config.synchronous}"
    )


class Countdown:
    """Counts calls from many threads; ``wait`` returns once ``n`` have arrived."""

    def __init__(self, n: int) -> None:
        self.remaining = n
        self._done = threading.Event()
        self._lock = threading.Lock()

    def hit(self) -> None:
        with self._lock:
            self.remaining -= 1
            if self.remaining <= 0:
                self._done.set()

    def wait(self, timeout: float) -> None:
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.remaining} still missing after {timeout} s")


class EventCounter:
    """A subscriber that counts events and notes those that arrive out of log order.

    Only its delivery thread calls it, so counting takes no lock; the condition is
    taken once, when the awaited total is reached (``wait_for`` sets the total
    before it looks at the count, and the count is raised before the total is read).
    """

    def __init__(self) -> None:
        self.count = 0
        self.last_position = 0
        self.out_of_order: list[str] = []  # "assign 'k' (pos 9) after pos 12"
        self._target = math.inf
        self._cond = threading.Condition()

    def __call__(self, event: TaskEvent) -> None:
        position = event.position
        if position <= self.last_position:
            self.out_of_order.append(
                f"{event.transition} {event.key!r} (position {position})"
                f" after position {self.last_position}"
            )
        else:
            self.last_position = position
        self.count += 1
        if self.count >= self._target:
            with self._cond:
                self._cond.notify_all()

    def take(self, events: list[TaskEvent]) -> None:
        """The same, for a batch subscriber (``subscribe(..., batch=True)``)."""
        last = self.last_position
        for event in events:
            if event.position <= last:
                self.out_of_order.append(
                    f"{event.transition} {event.key!r} (position {event.position})"
                    f" after position {last}"
                )
            else:
                last = event.position
        self.last_position = last
        self.count += len(events)
        if self.count >= self._target:
            with self._cond:
                self._cond.notify_all()

    def wait_for(self, total: int, timeout: float) -> bool:
        with self._cond:
            self._target = total
            return self._cond.wait_for(lambda: self.count >= total, timeout)


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """What the subscribers of a run received, against the store's log."""

    logged: int
    received: tuple[int, ...]  # per subscriber
    out_of_order: tuple[int, ...]  # per subscriber
    examples: tuple[str, ...]  # a few out-of-order arrivals

    @property
    def complete(self) -> bool:
        return all(n == self.logged for n in self.received)

    @property
    def in_order(self) -> bool:
        return not any(self.out_of_order)


def _wait_all_done(tq: Riaktq, store: SqliteStore, n: int, timeout: float) -> None:
    """Block until ``n`` tasks are done in the store, woken by close events."""
    woke = threading.Event()

    def on_event(event: TaskEvent) -> None:
        if event.transition == "close":
            woke.set()

    deadline = time.monotonic() + timeout
    number = tq.subscribe(on_event)
    try:
        while store.count(TaskQuery(status=Status.DONE)) < n:
            if not woke.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"not all {n} tasks done after {timeout} s")
            woke.clear()
    finally:
        tq.unsubscribe(number)


def read_log(store: SqliteStore) -> list[TaskEvent]:
    """Every event in the store's log, in order."""
    events: list[TaskEvent] = []
    while page := store.events_after(events[-1].position if events else 0, LOG_PAGE):
        events.extend(page)
    return events


def close_latencies_ms(events: list[TaskEvent]) -> tuple[float, ...]:
    """Open-to-done per task: the close event's ``at`` minus the task's ``cat``, in ms."""
    return tuple(
        (e.at - e.task.cat) / 1000
        for e in events
        if e.transition == "close" and e.task is not None and e.task.status is Status.DONE
    )


def _open_all(tq: Riaktq, keys: list[str], batch: int) -> None:
    if batch == 1:
        for key in keys:
            tq.open(key, None, handler=HANDLER)
    else:
        for start in range(0, len(keys), batch):
            tq.open_many([(k, None) for k in keys[start : start + batch]], handler=HANDLER)


def run_riaktq(config: RunConfig, subscribers: int = 0, batch: bool = False) -> RunResult:
    """N no-op tasks through riaktq-py; ``subscribers`` extra counting subscribers
    (``batch``: subscribed with ``batch=True``, called once per delivery)."""
    with tempfile.TemporaryDirectory(prefix="riaktq-bench-") as directory:
        store = SqliteStore(os.path.join(directory, "tasks.db"), synchronous=config.synchronous)
        try:
            return _run(store, config, subscribers, batch)
        finally:
            store.close()


def _run(store: SqliteStore, config: RunConfig, subscribers: int, batch: bool) -> RunResult:
    handled = Countdown(config.n)

    def noop(value: Any) -> None:
        handled.hit()

    tq = Riaktq(store)
    tq.add_handler(HANDLER, noop, instances=config.workers, capacity=config.capacity)
    counters = [EventCounter() for _ in range(subscribers)]
    keys = [f"task-{i:07d}" for i in range(config.n)]
    with tq:
        for counter in counters:
            tq.subscribe(counter.take, batch=True) if batch else tq.subscribe(counter)
        started = time.perf_counter()
        _open_all(tq, keys, config.batch)
        opened = time.perf_counter()
        handled.wait(config.timeout)
        _wait_all_done(tq, store, config.n, config.timeout)
        finished = time.perf_counter()
        events = read_log(store)
        for counter in counters:
            counter.wait_for(len(events), config.drain_timeout)
        drained = time.perf_counter()
    delivery = Delivery(
        len(events),
        tuple(c.count for c in counters),
        tuple(len(c.out_of_order) for c in counters),
        tuple(example for c in counters[:1] for example in c.out_of_order[:3]),
    )
    return RunResult(
        "riaktq",
        config.n,
        finished - started,
        close_latencies_ms(events),
        open_seconds=opened - started,
        events=len(events),
        drain_seconds=(drained - finished) if counters else 0.0,
        delivery=delivery if counters else None,
    )
