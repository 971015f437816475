"""The alarm behind debounce, batching windows and task timeouts."""

from __future__ import annotations

import time

import pykka

from riaktq_py.actors.alarm import Alarm
from riaktq_py.testing import EventCapture

T = 10.0


class Inbox(pykka.ThreadingActor):
    def __init__(self, capture: EventCapture) -> None:
        super().__init__()
        self.capture = capture

    def on_receive(self, message: object) -> None:
        self.capture(message)


def test_an_alarm_tells_its_message_once_at_its_time() -> None:
    capture = EventCapture()
    alarm = Alarm(Inbox.start(capture))
    started = time.monotonic()
    alarm.after(0.05, "ring")
    capture.wait_for(lambda m: m == "ring", T)
    assert time.monotonic() - started >= 0.05
    alarm.after(0.0, "again")
    capture.wait_for(lambda m: m == "again", T)
    assert capture.events == ["ring", "again"]
    alarm.stop()


def test_a_new_time_replaces_the_pending_one_and_cancel_drops_it() -> None:
    capture = EventCapture()
    alarm = Alarm(Inbox.start(capture))
    alarm.after(60, "late")
    alarm.after(0.01, "replaced")  # one pending alarm: this one wins
    capture.wait_for(lambda m: m == "replaced", T)
    alarm.after(0.01, "canceled")
    alarm.cancel()
    alarm.after(0.02, "marker")
    capture.wait_for(lambda m: m == "marker", T)
    assert capture.events == ["replaced", "marker"]
    alarm.stop()
