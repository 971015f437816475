"""RiakStore: tasks as riaktq's Riak maps on a Riak KV cluster.

Layout (see :mod:`.layout`): one map per task in ``bucket_type``/``bucket``,
riaktq's registers and tags set, riaktq-py's extra fields beside them. In the
same (map) bucket type, ``<bucket>.index`` holds the status index when no
Solr index is configured (:mod:`.index`), ``<bucket>.log`` the transition
log (:mod:`.log`) and ``<bucket>.meta`` small named values (one map per name,
register ``value``). With ``search_index`` (riaktq's Yokozuna set-up on Riak
2.x), todo/find/count/restartable query Solr instead (:mod:`.search`) and no
index buckets are written.

``apply`` reads the tasks (``pr`` = quorum), runs the transitions on them in
memory, then writes, in this order: (1) the index entries of the new states,
(2) each changed task as one map update carrying the fetch's context
(``pw`` = quorum; only the fields that changed), (3) removal of the old
entries, (4) the log entries. A crash between steps leaves extra index
entries (verified away on read) but never a task missing from the index;
a crash before (4) loses those log entries. A write that fails with an error
(rather than a crash) still logs the events of the tasks it had written
before raising.

Why this is safe under Riak's eventual consistency
--------------------------------------------------
Riak has no compare-and-set on maps: two writers that read the same status
could both act on it, and registers converge last-write-wins. riaktq's rule
(and riaktq-py's) is that one writer, the scheduler, changes ``status``:
transitions are serialised by one scheduler (and by a lock inside this
process), each reads the task at ``pr`` = quorum and writes at ``pw`` =
quorum, so a read sees the previous write of the same writer and the status a
transition checks is the status it replaces. Other writers (``open`` from the
API, instances reporting results) touch other fields or write through the
same transitions; since each update only sends the registers that changed,
concurrent updates of different fields merge field by field instead of
overwriting each other, and sets (tags, index shards) merge adds and
removes as CRDTs. The per-task ``rev`` register lets index readers tell a
stale entry from one whose write is in flight.

What the scheduler lease adds (multi-process issue): the rule above is only a
convention while two schedulers can run. The lease makes it enforced: a
second scheduler (another process or host) cannot act until the lease
expires, so two writers never both apply ``assign`` to one todo task (which
could run it twice) or take the same log positions. Without it, riaktq-py on
Riak gives what riaktq gives: at-least-once delivery.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from riaktq_py.errors import ConfigError, TransitionError
from riaktq_py.events import TaskEvent
from riaktq_py.store.base import Store, TaskQuery
from riaktq_py.store.riak import index, layout
from riaktq_py.store.riak.connection import Node, Pool
from riaktq_py.store.riak.index import Entry, StatusIndex, latest
from riaktq_py.store.riak.log import TransitionLog
from riaktq_py.store.riak.maps import MapOps, MapValue, Quorum, RiakClient
from riaktq_py.store.riak.search import SearchQueries
from riaktq_py.task import Status, Task
from riaktq_py.transitions import Transition

#: How many tasks are fetched to verify index entries at a time.
VERIFY_CHUNK = 64


class _Stored(NamedTuple):
    task: Task
    rev: int
    context: bytes


def parse_node(text: str) -> Node:
    """``host:port`` (port 8087 when omitted; ``[v6]:port`` for IPv6)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or "]" in port:
        host, port = text.strip(), "8087"
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"riak node {text!r} is not host:port")
    return Node(host, int(port))


