"""Clocks. Every actor receives one explicitly; times are Unix microseconds."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A source of wall-clock time in Unix microseconds."""

    def now_us(self) -> int: ...


class SystemClock:
    """The real clock."""

    def now_us(self) -> int:
        return time.time_ns() // 1000


def seconds_to_us(seconds: float) -> int:
    return round(seconds * 1_000_000)
