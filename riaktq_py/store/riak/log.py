"""The transition log in Riak: one map per position, a head map with counters.

Bucket ``<bucket>.log`` of the map bucket type:

* key ``head``: counter ``next`` (the last position handed out), registers
  ``committed`` (every position up to it is written or a gap for good) and
  ``pruned`` (every position up to it is deleted).
* key ``<position>`` (decimal ASCII): registers ``at`` (µs), ``transition``,
  ``key``, ``error`` (refused transitions) and ``task`` (msgpack of the
  task's map registers and tags, as written).

``append`` increments ``next`` by the number of events (one request, so a
batch gets consecutive positions), writes one map per event, then raises
``committed``. Readers read only up to ``committed``, so a subscriber never
skips an event that is still being written. Positions a crashed writer took
but never wrote stay gaps, which readers step over. Positions are unique
under a single writer (the scheduler; the lease enforces one): two
concurrent writers may be handed the same range by a counter that has not
converged yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack

from riaktq_py.errors import StoreError
from riaktq_py.events import TaskEvent
from riaktq_py.store.riak import layout
from riaktq_py.store.riak.maps import MapOps, MapValue, RiakClient

HEAD = "head"


def _int(value: MapValue, name: str) -> int:
    raw = value.registers.get(name)
    return int(raw) if raw else 0


class TransitionLog:
    def __init__(self, client: RiakClient, bucket: str, task_bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self.task_bucket = task_bucket

    def append(self, events: Sequence[TaskEvent]) -> list[int]:
        """Record ``events``; their positions, in order."""
        if not events:
            return []
        head = self.client.update(
            self.bucket, HEAD, MapOps().increment("next", len(events)), return_body=True
        )
        assert head is not None
        last = head.counters.get("next", 0)
        first = last - len(events) + 1
        for offset, event in enumerate(events):
            self.client.update(self.bucket, str(first + offset), _entry_ops(event))
        if _int(head, "committed") < last:
            self.client.update(self.bucket, HEAD, MapOps().set_register("committed", b"%d" % last))
        return list(range(first, last + 1))

    def after(self, position: int, limit: int) -> list[TaskEvent]:
        head = self.client.fetch(self.bucket, HEAD)
        if head is None or limit <= 0:
            return []
        committed = _int(head, "committed")
        found: list[TaskEvent] = []
        pos = max(position, _int(head, "pruned"))
        while pos < committed and len(found) < limit:
            pos += 1
            value = self.client.fetch(self.bucket, str(pos))
            if value is not None and not value.is_empty():
                found.append(self._event(pos, value))
        return found

    def prune(self, before: int, limit: int) -> int:
        head = self.client.fetch(self.bucket, HEAD)
        if head is None or limit <= 0:
            return 0
        committed = _int(head, "committed")
        pruned = done = _int(head, "pruned")
        removed = 0
        while pruned < committed and removed < limit:
            value = self.client.fetch(self.bucket, str(pruned + 1))
            if value is not None and not value.is_empty():
                if _int(value, "at") >= before:
                    break
                self.client.delete(self.bucket, str(pruned + 1))
                removed += 1
            pruned += 1
        if pruned > done:
            self.client.update(self.bucket, HEAD, MapOps().set_register("pruned", b"%d" % pruned))
        return removed

    def _event(self, position: int, value: MapValue) -> TaskEvent:
        reg = value.registers
        try:
            key = reg["key"].decode("utf-8")
            task = None
            if "task" in reg:
                registers, tags = msgpack.unpackb(reg["task"], raw=False)
                task, _rev = layout.decode(
                    key, MapValue(registers=registers, sets={layout.TAGS: frozenset(tags)})
                )
            return TaskEvent(
                reg["transition"].decode("utf-8"), self.task_bucket, key, _int(value, "at"),
                task=task, error=reg["error"].decode("utf-8") if "error" in reg else None,
                position=position,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise StoreError(f"riak: malformed log entry {self.bucket}/{position}: {exc}") from exc


def _entry_ops(event: TaskEvent) -> MapOps:
    ops = MapOps()
    ops.set_register("at", b"%d" % event.at)
    ops.set_register("transition", event.transition.encode("utf-8"))
    ops.set_register("key", event.key.encode("utf-8"))
    if event.error is not None:
        ops.set_register("error", event.error.encode("utf-8"))
    if event.task is not None:
        task: Any = [layout.registers(event.task), sorted(t.encode() for t in event.task.tags)]
        ops.set_register("task", msgpack.packb(task, use_bin_type=True))
    return ops