class RiakStore(Store):
    """Tasks on Riak KV. ``nodes``: ``Node``s or ``"host:port"`` strings."""

    def __init__(
        self,
        nodes: Sequence[Node | str],
        bucket_type: str = "riaktq_task_t",
        bucket: str = "task",
        *,
        pool_size: int = 4,
        timeout: float = 5.0,
        quorum: Quorum | None = None,
        shards: int = 16,
        search_index: str | None = None,
    ) -> None:
        if not bucket_type or not bucket:
            raise ConfigError("riak store needs a bucket type and a bucket")
        if shards < 1:
            raise ConfigError(f"riak index shards must be >= 1, got {shards}")
        self.nodes = [n if isinstance(n, Node) else parse_node(n) for n in nodes]
        self.bucket_type = bucket_type
        self.bucket = bucket
        self.search_index = search_index
        self.client = RiakClient(
            Pool(self.nodes, size=pool_size, timeout=timeout), bucket_type, quorum=quorum
        )
        self.index = StatusIndex(self.client, f"{bucket}.index", shards)
        self.meta_bucket = f"{bucket}.meta"
        self.log = TransitionLog(self.client, f"{bucket}.log", bucket)
        self.search = (
            SearchQueries(self.client, search_index, bucket, self.get_many)
            if search_index
            else None
        )
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        nodes = ",".join(map(str, self.nodes))
        return f"RiakStore(riak://{nodes}/{self.bucket_type}/{self.bucket})"

    # -- reading tasks ------------------------------------------------------

    def _fetch(self, keys: Iterable[str]) -> dict[str, _Stored]:
        found: dict[str, _Stored] = {}
        for key in dict.fromkeys(keys):
            value = self.client.fetch(self.bucket, key)
            if value is not None and not value.is_empty():
                task, rev = layout.decode(key, value)
                found[key] = _Stored(task, rev, value.context)
        return found

    def get(self, key: str) -> Task | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, Task]:
        return {key: stored.task for key, stored in self._fetch(keys).items()}

    # -- transitions --------------------------------------------------------

    def apply(
        self, transitions: Sequence[Transition], *, at: int, prepared: object = None
    ) -> list[TaskEvent]:
        if not transitions:
            return []
        with self._lock:
            stored = self._fetch(t.key for t in transitions)
            current = {key: s.task for key, s in stored.items()}
            events: list[TaskEvent] = []
            changed: dict[str, None] = {}
            for transition in transitions:
                try:
                    task = transition.apply(current.get(transition.key))
                except TransitionError as exc:
                    events.append(
                        TaskEvent(transition.name, self.bucket, transition.key, at, error=str(exc))
                    )
                    continue
                current[task.key] = task
                changed[task.key] = None
                events.append(TaskEvent(transition.name, self.bucket, task.key, at, task=task))
            written: set[str] = set()
            try:
                self._write({key: current[key] for key in changed}, stored, written, at)
            except Exception as exc:
                # the tasks written before the failure changed: their events must be logged
                if written:
                    try:
                        self.log.append([e for e in events if e.key in written])
                    except Exception as log_exc:
                        exc.add_note(f"and logging the tasks written before failed: {log_exc}")
                raise
            positions = self.log.append(events)
        return [dataclasses.replace(e, position=p) for e, p in zip(events, positions, strict=True)]

    def _write(
        self, tasks: dict[str, Task], stored: dict[str, _Stored], written: set[str], at: int
    ) -> None:
        """Index, write and unindex ``tasks``; each key whose task map was updated is added
        to ``written`` as it is (what a caller must log when a later step fails).

        A write's rev is ``max(old rev + 1, at)``: increasing per key, and a key re-created
        after a delete (rev unknown) still outranks entries of its earlier life that a
        failed removal left behind.
        """
        revs = {key: max((stored[key].rev if key in stored else 0) + 1, at) for key in tasks}
        if self.search is None:
            self.index.add(Entry.of(task, revs[key]) for key, task in tasks.items())
        for key, task in tasks.items():
            old = stored.get(key)
            ops = layout.encode(
                task,
                rev=revs[key],
                previous=old.task if old else None,
                previous_rev=old.rev if old else None,
            )
            self.client.update(self.bucket, key, ops, context=old.context if old else None)
            written.add(key)
        if self.search is None:
            self.index.remove(
                Entry.of(stored[key].task, stored[key].rev) for key in tasks if key in stored
            )

    def delete(self, key: str) -> bool:
        return bool(self.delete_if([key], lambda _task: True))

    def delete_if(self, keys: Sequence[str], predicate: Callable[[Task], bool]) -> list[str]:
        """Delete tasks the predicate accepts, as read now (under the writer lock)."""
        deleted: list[str] = []
        gone: list[Entry] = []
        with self._lock:
            try:
                for key in dict.fromkeys(keys):
                    old = self._fetch([key]).get(key)
                    if old is None or not predicate(old.task):
                        continue
                    self.client.delete(self.bucket, key)
                    gone.append(Entry.of(old.task, old.rev))
                    deleted.append(key)
            finally:
                # then the entries (one removal per shard): never a task unindexed
                if self.search is None and gone:
                    self.index.remove(gone)
        return deleted

    # -- metadata (observer state, cursors): one map per name in <bucket>.meta --

    def get_meta(self, name: str) -> bytes | None:
        value = self.client.fetch(self.meta_bucket, name)
        return None if value is None else value.registers.get("value")

    def set_meta(self, name: str, value: bytes) -> None:
        self.client.update(self.meta_bucket, name, MapOps().set_register("value", value))

    # -- queries ------------------------------------------------------------

    def _verified(self, entries: Sequence[Entry], limit: int) -> list[Task]:
        """The tasks of ``entries`` (in order) whose entry is current; drops stale ones.

        Every candidate entry is checked (not only the latest per key), so a
        stale entry is removed the first time a query reaches it.
        """
        chosen: list[Task] = []
        keys: set[str] = set()
        start = 0
        while start < len(entries) and len(chosen) < limit:
            # no more entries than tasks still wanted: a limit-1 query fetches one task
            chunk = entries[start : start + min(VERIFY_CHUNK, limit - len(chosen))]
            start += len(chunk)
            stored = self._fetch(e.key for e in chunk)
            stale = []
            for entry in chunk:
                found = stored.get(entry.key)
                if found is None:
                    # the entry of a task being created is written before the task (a
                    # reader must not drop it); a deleted task's entry went with it, and
                    # a crash's leftover is dropped by repair()
                    continue
                if Entry.of(found.task, found.rev) == entry:
                    if entry.key not in keys:
                        keys.add(entry.key)
                        chosen.append(found.task)
                elif found.rev >= entry.rev:
                    stale.append(entry)
                # else: its task write is in flight; skip it
            if stale:
                self.index.remove(stale)
        return chosen[:limit]

    def todo(
        self, limit: int, *, tags: frozenset[str] | None = None, now: int | None = None
    ) -> list[Task]:
        if limit <= 0:
            return []
        if self.search is not None:
            return self.search.todo(limit, tags, now)
        entries = sorted(
            (
                e
                for e in self.index.entries([Status.TODO])
                if (tags is None or e.tags <= tags) and e.due(now)
            ),
            key=Entry.order,
        )
        return self._verified(entries, limit)

    def active_with_unique(self, unique: str) -> Task | None:
        """From the todo and nextup entries (they carry ``unique``); todo first, by key."""
        if self.search is not None:
            return super().active_with_unique(unique)
        entries = sorted(
            (e for e in self.index.entries([Status.TODO, Status.NEXTUP]) if e.unique == unique),
            key=lambda e: (e.status is not Status.TODO, e.key),
        )
        found = self._verified(entries, 1)
        return found[0] if found else None

    def waiting(self, since_before: int, limit: int) -> list[Task]:
        """From the todo entries (they carry ``cat`` and ``aged_at``); oldest first."""
        if self.search is not None:
            return super().waiting(since_before, limit)
        if limit <= 0:
            return []
        entries = sorted(
            (
                e
                for e in self.index.entries([Status.TODO])
                if e.cat < since_before and e.waiting_since() < since_before
            ),
            key=lambda e: (e.waiting_since(), e.key),
        )
        return self._verified(entries, limit)

    def find(self, query: TaskQuery) -> list[Task]:
        if query.limit <= 0:
            return []
        if self.search is not None:
            return self.search.find(query)
        statuses = list(Status) if query.status is None else [query.status]
        after = query.after_key
        entries = sorted(
            (
                e
                for e in self.index.entries(statuses)
                if query.matches(e) and (after is None or e.key > after)
            ),
            key=lambda e: e.key,
        )
        return self._verified(entries, query.limit)  # a verified entry is its task: it matches

    def count(self, query: TaskQuery) -> int:
        """From the index (latest entry per key), without fetching the tasks."""
        if self.search is not None:
            return self.search.count(query)
        entries = latest(self.index.entries(Status)).values()
        return sum(1 for e in entries if query.matches(e))

    def restartable(self, limit: int) -> list[Task]:
        if limit <= 0:
            return []
        if self.search is not None:
            return self.search.restartable(limit)
        entries = sorted(
            (e for e in self.index.entries([Status.FAILED]) if e.retry > 0),
            key=lambda e: e.key,
        )
        return self._verified(entries, limit)

    def count_by_status(self) -> dict[Status, int]:
        counts = dict.fromkeys(Status, 0)
        if self.search is not None:
            for status in Status:
                counts[status] = self.search.count(TaskQuery(status=status))
            return counts
        for entry in latest(self.index.entries(Status)).values():
            counts[entry.status] += 1
        return counts

    # -- the log ------------------------------------------------------------

    def events_after(self, position: int, limit: int) -> list[TaskEvent]:
        return self.log.after(position, limit)

    def prune_log(self, before: int, limit: int) -> int:
        with self._lock:
            return self.log.prune(before, limit)

    # -- repair -------------------------------------------------------------

    def repair(self, keys: Iterable[str]) -> int:
        """Make the index agree with these tasks; how many entries were fixed.

        For each key: add the entry of its current state if missing, remove
        its entries in other shards. Use after a crash of several writers,
        or to index tasks riaktq (Erlang) wrote.
        """
        if self.search is not None:
            return 0
        shards: dict[str, list[Entry]] = {}  # each shard read once per call

        def entries_of(status: Status, key: str) -> list[Entry]:
            name = self.index.shard(status, key)
            if name not in shards:
                shards[name] = _shard_entries(status, self.client.fetch(self.index.bucket, name))
            return [e for e in shards[name] if e.key == key]

        missing: list[Entry] = []
        extra: list[Entry] = []
        with self._lock:
            for key in dict.fromkeys(keys):
                stored = self._fetch([key]).get(key)
                want = None if stored is None else Entry.of(stored.task, stored.rev)
                have = [e for status in Status for e in entries_of(status, key)]
                extra += [e for e in have if e != want]
                if want is not None and want not in have:
                    missing.append(want)
            self.index.add(missing)  # add before remove, as writes do
            self.index.remove(extra)
        return len(missing) + len(extra)

    def repair_from_log(self, position: int = 0, batch: int = 500) -> int:
        """Repair every task the log names after ``position``."""
        fixed = 0
        while events := self.events_after(position, batch):
            fixed += self.repair(e.key for e in events)
            position = events[-1].position
        return fixed

    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self.client.close()


def _shard_entries(status: Status, shard: MapValue | None) -> list[Entry]:
    if shard is None:
        return []
    return [Entry.decode(status, raw) for raw in shard.sets.get(index.FIELD, ())]
