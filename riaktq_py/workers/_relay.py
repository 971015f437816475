"""Live events for a queue that shares its store: the durable log, relayed in order.

When several processes share one SQLite file, the transitions a process sees
are made by others too (the scheduler that holds the lease commits every
process's tasks). A coordinated :class:`~riaktq_py.Riaktq` therefore
publishes nothing straight from its engines: a :class:`LogRelay` follows the
store's transition log and hands every new entry, in log order, to the local
event manager. Subscribers (and :meth:`~riaktq_py.Riaktq.wait`) see every
process's transitions, each once, in position order. Local writes wake the
relay (:meth:`LogRelay.wake`, the engines' ``events``), so it adds no delay
to them; other processes' entries arrive within ``poll`` seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from riaktq_py.log import get_logger
from riaktq_py.store.sqlite import SqliteStore


class LogRelay:
    """Follows the store's log from its end at start and publishes it to ``events``."""

    def __init__(
        self, store: SqliteStore, events: Any, *, poll: float = 0.05, batch_size: int = 1000
    ) -> None:
        self.store = store
        #: an EventManager proxy
        self.events = events
        self.poll = poll
        self.batch_size = batch_size
        self.position = self._end()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log = get_logger(component="log-relay")

    def _end(self) -> int:
        rows = self.store._read("SELECT coalesce(max(pos), 0) FROM log")
        return int(rows[0][0])

    # the engines' ``events``: a local write happened, read the log now
    def publish(self, events: Sequence[object]) -> None:
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def relay(self) -> int:
        """Publish every entry after the last one published; returns how many."""
        count = 0
        while True:
            batch = self.store.events_after(self.position, self.batch_size)
            if not batch:
                return count
            self.events.publish.defer(list(batch))
            self.position = batch[-1].position
            count += len(batch)
            if len(batch) < self.batch_size:
                return count

    def start(self) -> LogRelay:
        self._thread = threading.Thread(target=self._run, name="riaktq-log-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.relay()  # what this process wrote last still reaches its subscribers
        except Exception as exc:
            self._log.warning("last relay failed", error=f"{type(exc).__name__}: {exc}")

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll)
            self._wake.clear()
            try:
                self.relay()
            except Exception as exc:  # the store is busy or gone for a while: retry
                self._log.warning("relay failed; retrying", error=f"{type(exc).__name__}: {exc}")
