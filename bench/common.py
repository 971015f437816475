"""Shared pieces of the benchmark scripts: log set-up, statistics, machine facts, memory.

Nothing here is timed; it only prepares and reports.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import sqlite3
import statistics
import sys
from collections.abc import Sequence

import structlog


def add_log_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--logs",
        choices=("off", "devnull"),
        default="off",
        help=(
            "off: riaktq's info logs are filtered out (warnings still print); "
            "devnull: every transition log line is rendered and written to /dev/null, "
            "to measure what logging costs"
        ),
    )


def configure_logs(mode: str) -> None:
    """Set structlog up for a benchmark run (scripts only: this is process-wide)."""
    if mode == "off":
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            cache_logger_on_first_use=True,
        )
    elif mode == "devnull":
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
            logger_factory=structlog.PrintLoggerFactory(open(os.devnull, "w")),  # noqa: SIM115
            cache_logger_on_first_use=True,
        )
    else:
        raise ValueError(f"--logs must be 'off' or 'devnull', got {mode!r}")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by the nearest-rank method; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def machine() -> str:
    """One line naming the machine and interpreter the figures come from."""
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"{platform.machine()} {platform.system()} {platform.release()}; "
        f"Python {sys.version.split()[0]} ({platform.python_implementation()}); "
        f"SQLite {sqlite3.sqlite_version}; load average {os.getloadavg()[0]:.2f}"
    )


def rss_mib() -> float:
    """Resident set size of this process, in MiB (VmRSS from /proc/self/status)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS line in /proc/self/status (Linux only)")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
