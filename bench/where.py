"""Where the CPU of a throughput run goes: per task, by thread, and to the cyclic GC.

    python -m bench.where                 # one riaktq run of N=20000, then 2000 opens alone
    python -m bench.where --n 5000

Not a target check: a first look before profiling. It prints the process's CPU
against the wall clock (about 1.0 means the run is bound to one core: the
GIL), the CPU per task of the scheduler's tick thread, of the producer (the
thread calling ``open``) and of everything else (instances, event manager,
checkpointer), the time the cyclic garbage collector took, and what an open
costs with no other thread running.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if not __package__:  # run as a file: python bench/where.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import riaktq_run
from bench.common import add_log_option, configure_logs, machine
from bench.riaktq_run import HANDLER, add_run_options, describe_config, run_config, run_riaktq
from riaktq_py.actors.tick import Tick, TickReport
from riaktq_py.app import Riaktq
from riaktq_py.store.sqlite import SqliteStore

OPENS_ALONE = 2000


class GcTimer:
    """Collections per generation and their time, from ``gc.callbacks``, while ``on``."""

    def __init__(self) -> None:
        self.count: Counter[int] = Counter()
        self.seconds: dict[int, float] = defaultdict(float)
        self.on = False
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self.on:
            generation = int(info["generation"])
            self.count[generation] += 1
            self.seconds[generation] += time.perf_counter() - self._started


class Opening:
    """The calling thread's CPU while it opens the tasks (``riaktq_run._open_all``), with
    the GC timer on for that time only."""

    def __init__(self, collections: GcTimer) -> None:
        self.collections = collections
        self.cpu = self.wall = self.process_cpu = 0.0

    def install(self) -> Callable[[], None]:
        open_all = riaktq_run._open_all

        def timed(*args: Any) -> None:
            cpu, wall, process = time.thread_time(), time.perf_counter(), _process_cpu()
            self.collections.on = True
            try:
                open_all(*args)
            finally:
                self.collections.on = False
                self.cpu = time.thread_time() - cpu
                self.wall = time.perf_counter() - wall
                self.process_cpu = _process_cpu() - process

        setattr(riaktq_run, "_open_all", timed)  # noqa: B010 - as for Tick.run below
        return lambda: setattr(riaktq_run, "_open_all", open_all)


def _timed_ticks(seconds: list[float]) -> Callable[[], None]:
    """Count the tick thread's CPU time into ``seconds``; returns the undo."""
    run = Tick.run

    def timed(tick: Tick) -> TickReport:
        started = time.thread_time()
        try:
            return run(tick)
        finally:
            seconds.append(time.thread_time() - started)

    setattr(Tick, "run", timed)  # noqa: B010 - mypy would refuse a method assignment
    return lambda: setattr(Tick, "run", run)


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def open_alone_us(opens: int = OPENS_ALONE) -> float:
    """µs per ``open`` on a file store of a queue that is not started (no other thread)."""
    with tempfile.TemporaryDirectory(prefix="riaktq-where-") as directory:
        store = SqliteStore(os.path.join(directory, "tasks.db"))
        try:
            queue = Riaktq(store, interval=None, debounce=None)
            queue.add_handler(HANDLER, lambda value: None)
            for i in range(200):  # warm the statement cache and the row memory
                queue.open(f"warm-{i:07d}", None, handler=HANDLER)
            started = time.perf_counter()
            for i in range(opens):
                queue.open(f"task-{i:07d}", None, handler=HANDLER)
            return (time.perf_counter() - started) / opens * 1e6
        finally:
            store.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.where", description=__doc__)
    add_run_options(p)
    add_log_option(p)
    args = p.parse_args(argv)
    configure_logs(args.logs)
    config = run_config(args)
    print(f"machine: {machine()}")
    print(describe_config(config))
    tick_seconds: list[float] = []
    collections = GcTimer()
    opening = Opening(collections)
    undo = [_timed_ticks(tick_seconds), opening.install()]
    gc.callbacks.append(collections)
    cpu, wall = _process_cpu(), time.perf_counter()
    try:
        result = run_riaktq(config)
    finally:
        gc.callbacks.remove(collections)
        for step in undo:
            step()
    # the whole run_riaktq call: set-up, the run, and reading the log back afterwards
    cpu, wall = _process_cpu() - cpu, time.perf_counter() - wall
    n, tick = result.n, sum(tick_seconds)
    print(
        f"run: {n} tasks in {result.seconds:.2f} s = {result.rate:.0f} tasks/s;"
        f" the opens took {opening.wall:.2f} s"
    )
    print(
        f"process CPU {cpu:.2f} s over {wall:.2f} s of wall time (with set-up and reading"
        f" the log back): {cpu / wall:.2f} cores"
    )
    others = opening.process_cpu - opening.cpu - tick
    print(
        f"while opening: {opening.process_cpu / opening.wall:.2f} cores; CPU per task"
        f" {opening.process_cpu / n * 1e6:.0f} µs: producer {opening.cpu / n * 1e6:.0f},"
        f" tick thread {tick / n * 1e6:.0f} ({len(tick_seconds)} ticks),"
        f" other threads about {others / n * 1e6:.0f}"
    )
    gc_seconds = sum(collections.seconds.values())
    print(
        "cyclic GC while opening: "
        + ", ".join(
            f"generation {g}: {collections.count[g]} ({collections.seconds[g] * 1000:.0f} ms)"
            for g in sorted(collections.count)
        )
        + f"; {gc_seconds / max(opening.wall, 1e-9) * 100:.1f} % of that time"
    )
    print(f"an open alone (queue not started, no other thread): {open_alone_us():.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
