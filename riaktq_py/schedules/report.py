"""Did every scheduled run happen? An audit of a schedule's occurrence records."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from riaktq_py.schedules.events import Occurrence, OccurrenceOutcome
from riaktq_py.schedules.model import RecurringSchedule
from riaktq_py.schedules.occurrences import times

#: the most due times an audit checks at once
AUDIT_CAP = 100_000
#: the most unrecorded due times an audit lists
LISTED = 100


@dataclasses.dataclass(frozen=True, slots=True)
class Audit:
    """How each occurrence due in ``(since, until]`` (current timing) was handled.

    ``expected = opened + skipped + len(unrecorded)`` (``unrecorded`` lists at
    most :data:`LISTED`; ``unrecorded_count`` is the full count). An unrecorded
    occurrence is one no tick has handled yet (no scheduler ran since it was due).
    """

    schedule: str
    since: int
    until: int
    expected: int
    opened: int
    skipped: int
    unrecorded_count: int
    unrecorded: tuple[int, ...]

    @property
    def complete(self) -> bool:
        """Every due occurrence was opened or skipped (with its reason recorded)."""
        return self.unrecorded_count == 0

    def summary(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def audit(
    schedule: RecurringSchedule, records: Sequence[Occurrence], since: int, until: int
) -> Audit:
    """Check each due time of ``schedule`` in ``(since, until]`` against ``records``.

    ``records`` are ordered by ``due``; each covers ``due`` .. ``until`` (one, or
    a run of skipped occurrences).
    """
    due_times = times(schedule, since, until, AUDIT_CAP)
    counts = {OccurrenceOutcome.OPENED: 0, OccurrenceOutcome.SKIPPED: 0}
    unrecorded: list[int] = []
    index = 0
    for due in due_times:
        while index < len(records) and records[index].until < due:
            index += 1
        record = records[index] if index < len(records) else None
        if record is not None and record.due <= due:
            counts[record.outcome] += 1
        else:
            unrecorded.append(due)
    return Audit(
        schedule.name,
        since,
        until,
        len(due_times),
        counts[OccurrenceOutcome.OPENED],
        counts[OccurrenceOutcome.SKIPPED],
        len(unrecorded),
        tuple(unrecorded[:LISTED]),
    )
