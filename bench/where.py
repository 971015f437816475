"""Where the CPU of a throughput run goes: per task, by thread, and to the cyclic GC.

    python -m bench.where                 # one riaktq run of N=20000, then 2000 opens alone
    python -m bench.where --n 5000
    python -m bench.where --subscribers 10     # and what ten per-event subscribers cost

Not a target check: a first look before profiling. It prints the process's CPU
against the wall clock (about 1.0 means the run is bound to one core: the
GIL), the CPU per task of the scheduler's tick thread, of the producer (the
thread calling ``open``) and of everything else (instances, event manager,
checkpointer), the time the cyclic garbage collector took, and what an open
costs with no other thread running. With ``--subscribers K`` the run has K
counting subscribers (``--batch-subscribers``: subscribed with ``batch=True``),
and it also prints the CPU of their delivery threads and of the event manager.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import tempfile
import threading
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
from riaktq_py.actors.event_manager import EventManager, _Deliver
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


def _timed_actors(cls: type[Any], seconds: list[float]) -> Callable[[], None]:
    """Count the CPU of each actor of ``cls`` over its life (``on_start`` to ``on_stop``,
    on its own thread) into ``seconds``; returns the undo."""
    on_start, on_stop = cls.on_start, cls.on_stop
    started: dict[int, float] = {}

    def start(actor: Any) -> None:
        started[id(actor)] = time.thread_time()
        on_start(actor)

    def stop(actor: Any) -> None:
        on_stop(actor)
        seconds.append(time.thread_time() - started.pop(id(actor), time.thread_time()))

    setattr(cls, "on_start", start)  # noqa: B010 - as for Tick.run above
    setattr(cls, "on_stop", stop)  # noqa: B010

    def undo() -> None:
        setattr(cls, "on_start", on_start)  # noqa: B010
        setattr(cls, "on_stop", on_stop)  # noqa: B010

    return undo


def _join_delivery_threads(timeout: float = 10.0) -> None:
    """Subscribers' threads are stopped without waiting: let them end (and be counted)."""
    for thread in threading.enumerate():
        if thread.name.startswith(_Deliver.__name__):
            thread.join(timeout)


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
    p.add_argument("--subscribers", type=int, default=0, help="counting subscribers (0)")
    p.add_argument(
        "--batch-subscribers", action="store_true", help="subscribe them with batch=True"
    )
    add_log_option(p)
    args = p.parse_args(argv)
    configure_logs(args.logs)
    config = run_config(args)
    print(f"machine: {machine()}")
    print(describe_config(config))
    tick_seconds: list[float] = []
    collections = GcTimer()
    opening = Opening(collections)
    delivering: list[float] = []
    managing: list[float] = []
    undo = [
        _timed_ticks(tick_seconds),
        opening.install(),
        _timed_actors(_Deliver, delivering),
        _timed_actors(EventManager, managing),
    ]
    gc.callbacks.append(collections)
    cpu, wall = _process_cpu(), time.perf_counter()
    try:
        result = run_riaktq(config, args.subscribers, batch=args.batch_subscribers)
        _join_delivery_threads()
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
    if args.subscribers:
        kind = "batch=True" if args.batch_subscribers else "called per event"
        deliveries = args.subscribers * result.events
        print(
            f"{args.subscribers} subscribers ({kind}): their threads {sum(delivering):.3f} s"
            f" of CPU ({sum(delivering) / max(deliveries, 1) * 1e9:.0f} ns per event and"
            f" subscriber), the event manager {sum(managing):.3f} s"
            f"; {result.events} events, drained {result.drain_seconds:.2f} s after the last done"
        )
    print(f"an open alone (queue not started, no other thread): {open_alone_us():.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
