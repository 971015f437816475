"""Memory with a backlog: resident memory stays flat while ticks work through it.

    python -m bench.memory                     # 100k todo tasks, run 20k of them
    python -m bench.memory --backlog 1M --run 10k

A SQLite file store starts with the backlog (built once and cached, see
:mod:`bench.backlog`). A queue with 4 no-op instances of capacity 250 (so a
tick assigns up to 1000) works through ``--run`` of them, its ticks triggered
by results as usual. Resident memory (VmRSS) is sampled before the start,
after the first batch is done, and every ``--every`` tasks after that.
For scale, the script then loads the remaining backlog as Task objects, which
is what a scheduler that read the whole backlog would hold.

Target (issue 7): flat, that is, the growth from the first batch to the end
stays under ``--limit`` MiB, whatever the backlog size.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if not __package__:  # run as a file: python bench/memory.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backlog import TAGS, backlog_copy, default_cache_dir, parse_size
from bench.common import add_log_option, configure_logs, machine, rss_mib, verdict
from riaktq_py.app import Riaktq
from riaktq_py.events import TaskEvent
from riaktq_py.store.base import TaskQuery
from riaktq_py.store.sqlite import SqliteStore
from riaktq_py.task import Status

INSTANCES = 4
CAPACITY = 250


class RssSampler:
    """A subscriber that samples resident memory every ``every`` closes; stops at ``total``."""

    def __init__(self, every: int, total: int) -> None:
        self.every = every
        self.total = total
        self.closed = 0
        self.samples: list[tuple[int, float]] = []
        self.finished = threading.Event()

    def __call__(self, event: TaskEvent) -> None:
        if event.transition != "close" or event.task is None:
            return
        self.closed += 1
        if self.closed == INSTANCES * CAPACITY or self.closed % self.every == 0:
            self.samples.append((self.closed, rss_mib()))
        if self.closed >= self.total:
            self.finished.set()


def run(path: Path, to_run: int, every: int, timeout: float) -> tuple[float, RssSampler, float]:
    """(RSS before start, the sampler, RSS growth when loading the rest of the backlog)."""
    store = SqliteStore(str(path))
    try:
        tq = Riaktq(store)

        def noop(value: Any) -> None:
            return None

        # the backlog's tasks carry the tag "noop": instances of handler "noop" run them
        tq.add_handler("noop", noop, instances=INSTANCES, capacity=CAPACITY, tags=TAGS)
        sampler = RssSampler(every, to_run)
        gc.collect()
        before = rss_mib()
        with tq:
            tq.subscribe(sampler)
            tq.tick()
            if not sampler.finished.wait(timeout):
                raise TimeoutError(f"only {sampler.closed} of {to_run} tasks done in {timeout} s")
        gc.collect()
        loading = rss_mib()
        remaining = store.todo(store.count(TaskQuery(status=Status.TODO)))
        loaded = rss_mib() - loading
        del remaining
        return before, sampler, loaded
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    p.add_argument("--backlog", default="100k", help="todo tasks in the store at the start")
    p.add_argument("--run", default="20k", help="how many of them to run")
    p.add_argument("--every", default="2k", help="sample memory every this many done")
    p.add_argument("--limit", type=float, default=10.0, help="allowed growth (MiB)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds for the whole run")
    p.add_argument("--cache-dir", type=Path, default=default_cache_dir(), help="backlog cache")
    add_log_option(p)
    args = p.parse_args(argv)
    configure_logs(args.logs)
    try:
        size, to_run, every = (parse_size(x) for x in (args.backlog, args.run, args.every))
    except ValueError as exc:
        p.error(str(exc))
    if to_run > size:
        p.error(f"--run ({to_run}) cannot exceed --backlog ({size})")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="riaktq-memory-") as directory:
        path, built = backlog_copy(size, Path(directory), args.cache_dir)
        print(
            f"backlog {size:,} todo tasks ("
            + (f"built in {built:.1f} s" if built else "cached")
            + f"); running {to_run:,} of them with {INSTANCES} instances x capacity {CAPACITY}"
        )
        before, sampler, loaded = run(path, to_run, every, args.timeout)
    print(f"RSS before start: {before:7.1f} MiB")
    for closed, rss in sampler.samples:
        print(f"RSS after {closed:>7,} done: {rss:7.1f} MiB")
    first, last = sampler.samples[0][1], sampler.samples[-1][1]
    growth = last - first
    print(
        f"growth from the first batch to the end: {growth:+.1f} MiB"
        f" (limit {args.limit:.0f} MiB: {verdict(growth <= args.limit)})"
    )
    print(f"for scale: loading the remaining backlog as Task objects adds {loaded:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
