"""Shared helpers of the schedule tests: times, a queue on a fake clock, gated handlers."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from riaktq_py import EchoHandler, Riaktq, SqliteStore, Store
from riaktq_py.schedules import Occurrence, OccurrenceOutcome
from riaktq_py.testing import FakeClock

#: 2024-01-01T00:00:00Z, on a minute boundary
T0 = 1_704_067_200_000_000
SECOND = 1_000_000


def us(iso: str) -> int:
    """Microseconds of an ISO time with an offset (``2024-03-31T01:00:00+00:00``)."""
    moment = dt.datetime.fromisoformat(iso)
    assert moment.tzinfo is not None, iso
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def queue(store: Store | None = None, clock: FakeClock | None = None, **options: Any) -> Riaktq:
    """A queue ticked by hand, with an ``echo`` handler."""
    tq = Riaktq(
        store or SqliteStore(), clock=clock or FakeClock(T0), interval=None, debounce=None,
        **options,
    )  # fmt: skip
    tq.add_handler("echo", EchoHandler())
    return tq


class Gate:
    """A handler that runs until the test opens the gate (so its task stays nextup)."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.started = threading.Event()

    def __call__(self, value: Any) -> Any:
        self.started.set()
        if not self.open.wait(10):
            raise TimeoutError("the test never opened the gate")
        return value


def outcomes(records: list[Occurrence]) -> list[tuple[int, str, str, int | None]]:
    """(due - T0 in seconds, outcome, first word of the reason, count) per record."""
    return [
        ((r.due - T0) // SECOND, r.outcome.value, r.reason.split(":")[0], r.count) for r in records
    ]


def opened_dues(records: list[Occurrence]) -> list[int]:
    return [r.due for r in records if r.outcome is OccurrenceOutcome.OPENED]
