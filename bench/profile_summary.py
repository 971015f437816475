"""Summarise a py-spy profile of a benchmark run: GIL time per task, by thread and function.

    .venv/bin/py-spy record --gil --nonblocking --threads -r 200 -f raw -o /tmp/run.txt \\
        -- .venv/bin/python -m bench.throughput --n 10000 --skip-huey
    python -m bench.profile_summary /tmp/run.txt --rate 200 --tasks 10000

``--gil`` keeps only samples of the thread holding the GIL, so the figures are
the Python (and GIL-holding C) time each task costs, wherever it is spent.
Stacks through ``--exclude`` (default: ``read_log``, the harness reading the
log after the clock stopped) are left out. Functions are matched by name as
py-spy prints them (``Class.method``); the figures are inclusive.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as a file: python bench/profile_summary.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import positive_int

FUNCTIONS = (
    "Riaktq.open_many",
    "ActorRef.proxy",
    "Engine.apply",
    "SqliteStore.apply",
    "SqliteStore._write",
    "SqliteStore._fetch",
    "_task",
    "Task.replace",
    "_with_position",
    "_log_blob",
    "Tick.run",
    "Tick.read_instances",
    "Tick.commit",
    "Tick.tell_canceled",
    "Tick.restart",
    "Tick.assign",
    "Tick.rollback",
    "SqliteStore.todo",
    "SqliteStore.find",
    "Instance.on_receive",
    "Instance.put",
    "run_handler",
    "EventManager.publish",
    "_Deliver.on_receive",
    "Scheduler.on_receive",
    "ActorRef.ask",
    "ActorRef.tell",
    "Condition.notify",
)


def summarise(
    lines: Sequence[str], rate: float, tasks: int, exclude: Sequence[str]
) -> tuple[float, Counter[str], Counter[str]]:
    """(GIL µs per task, µs per task by thread, µs per task by function)."""
    per_task = 1e6 / rate / tasks
    threads: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or any(name in stack for name in exclude):
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        threads[re.sub(r"\d+", "#", frames[0])] += count
        names = {frame.split(" (", 1)[0] for frame in frames[1:]}
        for function in FUNCTIONS:
            if function in names:
                functions[function] += count
    scale = Counter({k: v * per_task for k, v in threads.items()})
    return total * per_task, scale, Counter({k: v * per_task for k, v in functions.items()})


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile_summary", description=__doc__)
    p.add_argument("profile", type=Path, help="py-spy output in raw (collapsed) format")
    p.add_argument("--rate", type=float, required=True, help="py-spy samples per second (-r)")
    p.add_argument("--tasks", type=positive_int, required=True, help="tasks in the run")
    p.add_argument("--exclude", default="read_log", help="comma-separated names to leave out")
    args = p.parse_args(argv)
    lines = args.profile.read_text(encoding="utf-8").splitlines()
    total, threads, functions = summarise(lines, args.rate, args.tasks, args.exclude.split(","))
    print(f"GIL time per task: {total:7.1f} µs")
    print("by thread:")
    for name, value in threads.most_common():
        print(f"  {value:7.1f} µs  {name}")
    print("by function (inclusive):")
    for name in FUNCTIONS:
        if functions[name]:
            print(f"  {functions[name]:7.1f} µs  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
