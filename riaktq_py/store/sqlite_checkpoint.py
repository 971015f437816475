"""Checkpoints of a SQLite file's write-ahead log, off the writers' path.

SQLite's automatic checkpoint runs inside the commit that fills the WAL past
its threshold: that commit copies thousands of pages into the database file
while holding the write lock, so one open in a few thousand takes milliseconds
and stalls every other writer. A :class:`Checkpointer` is a thread of the
store with its own connection that runs ``PRAGMA wal_checkpoint(PASSIVE)``
whenever the writers have added ``every`` pages (they tell it after each
commit, which costs a counter), and at least every ``period`` seconds. A
passive checkpoint copies what it can without waiting for, or blocking,
readers and writers; the SQLite work runs without the GIL, on another core.
The connection's own automatic checkpoint stays on as a backstop, at a much
higher threshold (see ``SqliteStore``).
"""

from __future__ import annotations

import sqlite3
import threading

from riaktq_py.log import get_logger


class Checkpointer:
    """Checkpoints ``path``'s WAL on a thread of its own; ``stop()`` ends it."""

    def __init__(self, path: str, *, every: int = 2000, period: float = 1.0) -> None:
        self.path = path
        self.every = every
        self.period = period
        self.checkpoints = 0
        self._done = threading.Condition()
        self._pages = 0
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._log = get_logger(component="checkpoint", path=path)
        self._thread = threading.Thread(target=self._run, name="riaktq-checkpoint", daemon=True)
        self._thread.start()

    def wrote(self, pages: int) -> None:
        """A commit added about ``pages`` pages to the WAL (cheap: a counter)."""
        self._pages += pages
        if self._pages >= self.every and not self._wake.is_set():
            self._wake.set()

    def wait_for(self, checkpoints: int, timeout: float) -> bool:
        """Block until at least ``checkpoints`` checkpoints ran; False on timeout."""
        with self._done:
            return self._done.wait_for(lambda: self.checkpoints >= checkpoints, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        except sqlite3.Error as exc:
            self._log.warning("no checkpoint connection", error=str(exc))
            return
        try:
            while not self._stopped.is_set():
                self._wake.wait(self.period)
                self._wake.clear()
                self._pages = 0
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    with self._done:
                        self.checkpoints += 1
                        self._done.notify_all()
                except sqlite3.Error as exc:  # busy (another checkpoint): next time
                    self._log.debug("checkpoint skipped", error=str(exc))
        finally:
            db.close()
