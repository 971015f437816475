"""Scheduler tick cost with a backlog: one tick that assigns a batch of 1000.

    python -m bench.tick_cost                      # backlogs of 10k, 100k and 1M todo tasks
    python -m bench.tick_cost --sizes 10k,100k --runs 3

Each backlog is a SQLite file store of N todo tasks (tag ``noop``, priorities
0-9), built once through ``SqliteStore.apply`` and cached (see
:mod:`bench.backlog`); each size runs on a fresh copy. The sizes take turns, tick by tick, so that
load from elsewhere on the machine hits each size alike. The tick is
:class:`riaktq_py.actors.tick.Tick` itself, over 4 fake instance handles of
capacity 250 (no actors, so only the tick and the store are timed), with no
event manager. Two kinds of tick, median of ``--runs`` after one warm-up:

- assign: the instances are empty; the tick assigns 1000 (between runs, the
  batch is closed outside the timing);
- steady: the instances report the previous batch as done; the tick commits
  those 1000 and assigns 1000 more.

Target (issue 7): the 1M assign tick within 2x of the 10k one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from random import Random

if not __package__:  # run as a file: python bench/tick_cost.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backlog import FakeInstance, backlog_copy, default_cache_dir, opens, parse_size
from bench.common import add_log_option, configure_logs, machine, median, positive_int, verdict
from riaktq_py.actors.tick import Tick, TickConfig
from riaktq_py.clock import SystemClock
from riaktq_py.engine import Engine
from riaktq_py.store.sqlite import SqliteStore
from riaktq_py.task import Outcome
from riaktq_py.transitions import Close, Open

BATCH = 1000
INSTANCES = 4
TARGET_RATIO = 2.0


def _tick(engine: Engine, instances: Sequence[FakeInstance]) -> float:
    tick = Tick(engine, instances, TickConfig(batch_size=BATCH))
    started = time.perf_counter()
    report = tick.run()
    seconds = time.perf_counter() - started
    if report.assigned != BATCH:
        raise AssertionError(f"the tick assigned {report.assigned}, expected {BATCH}: {report}")
    return seconds


def _apply_all(engine: Engine, transitions: Sequence[Close | Open]) -> None:
    refused = [e.error for e in engine.apply(transitions) if not e.ok]
    if refused:
        raise AssertionError(f"{len(refused)} transitions refused, first: {refused[0]}")


def _close_held(engine: Engine, instances: Sequence[FakeInstance]) -> None:
    """Close what the instances hold (untimed), so the next tick starts empty."""
    now = engine.clock.now_us()
    _apply_all(
        engine,
        [Close(a.key, i.name, a.token, Outcome.DONE, now, 1) for i in instances for a in i.held],
    )
    for instance in instances:
        instance.committed += [a.key for a in instance.held]
        instance.held = []


def _reopen_committed(engine: Engine, instances: Sequence[FakeInstance], rng: Random) -> None:
    """Open the finished tasks again (untimed): the backlog keeps its size run after run."""
    keys = [key for instance in instances for key in instance.committed]
    _apply_all(engine, opens(keys, engine.clock.now_us(), rng))
    for instance in instances:
        instance.committed = []


class Backlog:
    """One backlog store and its fake instances; runs one timed tick at a time."""

    def __init__(self, size: int, path: Path) -> None:
        self.size = size
        self.store = SqliteStore(str(path))
        self.engine = Engine(self.store, SystemClock())
        capacity = BATCH // INSTANCES
        self.empty = [FakeInstance(f"fake-{n}", capacity) for n in range(INSTANCES)]
        self.finishing = [
            FakeInstance(f"steady-{n}", capacity, finish=True) for n in range(INSTANCES)
        ]
        self.rng = Random(size)
        self.assign: list[float] = []
        self.steady: list[float] = []

    def assign_tick(self) -> float:
        seconds = _tick(self.engine, self.empty)
        _close_held(self.engine, self.empty)
        _reopen_committed(self.engine, self.empty, self.rng)
        return seconds

    def steady_tick(self) -> float:
        seconds = _tick(self.engine, self.finishing)
        _reopen_committed(self.engine, self.finishing, self.rng)
        return seconds

    def close(self) -> None:
        self.store.close()


def measure(backlogs: Sequence[Backlog], runs: int) -> None:
    """Round-robin over the backlogs, so that load from elsewhere hits every size alike."""
    for backlog in backlogs:  # warm-up: an assign tick, and the first steady one only assigns
        backlog.assign_tick()
        _tick(backlog.engine, backlog.finishing)
        _close_held(backlog.engine, backlog.finishing)
        _reopen_committed(backlog.engine, backlog.finishing, backlog.rng)
    for _ in range(runs):
        for backlog in backlogs:
            backlog.assign.append(backlog.assign_tick())
    for backlog in backlogs:
        _tick(backlog.engine, backlog.finishing)
    for _ in range(runs):
        for backlog in backlogs:
            backlog.steady.append(backlog.steady_tick())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tick_cost", description=__doc__)
    p.add_argument("--sizes", default="10k,100k,1M", help="backlog sizes, comma-separated")
    p.add_argument("--runs", type=positive_int, default=5, help="timed ticks per kind")
    p.add_argument("--cache-dir", type=Path, default=default_cache_dir(), help="backlog cache")
    p.add_argument("--no-cache", action="store_true", help="build every backlog afresh")
    add_log_option(p)
    args = p.parse_args(argv)
    configure_logs(args.logs)
    try:
        sizes = sorted(parse_size(s.strip()) for s in args.sizes.split(","))
    except ValueError as exc:
        p.error(f"--sizes: {exc}")
    print(f"machine: {machine()}")
    print(f"batch {BATCH}, {INSTANCES} fake instances, median of {args.runs} ticks per kind")
    with tempfile.TemporaryDirectory(prefix="riaktq-tick-") as directory:
        backlogs: list[Backlog] = []
        try:
            for size in sizes:
                cache = None if args.no_cache else args.cache_dir
                path, built = backlog_copy(size, Path(directory), cache)
                print(f"{size:>9,} todo: " + (f"built in {built:.1f} s" if built else "cached"))
                backlogs.append(Backlog(size, path))
            measure(backlogs, args.runs)
        finally:
            for backlog in backlogs:
                backlog.close()
    for b in backlogs:
        print(
            f"{b.size:>9,} todo: assign tick {median(b.assign) * 1000:7.1f} ms"
            f" (min {min(b.assign) * 1000:6.1f}, max {max(b.assign) * 1000:6.1f})"
            f" | steady tick (commit 1000 + assign 1000) {median(b.steady) * 1000:7.1f} ms"
        )
    small, large = backlogs[0], backlogs[-1]
    if len(backlogs) > 1:
        ratio = median(large.assign) / median(small.assign)
        steady_ratio = median(large.steady) / median(small.steady)
        print(
            f"ratio {large.size:,}/{small.size:,}: assign {ratio:.2f}x"
            f" (target <= {TARGET_RATIO:.0f}x: {verdict(ratio <= TARGET_RATIO)}),"
            f" steady {steady_ratio:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
