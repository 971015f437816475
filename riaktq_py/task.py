"""The task record: riaktq's Riak map, as a typed immutable value.

Field names follow riaktq's map (SPEC A1): registers ``status``, ``priority``,
``retry``, ``assignee``, ``in``, ``out``, ``cat``, ``sat``, ``laf`` and the set
``tags``. Payloads (``in``/``out``) are kept msgpack-encoded, as they are stored.
riaktq-py adds ``attempts``, ``token`` (assignment counter, for fencing),
``error`` (the last failure), ``history`` (one entry per attempt), and the
scheduling options ``run_at`` (not before, µs), ``unique`` (deduplication key),
``timeout`` (seconds per attempt), ``backoff`` (delay between retries) and
``aged_at`` (when priority aging last raised its priority).
"""

from __future__ import annotations

import dataclasses
import enum
import operator
from collections.abc import Iterable
from typing import Any

import msgpack

from riaktq_py import payload
from riaktq_py.errors import ConfigError
from riaktq_py.frozen import copier, quick_init


class Status(enum.StrEnum):
    """A task's status. See :mod:`riaktq_py.transitions` for the graph."""

    TODO = "todo"
    NEXTUP = "nextup"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"


#: Statuses a task is in while the scheduler still owes it work.
ACTIVE = frozenset({Status.TODO, Status.NEXTUP})


class Outcome(enum.StrEnum):
    """How one attempt ended."""

    DONE = "done"
    FAILED = "failed"
    LOST = "lost"  # rolled back: its instance died or forgot it
    LATE = "late"  # a result handed in after its attempt was superseded: never committed


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``n`` (1-based): ``min(cap, base * factor ** (n - 1))``, jittered.

    With ``jitter`` j, the delay is drawn uniformly from ``[d * (1 - j), d]``,
    so retries of many tasks failing together spread out.
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if not (self.base >= 0 and self.factor >= 1 and self.cap >= 0):
            raise ConfigError(
                f"backoff needs base >= 0, factor >= 1 and cap >= 0 seconds, got {self}"
            )
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"backoff jitter must be within [0, 1], got {self.jitter}")

    def delay(self, retry_number: int, uniform: float = 1.0) -> float:
        """Seconds before retry ``retry_number``; ``uniform`` is a draw from [0, 1]."""
        exponent = min(max(retry_number - 1, 0), 64)
        full = min(self.cap, self.base * self.factor**exponent)
        return full * (1 - self.jitter * uniform)

    def to_wire(self) -> list[float]:
        return [self.base, self.factor, self.cap, self.jitter]

    @classmethod
    def from_wire(cls, raw: list[float]) -> Backoff:
        return cls(*raw)


def encode_backoff(backoff: Backoff | None) -> bytes | None:
    return None if backoff is None else payload.encode(backoff.to_wire())


def decode_backoff(data: bytes | None) -> Backoff | None:
    return None if not data else Backoff.from_wire(payload.decode(data, what="backoff"))


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt to run a task, kept in the task's history (SPEC B6)."""

    number: int
    assignee: str
    token: int
    outcome: Outcome
    sat: int | None = None
    laf: int | None = None
    out: bytes | None = None
    error: str | None = None

    def to_wire(self) -> list[Any]:
        """The fields, in order (``outcome`` packs as its text: a str enum)."""
        return list(_attempt_wire(self))

    @classmethod
    def from_wire(cls, raw: list[Any]) -> Attempt:
        number, assignee, token, outcome, sat, laf, out, error = raw
        return cls(number, assignee, token, Outcome(outcome), sat, laf, out, error)


#: an attempt's fields as a tuple, in order: its wire form
_attempt_wire = operator.attrgetter(*(field.name for field in dataclasses.fields(Attempt)))


def encode_history(history: Iterable[Attempt]) -> bytes:
    blob: bytes = msgpack.packb([_attempt_wire(a) for a in history])
    return blob


def decode_history(data: bytes | None) -> tuple[Attempt, ...]:
    if not data:
        return ()
    return tuple(Attempt.from_wire(raw) for raw in payload.decode(data, what="history"))


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class Task:
    """One task, as stored. Immutable: transitions return new values."""

    key: str
    status: Status
    input: bytes
    cat: int
    priority: int = 0
    retry: int = 0
    tags: frozenset[str] = frozenset()
    assignee: str | None = None
    out: bytes | None = None
    sat: int | None = None
    laf: int | None = None
    attempts: int = 0
    token: int = 0
    error: str | None = None
    history: tuple[Attempt, ...] = ()
    run_at: int | None = None
    unique: str | None = None
    timeout: float | None = None
    backoff: Backoff | None = None
    aged_at: int | None = None

    @property
    def input_value(self) -> Any:
        """The decoded input payload."""
        return payload.decode(self.input, what=f"input of {self.key!r}")

    @property
    def output_value(self) -> Any:
        """The decoded output payload (``None`` when there is none)."""
        if self.out is None:
            return None
        return payload.decode(self.out, what=f"output of {self.key!r}")

    def replace(self, **changes: Any) -> Task:
        """A copy with ``changes`` (field names); cheaper than ``dataclasses.replace``
        (see :func:`riaktq_py.frozen.copier`)."""
        return _copy_task(self, changes)

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly view, for the CLI and logs."""
        return {
            "key": self.key,
            "status": self.status.value,
            "priority": self.priority,
            "retry": self.retry,
            "tags": sorted(self.tags),
            "assignee": self.assignee,
            "in": jsonable(self.input_value),
            "out": jsonable(self.output_value),
            "cat": self.cat,
            "sat": self.sat,
            "laf": self.laf,
            "attempts": self.attempts,
            "error": self.error,
            "run_at": self.run_at,
            "unique": self.unique,
            "timeout": self.timeout,
        }


_copy_task = copier(Task)


def jsonable(value: Any) -> Any:
    """``value`` with bytes as hex and map keys as text, so ``json.dumps`` takes it."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def is_final(task: Task) -> bool:
    """Done, canceled, or failed with no retries left: the scheduler will not move it again."""
    return task.status in (Status.DONE, Status.CANCELED) or (
        task.status is Status.FAILED and task.retry <= 0
    )
