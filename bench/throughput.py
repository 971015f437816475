"""Throughput: N no-op tasks, open to done, riaktq-py and Huey's SqliteHuey side by side.

    python -m bench.throughput                 # N=20000, 4 workers, capacity 64, 3 rounds
    python -m bench.throughput --quick         # N=2000
    python -m bench.throughput --n 5000 --workers 2 --capacity 16 --batch 100 --rounds 1

Both run in this process, one after the other, on a SQLite file in a fresh
temporary directory, with the same number of worker threads (riaktq
instances / Huey consumer threads) and the same ``PRAGMA synchronous``.
With ``--rounds R`` they take turns (riaktq, huey, then huey, riaktq, ...), so
that a change in the machine's load hits both alike, and the ratio is that of
the median rates. A short warm-up run of each comes first and is left out.
Target (issue 7): riaktq at least 2x Huey.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as a file: python bench/throughput.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    add_log_option,
    configure_logs,
    machine,
    median,
    percentile,
    positive_int,
    verdict,
)
from bench.huey_run import run_huey
from bench.riaktq_run import (
    RunResult,
    add_run_options,
    describe_config,
    run_config,
    run_riaktq,
    warm_up_config,
)

TARGET_RATIO = 2.0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__)
    add_run_options(p)
    p.add_argument("--skip-huey", action="store_true", help="run riaktq only")
    p.add_argument("--rounds", type=positive_int, default=3, help="runs of each system")
    add_log_option(p)
    return p


def describe(result: RunResult) -> str:
    lat = result.latencies_ms
    return (
        f"{result.system:>7}: {result.n} tasks in {result.seconds:7.2f} s"
        f" = {result.rate:8.0f} tasks/s | open-to-done p50 {percentile(lat, 50):7.1f} ms"
        f" p99 {percentile(lat, 99):7.1f} ms max {max(lat, default=0.0):7.1f} ms"
        f" | producer done after {result.open_seconds:.2f} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logs(args.logs)
    config = run_config(args)
    print(f"machine: {machine()}")
    print(f"{describe_config(config)} logs={args.logs} (both queues: WAL, same synchronous)")
    rates: dict[str, list[float]] = {"riaktq": [], "huey": []}
    runs = {"riaktq": run_riaktq, "huey": run_huey}
    warm_up = warm_up_config(config)
    for system in runs:
        if not (system == "huey" and args.skip_huey):
            runs[system](warm_up)
    print(f"(after a warm-up run of each, N={warm_up.n}, left out)")
    for number in range(args.rounds):
        order = ["riaktq", "huey"] if number % 2 == 0 else ["huey", "riaktq"]
        for system in order:
            if system == "huey" and args.skip_huey:
                continue
            result = runs[system](config)
            rates[system].append(result.rate)
            print(describe(result), flush=True)
    if args.skip_huey:
        return 0
    ours, theirs = median(rates["riaktq"]), median(rates["huey"])
    ratio = ours / theirs
    print(
        f"median riaktq {ours:.0f} vs huey {theirs:.0f} tasks/s; ratio riaktq/huey:"
        f" {ratio:.2f}x (target >= {TARGET_RATIO:.0f}x: {verdict(ratio >= TARGET_RATIO)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
