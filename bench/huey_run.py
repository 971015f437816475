"""One throughput run of Huey's ``SqliteHuey``, the same shape as :mod:`bench.riaktq_run`.

W worker threads (``huey.consumer.Consumer`` with ``worker_type='thread'``) run N
no-op tasks that the calling thread enqueues one by one. The clock runs from
just before the first enqueue until the last task's ``complete`` signal.
Latency per task: the wall time at the completion signal minus the wall time
just before its enqueue.

Both queues get the same SQLite durability: WAL with the same ``synchronous``
level (Huey's own knob only offers FULL or OFF, so a small storage subclass sets
the pragma on its connection).
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from typing import Any

from huey import SqliteHuey, signals
from huey.consumer import Consumer
from huey.storage import SqliteStorage

from bench.riaktq_run import Countdown, RunConfig, RunResult


class SyncSqliteStorage(SqliteStorage):  # type: ignore[misc]
    """Huey's SQLite storage with an explicit ``PRAGMA synchronous``."""

    def __init__(self, *args: Any, synchronous: str = "NORMAL", **kwargs: Any) -> None:
        self.synchronous = synchronous
        super().__init__(*args, **kwargs)

    def _create_connection(self) -> Any:
        conn = super()._create_connection()
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn


def run_huey(config: RunConfig) -> RunResult:
    """N no-op tasks through SqliteHuey with ``config.workers`` worker threads."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        with tempfile.TemporaryDirectory(prefix="huey-bench-") as directory:
            return _run(os.path.join(directory, "huey.db"), config)
    finally:
        for signum, handler in saved.items():  # the consumer installs its own handlers
            signal.signal(signum, handler)


def _run(path: str, config: RunConfig) -> RunResult:
    huey = SqliteHuey(
        "bench", filename=path, storage_class=SyncSqliteStorage, synchronous=config.synchronous
    )
    completed = Countdown(config.n)
    done_at: dict[str, int] = {}

    @huey.task()  # type: ignore[untyped-decorator]
    def noop() -> None:
        return None

    @huey.signal(signals.SIGNAL_COMPLETE)  # type: ignore[untyped-decorator]
    def on_complete(signal_name: str, task: Any) -> None:
        done_at[task.id] = time.time_ns()
        completed.hit()

    consumer = Consumer(
        huey, workers=config.workers, worker_type="thread", periodic=False,
        check_worker_health=False,
    )  # fmt: skip
    sent_at: dict[str, int] = {}
    consumer.start()
    try:
        started = time.perf_counter()
        for _ in range(config.n):
            before = time.time_ns()
            sent_at[noop().id] = before
        opened = time.perf_counter()
        completed.wait(config.timeout)
        finished = time.perf_counter()
    finally:
        consumer.stop(graceful=True)
        huey.storage.close()
    latencies = tuple((done_at[i] - sent_at[i]) / 1e6 for i in sent_at if i in done_at)
    return RunResult("huey", config.n, finished - started, latencies, open_seconds=opened - started)
