"""The status index without Solr: sharded sets of entries, one group per status.

Riak 3.x has no Yokozuna and data types cannot carry secondary indexes, so
the store keeps its own index in the same map bucket type, in the bucket
``<bucket>.index``: for each status, ``shards`` maps under the keys
``<status>/<n>`` (``n`` = CRC-32 of the task key modulo ``shards``), each
with one set field ``e``. A set is a CRDT: concurrent adds and removes from
several writers merge without conflicts. Sharding keeps each object small
(an entry is ~40-80 bytes; a Riak object should stay well under 1 MB, so
plan about ``shards`` times 10,000 tasks per status, and delete old done tasks).

An entry is the msgpack list ``[key, rev, priority, cat, tags, assignee,
retry, run_at, unique, aged_at]``: everything todo ordering (priority desc,
cat asc), tags routing, due time, uniqueness, aging, ``nextup`` by assignee
and age/status reports need, so queries read only the
shards and then the tasks they return.

Consistency (see RiakStore's docstring for the write order): a task's entry
for its new state is added *before* the task is written and the old one is
removed *after*, so a crash can leave extra entries but never lose one.
Readers verify entries against the task map: an entry whose task is gone,
or whose task has the entry's ``rev`` or a later one but no longer matches,
is stale and removed; an entry with a newer ``rev`` than its task belongs
to a write in flight and is skipped (and becomes stale if that write never
lands, at the task's next write). ``RiakStore.repair`` re-adds entries.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections import defaultdict
from collections.abc import Iterable

import msgpack

from riaktq_py.errors import StoreError
from riaktq_py.store.riak.maps import MapOps, RiakClient
from riaktq_py.task import Status, Task

FIELD = "e"


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One index entry: what the index knows about a task in one status."""

    status: Status
    key: str
    rev: int
    priority: int
    cat: int
    tags: frozenset[str]
    assignee: str | None
    retry: int
    run_at: int | None = None
    unique: str | None = None
    aged_at: int | None = None

    @classmethod
    def of(cls, task: Task, rev: int) -> Entry:
        return cls(
            task.status,
            task.key,
            rev,
            task.priority,
            task.cat,
            task.tags,
            task.assignee,
            task.retry,
            task.run_at,
            task.unique,
            task.aged_at,
        )

    def encode(self) -> bytes:
        raw: bytes = msgpack.packb(
            [
                self.key,
                self.rev,
                self.priority,
                self.cat,
                sorted(self.tags),
                self.assignee,
                self.retry,
                self.run_at,
                self.unique,
                self.aged_at,
            ],
            use_bin_type=True,
        )
        return raw

    @classmethod
    def decode(cls, status: Status, raw: bytes) -> Entry:
        try:
            key, rev, priority, cat, tags, *rest = msgpack.unpackb(raw, raw=False)
            return cls(status, key, rev, priority, cat, frozenset(tags), *rest)
        except Exception as exc:  # msgpack raises several unrelated types
            raise StoreError(f"riak: malformed {status} index entry {raw!r}: {exc}") from exc

    def due(self, now: int | None) -> bool:
        return now is None or self.run_at is None or self.run_at <= now

    def waiting_since(self) -> int:
        return self.cat if self.aged_at is None else self.aged_at

    def order(self) -> tuple[int, int, str]:
        """todo order: priority descending, then creation, then key."""
        return (-self.priority, self.cat, self.key)


class StatusIndex:
    """The sharded index in ``bucket`` (a bucket of the map bucket type)."""

    def __init__(self, client: RiakClient, bucket: str, shards: int) -> None:
        self.client = client
        self.bucket = bucket
        self.shards = shards

    def shard(self, status: Status, key: str) -> str:
        return f"{status.value}/{zlib.crc32(key.encode('utf-8')) % self.shards}"

    def add(self, entries: Iterable[Entry]) -> None:
        """Add entries (no context needed: adds never conflict)."""
        for shard, raws in self._by_shard(entries).items():
            self.client.update(self.bucket, shard, MapOps().add(FIELD, sorted(raws)))

    def remove(self, entries: Iterable[Entry]) -> None:
        """Remove entries: fetch each shard for its context, remove those present."""
        for shard, raws in self._by_shard(entries).items():
            current = self.client.fetch(self.bucket, shard)
            if current is None:
                continue
            present = raws & current.sets.get(FIELD, frozenset())
            if present:
                ops = MapOps().discard(FIELD, sorted(present))
                self.client.update(self.bucket, shard, ops, context=current.context)

    def entries(self, statuses: Iterable[Status]) -> list[Entry]:
        """Every entry of these statuses (read from all their shards)."""
        found: list[Entry] = []
        for status in statuses:
            for n in range(self.shards):
                value = self.client.fetch(self.bucket, f"{status.value}/{n}")
                if value is not None:
                    found.extend(Entry.decode(status, raw) for raw in value.sets.get(FIELD, ()))
        return found

    def _by_shard(self, entries: Iterable[Entry]) -> dict[str, set[bytes]]:
        grouped: dict[str, set[bytes]] = defaultdict(set)
        for entry in entries:
            grouped[self.shard(entry.status, entry.key)].add(entry.encode())
        return grouped


def latest(entries: Iterable[Entry]) -> dict[str, Entry]:
    """One entry per key: the one with the highest ``rev`` (the task's latest state)."""
    best: dict[str, Entry] = {}
    for entry in entries:
        known = best.get(entry.key)
        if known is None or entry.rev > known.rev:
            best[entry.key] = entry
    return best
