"""``riaktq demo``: the README's main job, in a few seconds on a fresh embedded store.

A scheduler, three echo instances, one ``flaky`` instance (fails the first
attempts of a task on purpose) and one ``render`` instance tagged ``gpu``.
Every transition is printed as it happens, then a summary table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from typing import Any

from riaktq_py.app import Riaktq, is_final
from riaktq_py.cli.common import (
    event_line,
    format_table,
    laf_text,
    positive_float,
    result_text,
    write,
)
from riaktq_py.events import TaskEvent
from riaktq_py.handlers import EchoHandler
from riaktq_py.store.base import Store
from riaktq_py.store.url import open_store
from riaktq_py.task import Task

#: (key, input, handler, priority, retry, extra tags)
DEMO_TASKS: tuple[tuple[str, Any, str | None, int, int, tuple[str, ...]], ...] = (
    ("thumb-low", {"image": "a.png"}, "echo", 0, 0, ()),
    ("thumb-mid", {"image": "b.png"}, "echo", 5, 0, ()),
    ("thumb-high", {"image": "c.png"}, "echo", 9, 0, ()),
    ("digest", {"day": "monday"}, "echo", 2, 0, ()),
    ("backup", {"db": "users"}, "echo", 1, 0, ()),
    ("charge-card", {"amount": 42, "fail": 1}, "flaky", 6, 2, ()),
    ("doomed", {"fail": 99}, "flaky", 3, 1, ()),
    ("render-scene", {"scene": 7}, None, 4, 0, ("gpu",)),
)


class FlakyEcho:
    """Echoes its input, but first fails ``input["fail"]`` attempts of each task."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}

    def init(self, options: Mapping[str, Any]) -> Any:
        return None

    def handle(self, task_id: str, input: Any, tags: frozenset[str], state: Any) -> Any:
        failures = input.get("fail", 0) if isinstance(input, dict) else 0
        with self._lock:
            attempt = self._attempts.get(task_id, 0) + 1
            self._attempts[task_id] = attempt
        if attempt <= failures:
            raise RuntimeError(f"attempt {attempt} failed on purpose")
        return input


class Progress:
    """A subscriber: prints every transition and knows when all tasks are final."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = frozenset(keys)
        self.started = time.monotonic()
        self._latest: dict[str, Task] = {}
        self._cond = threading.Condition()

    def __call__(self, event: object) -> None:
        if not isinstance(event, TaskEvent):
            return
        write(event_line(event, time.monotonic() - self.started))
        if event.task is not None:
            with self._cond:
                self._latest[event.key] = event.task
                self._cond.notify_all()

    def pending(self) -> list[str]:
        with self._cond:
            return sorted(
                k for k in self.keys if k not in self._latest or not is_final(self._latest[k])
            )

    def wait_final(self, timeout: float) -> list[str]:
        """Wait until every task is final; the keys still pending (empty if all are)."""
        with self._cond:
            self._cond.wait_for(lambda: not self.pending(), timeout)
        return self.pending()


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the demo on a fresh embedded store",
        description="Start a scheduler and instances on a fresh SQLite store (a temporary "
        "file unless --store is given), open a mix of tasks, print every transition and a "
        "summary.",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=20.0,
        help="give up after this many seconds (default 20)",
    )
    parser.set_defaults(run=run)


def build_queue(store: Store) -> Riaktq:
    queue = Riaktq(store, interval=0.5, debounce=0.05, call_timeout=2.0)
    queue.add_handler("echo", EchoHandler(), instances=3)
    queue.add_handler("flaky", FlakyEcho(), instances=1)
    queue.add_handler("render", EchoHandler(), instances=1, tags=["gpu"])
    return queue


def run(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        if args.store is None:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="riaktq-demo-"))
            url = os.path.join(directory, "demo.db")
        else:
            url = args.store
        store = open_store(url)
        stack.callback(store.close)
        queue = build_queue(store)
        progress = Progress(key for key, *_ in DEMO_TASKS)
        write(f"riaktq demo on {url}")
        write("instances: echo-1..3 (tags echo), flaky-1 (tags flaky), render-1 (tags render,gpu)")
        write("")
        write(f"{'time':>9}  {'event':<8}  {'task':<14}  -> status  detail")
        with queue:
            queue.subscribe(progress)
            for key, value, handler, priority, retry, tags in DEMO_TASKS:
                queue.open(key, value, handler=handler, priority=priority, retry=retry, tags=tags)
            pending = progress.wait_final(args.timeout)
        if pending:
            print(
                f"riaktq: error: demo timed out after {args.timeout} s; not final: "
                + ", ".join(pending),
                file=sys.stderr,
            )
            return 1
        tasks = store.get_many([key for key, *_ in DEMO_TASKS])
        _summary([tasks[key] for key, *_ in DEMO_TASKS])
    return 0


def _summary(tasks: list[Task]) -> None:
    write("")
    write("summary (every task is final: done, or failed with no retries left)")
    headers = ("key", "status", "priority", "retry", "attempts", "assignee", "output/error", "laf")
    rows = [
        [
            t.key,
            t.status.value,
            t.priority,
            t.retry,
            t.attempts,
            t.assignee or "",
            result_text(t),
            laf_text(t.laf),
        ]
        for t in tasks
    ]
    write(format_table(headers, rows))
    for task in tasks:
        if len(task.history) > 1:
            write("")
            write(f"attempt history of {task.key}")
            write(
                format_table(
                    ("attempt", "assignee", "outcome", "laf", "error"),
                    [
                        [a.number, a.assignee, a.outcome.value, laf_text(a.laf), a.error or ""]
                        for a in task.history
                    ],
                )
            )
