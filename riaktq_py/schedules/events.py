"""Occurrence records and the event published when an occurrence is skipped."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any


class OccurrenceOutcome(enum.StrEnum):
    OPENED = "opened"
    SKIPPED = "skipped"


@dataclasses.dataclass(frozen=True, slots=True)
class Occurrence:
    """What happened to one occurrence of a schedule (or to a run of skipped ones).

    ``reason`` starts with a stable word: ``on time``, ``catch-up``, ``already
    opened`` (opened); ``paused``, ``misfire``, ``overlap`` (skipped). A skipped
    run covers the occurrences ``due`` .. ``last_due``; ``count`` is how many
    (None when more than were counted).
    """

    schedule: str
    due: int
    outcome: OccurrenceOutcome
    reason: str
    recorded: int
    task_key: str | None = None
    last_due: int | None = None
    count: int | None = 1

    @property
    def until(self) -> int:
        """The last occurrence covered (``due`` unless this is a run of skipped ones)."""
        return self.due if self.last_due is None else self.last_due

    def summary(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "due": self.due,
            "last_due": self.until,
            "count": self.count,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "task_key": self.task_key,
            "recorded": self.recorded,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleEvent:
    """Published through the event manager when occurrences are skipped.

    (An opened occurrence is published as the ``open`` :class:`~riaktq_py.TaskEvent`
    of its task.) ``key`` is the task key the first skipped occurrence would have
    had, and ``task`` is always None, so subscribers written for task events
    (``event.key``, ``event.task``) read it safely.
    """

    transition: str
    schedule: str
    key: str
    at: int
    occurrence: Occurrence
    task: None = None

    @property
    def reason(self) -> str:
        return self.occurrence.reason
