"""Late results: a result whose assignment was superseded is recorded, never committed.

A remote instance that was thought dead (or was paused, or partitioned) may
still hand in a result after its task was rolled back and given to another
instance. ``Close`` refuses it (its token no longer matches the task), so no
task is committed twice; :class:`RecordLate` then keeps the result in the
task's history as an :attr:`~riaktq_py.task.Outcome.LATE` attempt, without
changing the task's status, output or attempt count.

It is not a status edge (it never changes a status), so it is not in
:data:`riaktq_py.transitions.GRAPH`; it is logged and published like any
transition (name ``late``).
"""

from __future__ import annotations

import dataclasses

from riaktq_py.actors.instance import Result
from riaktq_py.errors import TransitionError
from riaktq_py.task import Attempt, Outcome, Status, Task

#: outcomes that mean "this attempt's result is already in the history"
_RECORDED = frozenset({Outcome.DONE, Outcome.FAILED, Outcome.LATE})


def recorded(task: Task, assignee: str, token: int) -> Attempt | None:
    """The attempt of (assignee, token) whose result the history already holds, if any."""
    for attempt in task.history:
        if (attempt.assignee, attempt.token) == (assignee, token) and attempt.outcome in _RECORDED:
            return attempt
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class RecordLate:
    """Append a superseded result to the task's history; nothing else changes."""

    key: str
    assignee: str
    token: int
    sat: int
    laf: int
    out: bytes | None = None
    #: the failure reason when the late attempt failed (``None``: it succeeded)
    error: str | None = None
    name: str = "late"

    @classmethod
    def of(cls, assignee: str, result: Result) -> RecordLate:
        return cls(
            result.key, assignee, result.token, result.sat, result.laf, result.out, result.error
        )

    def apply(self, current: Task | None) -> Task:
        if current is None:
            raise TransitionError(self.name, self.key, "a task", "no task")
        already = recorded(current, self.assignee, self.token)
        if already is not None:
            raise TransitionError(
                self.name,
                self.key,
                "a result not yet recorded",
                f"attempt {already.number} on {self.assignee} token {self.token}"
                f" recorded as {already.outcome.value}",
            )
        if (
            current.status is Status.NEXTUP
            and current.token == self.token
            and current.assignee == self.assignee
        ):
            raise TransitionError(
                self.name,
                self.key,
                "a superseded assignment",
                f"nextup on {self.assignee} token {self.token} (close it instead)",
            )
        lost = [
            a.number
            for a in current.history
            if a.assignee == self.assignee and a.token == self.token
        ]
        # the attempt it belongs to (rolled back as lost), or 0: it was never counted
        number = lost[-1] if lost else 0
        attempt = Attempt(
            number,
            self.assignee,
            self.token,
            Outcome.LATE,
            self.sat,
            self.laf,
            self.out,
            self.error,
        )
        return current.replace(history=(*current.history, attempt))
