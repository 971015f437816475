"""Module-level handlers for process-execution tests (a child process imports them)."""

from __future__ import annotations

import os
import time
from typing import Any


def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def pid(_: Any) -> int:
    return os.getpid()


def boom(value: Any) -> Any:
    raise ValueError(f"boom {value}")
