"""Typed events: what the event manager broadcasts and the store's log records."""

from __future__ import annotations

import dataclasses

from riaktq_py.frozen import quick_init
from riaktq_py.task import Task


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class TaskEvent:
    """One transition of one task.

    ``task`` is the task as written when the transition succeeded; ``error``
    is the reason ("expected X, found Y") when it was refused, and then
    ``task`` is ``None``. ``position`` orders events in the store's log
    (0 when the store keeps no log position for it).
    """

    transition: str
    bucket: str
    key: str
    at: int
    task: Task | None = None
    error: str | None = None
    position: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None
