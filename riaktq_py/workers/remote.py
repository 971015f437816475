"""Remote instances: instances in worker processes, seen by the scheduler through the store.

A :class:`RemoteInstance` is an :class:`~riaktq_py.actors.handles.InstanceHandle`
like a local one: ``get`` reads its mailbox (SPEC A3: idle/busy, input ids,
output entries), ``put`` queues assignments, ``commit`` drops committed results.
:class:`RemoteFleet` keeps a scheduler's remote handles in step with the
registry, and asks for a tick when something changed.

Liveness is judged without comparing clocks across hosts: the scheduler notes
(on its own clock) when it last saw an instance's heartbeat counter change.
An instance whose counter has not changed for ``dead_after`` of its heartbeat
intervals is dead: it keeps no inputs (so the tick rolls its nextup tasks
back), takes no work, its mailbox is cleared, and the results it handed in
before dying are still committed. A slow task never stops the heartbeat (it
runs on its own thread), so a slow but live instance is never robbed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from riaktq_py.actors.instance import Assignment, InstanceState, Result
from riaktq_py.clock import Clock
from riaktq_py.engine import Engine
from riaktq_py.errors import ConfigError
from riaktq_py.log import get_logger
from riaktq_py.task import Status
from riaktq_py.workers.coordination import Coordination, InstanceRecord
from riaktq_py.workers.late import RecordLate, recorded

DEFAULT_DEAD_AFTER = 5


class RemoteInstance:
    """An instance in a worker process, reached through its mailbox in the store.

    Its calls are store operations, bounded by the store's busy timeout (a
    write waits at most that long for SQLite's lock) rather than ``timeout``.
    """

    def __init__(
        self,
        name: str,
        coordination: Coordination,
        engine: Engine,
        clock: Clock,
        dead_after: int = DEFAULT_DEAD_AFTER,
    ) -> None:
        if dead_after < 1:
            raise ConfigError(f"dead_after must be >= 1 heartbeat intervals, got {dead_after}")
        self._name = name
        self.coordination = coordination
        self.engine = engine
        self.clock = clock
        self.dead_after = dead_after
        self._lock = threading.Lock()
        self._beat: int | None = None
        self._seen_at = clock.now_us()
        self._dead = False
        self._outputs: dict[tuple[str, int], Result] = {}
        self._log = get_logger(component="remote", instance=name)

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"RemoteInstance({self._name!r})"

    @property
    def dead(self) -> bool:
        with self._lock:
            return self._dead

    def observe(self, record: InstanceRecord | None) -> bool:
        """Note a registry record (``None``: gone); ``True`` if it just became dead."""
        now = self.clock.now_us()
        with self._lock:
            if record is None:
                dead = True
            else:
                if record.beat != self._beat:
                    self._beat, self._seen_at = record.beat, now
                dead = now - self._seen_at > self.dead_after * record.interval_us
            newly = dead and not self._dead
            self._dead = dead
        if newly and record is not None:
            silent = (now - self._seen_at) / 1e6
            self._log.warning("instance dead: no heartbeat", silent_for=f"{silent:.2f}s")
        return newly

    # -- InstanceHandle -------------------------------------------------------------

    def get(self, timeout: float) -> InstanceState:
        box = self.coordination.mailbox(self._name)
        self.observe(box.record)
        with self._lock:
            dead = self._dead
            self._outputs = {(r.key, r.token): r for r in box.outputs}
        record = box.record
        if record is None or dead:
            if record is not None or box.inputs:
                dropped = self.coordination.forget(self._name)
                self._log.info("dead instance forgotten", dropped_assignments=dropped)
            # it holds nothing (the tick rolls its tasks back) and takes nothing;
            # results it handed in before it died are still committed
            return InstanceState(self._name, frozenset(), 0, False, (), box.outputs)
        capacity = 0 if record.draining else record.capacity
        return InstanceState(
            self._name, record.tags, capacity, bool(box.taken), box.inputs, box.outputs
        )

    def put(self, assignments: Sequence[Assignment], timeout: float) -> list[str]:
        return self.coordination.put(self._name, assignments)

    def cancel(self, entries: Sequence[tuple[str, int]], timeout: float) -> list[str]:
        """Cooperative cancel: drop canceled tasks the worker has not started."""
        return self.coordination.cancel(self._name, entries)

    def commit(self, entries: Sequence[tuple[str, int]], timeout: float) -> int:
        """Drop results the tick closed; record refused (superseded) ones as late first."""
        with self._lock:
            results = [self._outputs[e] for e in entries if e in self._outputs]
        tasks = self.engine.store.get_many([r.key for r in results])
        late: list[RecordLate] = []
        keep: set[tuple[str, int]] = set()
        for result in results:
            task = tasks.get(result.key)
            if task is None or recorded(task, self._name, result.token) is not None:
                continue  # committed (or the task is gone): just drop it
            if (
                task.status is Status.NEXTUP
                and task.token == result.token
                and task.assignee == self._name
            ):
                keep.add((result.key, result.token))  # not closed yet: keep it for the next tick
                continue
            late.append(RecordLate.of(self._name, result))
        if late:
            self.engine.apply(late)
        return self.coordination.commit(self._name, [e for e in entries if e not in keep])


class RemoteFleet:
    """Keeps a scheduler's remote instance handles in step with the store's registry.

    ``scheduler`` is a :class:`~riaktq_py.actors.scheduler.Scheduler` proxy.
    Call :meth:`poll` often (the scheduler service does, every ``poll`` seconds).
    """

    def __init__(
        self,
        coordination: Coordination,
        engine: Engine,
        scheduler: Any,
        clock: Clock,
        *,
        dead_after: int = DEFAULT_DEAD_AFTER,
        call_timeout: float = 5.0,
    ) -> None:
        self.coordination = coordination
        self.engine = engine
        self.scheduler = scheduler
        self.clock = clock
        self.dead_after = dead_after
        self.call_timeout = call_timeout
        self.handles: dict[str, RemoteInstance] = {}
        self._signal: tuple[int, ...] | None = None
        self._log = get_logger(component="fleet")

    def refresh(self) -> bool:
        """Add new instances, note heartbeats, drop departed ones; ``True`` if a tick is due."""
        directory = self.coordination.directory()
        due = False
        for name, record in directory.items():
            handle = self.handles.get(name)
            if handle is None:
                handle = RemoteInstance(
                    name, self.coordination, self.engine, self.clock, self.dead_after
                )
                self.handles[name] = handle
                self.scheduler.add_instance(handle).get(timeout=self.call_timeout)
                self._log.info("remote instance joined", instance=name)
                due = True
            due |= handle.observe(record)
        for name in [n for n in self.handles if n not in directory]:
            del self.handles[name]
            self.scheduler.remove_instance(name).get(timeout=self.call_timeout)
            self._log.info("remote instance left", instance=name)
            due = True
        signal = self.coordination.signal()
        due |= signal != self._signal
        self._signal = signal
        return due

    def poll(self) -> bool:
        """:meth:`refresh`, and trigger a tick if one is due; ``True`` if triggered."""
        due = self.refresh()
        if due:
            self.scheduler.trigger()
        return due
