"""SIGINT and SIGTERM for the long-running commands: the first stops gracefully."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals(on_second: Callable[[], None] | None = None) -> Iterator[threading.Event]:
    """Yield an event the first SIGINT or SIGTERM sets; restore the old handlers on exit.

    With ``on_second``, a second signal calls it and exits the process at once
    (``os._exit``, status 128 + the signal); without, it only sets the event again.
    Wait on the event with a timeout (``while not stop.wait(0.5)``), so the main
    thread gets to run the handler.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and on_second is not None:
            on_second()
            os._exit(128 + signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
