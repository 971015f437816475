"""The scheduler actor (SPEC A2): owns the timer and the idle/busy state.

As in riaktq, the owner never runs a tick itself: each tick runs on a worker
thread, so ticks never overlap, a tick requested while one runs is dropped
(logged), and a crashed tick is logged and the next one runs as usual.
Besides the interval timer, :meth:`Scheduler.trigger` (called when a task is
opened or an instance has a result) asks for a tick after a short debounce;
a trigger that arrives during a tick makes one more tick run right after it.

An optional ``gate`` says whether this scheduler may tick at all (for example,
only while it holds the store's scheduler lease): a refused timer or trigger
tick is skipped, a refused manual :meth:`Scheduler.tick` fails with
:class:`TickRefused` naming the reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pykka

from riaktq_py.actors.alarm import Alarm
from riaktq_py.actors.handles import InstanceHandle
from riaktq_py.actors.tick import Tick, TickConfig, TickReport, TickStep
from riaktq_py.engine import Engine
from riaktq_py.errors import ConfigError, RiaktqError
from riaktq_py.log import get_logger


@dataclasses.dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """When ticks run. ``interval=None`` disables the timer, ``debounce=None`` triggers."""

    interval: float | None = 60.0
    debounce: float | None = 0.002
    tick: TickConfig = dataclasses.field(default_factory=TickConfig)
    #: under load (the last tick moved at least ``BUSY_TICK`` tasks and left the instances
    #: room for more), a triggered tick starts at least this long after the previous one
    #: started, so new tasks gather into fewer, bigger ticks; a lightly loaded queue, or one
    #: whose instances are full (their results ring), ticks at once. None: no pacing
    pace: float | None = 0.02

    def __post_init__(self) -> None:
        if self.interval is not None and self.interval <= 0:
            raise ConfigError(f"interval must be > 0 seconds (or None), got {self.interval}")
        if self.debounce is not None and self.debounce < 0:
            raise ConfigError(f"debounce must be >= 0 seconds (or None), got {self.debounce}")
        if self.pace is not None and not self.pace >= 0:
            raise ConfigError(f"pace must be >= 0 seconds (or None), got {self.pace}")


#: seconds between scans for lost tasks in triggered ticks (see ``Scheduler._on_tick``)
LOST_SCAN_EVERY = 1.0
#: a tick that moved at least this many tasks (committed, assigned, restarted, rolled
#: back) counts as busy: the next triggered tick is paced (``SchedulerConfig.pace``)
BUSY_TICK = 16


#: returns None when a tick may run, else why not
TickGate = Callable[[], str | None]


class TickRefused(RiaktqError):
    """A manual tick was refused by the scheduler's gate (e.g. it does not hold the lease)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Tick:
    reason: str
    future: pykka.ThreadingFuture[TickReport | None] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Ring:
    pass


class Doorbell:
    """Asks the scheduler for a tick soon, from any thread, cheaply.

    At most one ring per tick: once rung, the bell stays quiet until the next
    tick starts (that tick sees everything rung for), so a burst of opens or
    results sends the scheduler one message, not one each (and no future).
    """

    def __init__(self, ref: pykka.ActorRef[Any]) -> None:
        self._ref = ref
        self._armed = threading.Event()

    def ring(self) -> None:
        if self._armed.is_set():
            return
        self._armed.set()
        with contextlib.suppress(pykka.ActorDeadError):
            self._ref.tell(_Ring())

    def _answered(self) -> None:
        self._armed.clear()


@dataclasses.dataclass(frozen=True, slots=True)
class _TickDone:
    report: TickReport | None
    error: BaseException | None


