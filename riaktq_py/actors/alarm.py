"""An alarm: tells an actor a message at a given time, from one long-lived thread.

Used for the scheduler's debounce, the event manager's batching window and an
instance's task timeout, so none of them starts a thread per timer.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pykka


class Alarm:
    """At most one pending alarm; setting a new one replaces it."""

    def __init__(self, ref: pykka.ActorRef[Any], name: str = "riaktq-alarm") -> None:
        self._ref = ref
        self._cond = threading.Condition()
        self._due: float | None = None
        self._message: Any = None
        self._stopped = False
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def after(self, seconds: float, message: Any) -> None:
        """Tell ``message`` in ``seconds`` (monotonic time)."""
        self.at(time.monotonic() + seconds, message)

    def at(self, due: float, message: Any) -> None:
        """Tell ``message`` at ``due`` (``time.monotonic()`` time)."""
        with self._cond:
            self._due, self._message = due, message
            self._cond.notify()

    def cancel(self) -> None:
        with self._cond:
            self._due, self._message = None, None

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                if self._due is None:
                    self._cond.wait()
                    continue
                left = self._due - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                message, self._due, self._message = self._message, None, None
                try:
                    self._ref.tell(message)
                except pykka.ActorDeadError:
                    return
