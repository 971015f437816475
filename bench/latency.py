"""Latency at light load: one no-op task at a time, open to done.

    python -m bench.latency                    # 300 tasks (plus 10 warm-up)
    python -m bench.latency --tasks 1000

The scheduler keeps its default interval (60 s), so a task only finishes
quickly if opening it and its result trigger ticks (SPEC B10). Each task is
opened, then the caller waits for its close event before opening the next.
With ``--gap-ms``, the caller pauses before each open so that every task
finds the queue idle (no tick running, so the debounce applies). Two figures
per task:

- store: the close event's ``at`` minus the task's ``cat`` (both taken by the
  queue's clock): how long the task took to become ``done``;
- caller: wall time from just before ``open`` until the caller is woken by the
  close event (adds event delivery).

Targets (issue 7), on the store figure: p50 <= 10 ms, p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if not __package__:  # run as a file: python bench/latency.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import add_log_option, configure_logs, machine, percentile, positive_int, verdict
from riaktq_py.app import Riaktq
from riaktq_py.events import TaskEvent
from riaktq_py.store.sqlite import SqliteStore
from riaktq_py.task import Status

TARGET_P50_MS = 10.0
TARGET_P99_MS = 50.0
WARM_UP = 10


class CloseWatch:
    """A subscriber that wakes the caller when a given task is done."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._closed: dict[str, TaskEvent] = {}

    def __call__(self, event: TaskEvent) -> None:
        if event.transition == "close" and event.task is not None:
            with self._cond:
                self._closed[event.key] = event
                self._cond.notify_all()

    def wait(self, key: str, timeout: float) -> TaskEvent:
        with self._cond:
            if not self._cond.wait_for(lambda: key in self._closed, timeout):
                raise TimeoutError(f"task {key!r} not closed within {timeout} s")
            return self._closed.pop(key)


def measure(
    tasks: int, interval: float, timeout: float, gap: float = 0.0
) -> tuple[list[float], list[float]]:
    """(store latencies, caller latencies) in ms, warm-up tasks left out.

    ``gap`` seconds pass between a task's close and the next open (0: none), so
    that each task finds the queue idle, its last tick long finished.
    """
    pause = threading.Event()  # never set: waiting on it is a plain pause
    store_ms: list[float] = []
    caller_ms: list[float] = []
    with tempfile.TemporaryDirectory(prefix="riaktq-latency-") as directory:
        store = SqliteStore(os.path.join(directory, "tasks.db"))
        tq = Riaktq(store, interval=interval)

        def noop(value: Any) -> None:
            return None

        tq.add_handler("noop", noop)
        watch = CloseWatch()
        try:
            with tq:
                tq.subscribe(watch)
                for number in range(WARM_UP + tasks):
                    if gap:
                        pause.wait(gap)
                    key = f"task-{number:06d}"
                    before = time.perf_counter()
                    tq.open(key, number, handler="noop")
                    event = watch.wait(key, timeout)
                    woken = time.perf_counter()
                    if event.task is None or event.task.status is not Status.DONE:
                        raise AssertionError(f"task {key!r} did not finish done: {event!r}")
                    if number >= WARM_UP:
                        store_ms.append((event.at - event.task.cat) / 1000)
                        caller_ms.append((woken - before) * 1000)
        finally:
            store.close()
    return store_ms, caller_ms


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__)
    p.add_argument("--tasks", type=positive_int, default=300, help="tasks measured")
    p.add_argument("--interval", type=float, default=60.0, help="scheduler interval (s)")
    p.add_argument("--timeout", type=float, default=120.0, help="per task (s)")
    p.add_argument(
        "--gap-ms", type=float, default=0.0,
        help="idle pause before each open (ms); 0: open as soon as the previous task is done",
    )  # fmt: skip
    add_log_option(p)
    args = p.parse_args(argv)
    configure_logs(args.logs)
    print(f"machine: {machine()}")
    print(
        f"{args.tasks} tasks one at a time, interval {args.interval} s,"
        f" gap {args.gap_ms} ms, logs={args.logs}"
    )
    store_ms, caller_ms = measure(args.tasks, args.interval, args.timeout, args.gap_ms / 1000)
    for label, values in (("store ", store_ms), ("caller", caller_ms)):
        print(
            f"{label}: p50 {percentile(values, 50):6.2f} ms  p99 {percentile(values, 99):6.2f} ms"
            f"  max {max(values):6.2f} ms"
        )
    p50, p99 = percentile(store_ms, 50), percentile(store_ms, 99)
    print(f"target p50 <= {TARGET_P50_MS:.0f} ms: {verdict(p50 <= TARGET_P50_MS)}")
    print(f"target p99 <= {TARGET_P99_MS:.0f} ms: {verdict(p99 <= TARGET_P99_MS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