class Scheduler(pykka.ThreadingActor):
    """Runs ticks over the given instances; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        instances: Sequence[InstanceHandle] = (),
        config: SchedulerConfig | None = None,
        steps: Sequence[TickStep] = (),
        gate: TickGate | None = None,
    ) -> None:
        super().__init__()
        self.engine = engine
        self._gate = gate
        self.config = config or SchedulerConfig()
        self._steps = list(steps)
        self._random = random.Random(self.config.tick.seed)  # retry jitter, across ticks
        self._instances: dict[str, InstanceHandle] = {i.name: i for i in instances}
        self._busy = False
        self._rerun = False
        self._waiting: list[pykka.ThreadingFuture[TickReport | None]] = []
        self._trigger_pending = False  # a debounced trigger is on its way
        self._started_at = 0.0  # when the last tick started (time.monotonic)
        self._not_before = 0.0  # paced: no triggered tick before this (time.monotonic)
        self._last_scan = 0.0  # when a tick last scanned for lost tasks (time.monotonic)
        self._alarm: Alarm | None = None
        self._stopping = threading.Event()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="riaktq-tick")
        self._log = get_logger(component="scheduler")
        self._debug = self._log.is_enabled_for(logging.DEBUG)
        #: ring it (from any thread) when a task is opened or a result is ready
        self.doorbell = Doorbell(self.actor_ref)
        self.ticks = 0

    # -- lifecycle -----------------------------------------------------------------

    def on_start(self) -> None:
        if self.config.debounce is not None:
            self._alarm = Alarm(self.actor_ref, "riaktq-debounce")
        if self.config.interval is not None:
            threading.Thread(target=self._timer, name="riaktq-timer", daemon=True).start()
            self.actor_ref.tell(_Tick("start"))

    def on_stop(self) -> None:
        self._stopping.set()
        if self._alarm is not None:
            self._alarm.stop()
        self._worker.shutdown(wait=True)

    def _timer(self) -> None:
        interval = self.config.interval
        assert interval is not None
        while not self._stopping.wait(interval):
            try:
                self.actor_ref.tell(_Tick("interval"))
            except pykka.ActorDeadError:
                return

    # -- API ------------------------------------------------------------------------

    def add_instance(self, handle: InstanceHandle) -> None:
        self._instances[handle.name] = handle

    def remove_instance(self, name: str) -> bool:
        return self._instances.pop(name, None) is not None

    def add_step(self, step: TickStep) -> None:
        """Run ``step`` in every tick from the next one on (after restart, before assign)."""
        self._steps.append(step)

    def paced_until(self) -> float:
        """Before this ``time.monotonic()`` time no triggered tick starts (0.0: not paced)."""
        return self._not_before

    def instance_names(self) -> list[str]:
        return sorted(self._instances)

    def tick(self) -> pykka.ThreadingFuture[TickReport | None]:
        """Ask for a tick now; the future gives its report, or None if it was dropped."""
        future: pykka.ThreadingFuture[TickReport | None] = pykka.ThreadingFuture()
        self._on_tick(_Tick("manual", future))
        return future

    def trigger(self) -> None:
        """Something happened (task opened, result ready): tick soon (debounced)."""
        if self.config.debounce is None or self._stopping.is_set():
            return
        if self._busy:
            self._rerun = True
            return
        self._trigger_at(max(time.monotonic() + self.config.debounce, self._not_before))

    def _trigger_at(self, due: float) -> None:
        """A triggered tick at ``due`` (``time.monotonic()``), unless one is on its way."""
        if not self._trigger_pending and self._alarm is not None:
            self._trigger_pending = True
            self._alarm.at(due, _Tick("trigger"))

    # -- ticks ----------------------------------------------------------------------

    def on_receive(self, message: Any) -> None:
        if isinstance(message, _Ring):
            self.trigger()
        elif isinstance(message, _Tick):
            self._on_tick(message)
        elif isinstance(message, _TickDone):
            self._on_done(message)

    def _on_tick(self, message: _Tick) -> None:
        if message.reason == "trigger":
            self._trigger_pending = False
        refused = None if self._gate is None else self._gate()
        if refused is not None:
            if message.future is not None:
                error = TickRefused(f"tick refused: {refused}")
                message.future.set_exception((TickRefused, error, None))
            return
        if self._busy:
            if message.reason == "trigger":
                self._rerun = True
            else:
                self._log.info("tick dropped: previous tick still running", reason=message.reason)
            if message.future is not None:
                message.future.set(None)
            return
        self._busy = True
        self._started_at = now = time.monotonic()
        if message.future is not None:
            self._waiting.append(message.future)
        # under load the scan for lost tasks (every nextup task) runs once a second, not
        # in every triggered tick; timer and manual ticks always scan
        scan_lost = message.reason != "trigger" or now >= self._last_scan + LOST_SCAN_EVERY
        if scan_lost:
            self._last_scan = now
        tick = Tick(
            self.engine,
            list(self._instances.values()),
            self.config.tick,
            self._steps,
            self._random,
            scan_lost=scan_lost,
        )
        self._worker.submit(self._run, tick)

    def _run(self, tick: Tick) -> None:
        # re-armed before the tick reads anything: a ring from now on asks for another tick
        self.doorbell._answered()
        try:
            done = _TickDone(tick.run(), None)
        except Exception as exc:
            done = _TickDone(None, exc)
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(done)

    def _on_done(self, done: _TickDone) -> None:
        self._busy = False
        self.ticks += 1
        if done.error is not None:
            self._log.error("tick crashed", error=f"{type(done.error).__name__}: {done.error}")
        elif done.report is not None and _moved(done.report) and self._debug:
            self._log.debug("tick", **dataclasses.asdict(done.report))
        self._not_before = self._paced_until(done.report)
        waiting, self._waiting = self._waiting, []
        for future in waiting:
            if done.error is not None:
                future.set_exception((type(done.error), done.error, done.error.__traceback__))
            else:
                future.set(done.report)
        if self._rerun and not self._stopping.is_set():
            self._rerun = False
            if self._alarm is None or self._not_before <= time.monotonic():
                self._on_tick(_Tick("trigger"))
            else:
                self._trigger_at(self._not_before)
        elif done.report is not None and _more_to_do(done.report, self.config.tick.batch_size):
            self.trigger()

    def _paced_until(self, report: TickReport | None) -> float:
        """After a busy tick that left the instances room, the next triggered tick waits
        until ``pace`` after this one started; otherwise it need not wait (0.0)."""
        pace = self.config.pace
        if pace is None or report is None or report.room <= 0 or _moved(report) < BUSY_TICK:
            return 0.0
        return self._started_at + pace


def _moved(report: TickReport) -> int:
    """How many tasks a tick moved (committed, assigned, restarted, rolled back)."""
    return report.committed + report.assigned + report.restarted + report.rolled_back


def _more_to_do(report: TickReport, batch_size: int) -> bool:
    """A step hit its batch bound, or rolled-back tasks wait: tick again soon."""
    return bool(report.rolled_back) or batch_size <= max(
        report.committed, report.restarted, report.assigned
    )
