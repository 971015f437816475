"""The observer actor (SPEC A5): runs named reports on their schedules.

Like the scheduler, the observer owns a timer and an idle/busy state and runs
each tick on a worker thread: ticks never overlap (one requested during a run
is dropped), and a crashed report is logged and, not being recorded as run,
is retried at the next tick. Each result is published through the query event
manager it was given. The last slot served per report is persisted in the
store (``observer:<name>`` meta), so a restarted observer neither repeats nor
skips a slot. An optional ``gate`` (as the scheduler's) says whether it may run at
all: in a coordinated queue only the process holding the scheduler lease runs
reports, so each slot is served once; a refused manual :meth:`Observer.tick`
fails with :class:`~riaktq_py.actors.scheduler.TickRefused`::

    observer = Observer.start(store, clock, query_events.proxy(), [
        Observation("stale", Query(status=Status.TODO, age=3600), Daily("06:00")),
    ])
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pykka

from riaktq_py import payload
from riaktq_py.actors.scheduler import TickGate, TickRefused
from riaktq_py.clock import Clock
from riaktq_py.errors import ConfigError
from riaktq_py.log import get_logger
from riaktq_py.observer.queries import Report, ReportResult
from riaktq_py.observer.schedule import Schedule
from riaktq_py.store.base import Store

STATE_PREFIX = "observer:"


@dataclasses.dataclass(frozen=True, slots=True)
class Observation:
    """A report the observer runs under ``name`` (its results' key) on ``schedule``."""

    name: str
    report: Report
    schedule: Schedule

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"an observation name must be a non-empty string, got {self.name!r}")
        if not callable(getattr(self.report, "run", None)):
            raise ConfigError(f"observation {self.name!r}: {self.report!r} is not a report")
        if not callable(getattr(self.schedule, "due", None)):
            raise ConfigError(f"observation {self.name!r}: {self.schedule!r} is not a schedule")


@dataclasses.dataclass(frozen=True, slots=True)
class ObserverRun:
    """What one observer tick did: the results published and the reports that failed."""

    at: int
    results: tuple[ReportResult, ...] = ()
    failures: tuple[tuple[str, str], ...] = ()  # (name, error)


@dataclasses.dataclass(frozen=True, slots=True)
class SlotState:
    """The last slot served for one report."""

    slot: int | None


def load_state(store: Store, name: str) -> SlotState | None:
    raw = store.get_meta(STATE_PREFIX + name)
    if raw is None:
        return None
    data = payload.decode(raw, what=f"observer state of {name!r}")
    return SlotState(data.get("slot"))


def save_state(store: Store, name: str, state: SlotState) -> None:
    value = {"slot": state.slot}
    store.set_meta(STATE_PREFIX + name, payload.encode(value, what="observer state"))


def run_due(
    store: Store,
    observations: Iterable[Observation],
    now_us: int,
    publish: Any | None = None,
) -> ObserverRun:
    """Run every observation whose schedule is due at ``now_us``; record each success.

    ``publish`` (if given) receives each result as ``publish([result])``. A
    report that raises is logged and left unrecorded, so it is due again.
    """
    log = get_logger(component="observer")
    results: list[ReportResult] = []
    failures: list[tuple[str, str]] = []
    for observation in observations:
        name = observation.name
        try:
            state = load_state(store, name)
            if state is None:
                state = SlotState(observation.schedule.initial_slot(now_us))
                if state.slot is not None:
                    save_state(store, name, state)
            slot = observation.schedule.due(now_us, state.slot)
            if slot is None:
                continue
            result = observation.report.run(store, key=name, now_us=now_us)
            save_state(store, name, SlotState(slot))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.error("report failed; retried at the next tick", report=name, error=error)
            failures.append((name, error))
            continue
        log.info("report ran", report=name, slot=slot)
        results.append(result)
        if publish is not None:
            publish([result])
    return ObserverRun(now_us, tuple(results), tuple(failures))


def run_now(store: Store, observations: Iterable[Observation], now_us: int) -> list[ReportResult]:
    """Run the given observations at once, ignoring (and not touching) their schedules."""
    return [o.report.run(store, key=o.name, now_us=now_us) for o in observations]


@dataclasses.dataclass(frozen=True, slots=True)
class _Tick:
    reason: str
    future: pykka.ThreadingFuture[ObserverRun | None] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _RunDone:
    run: ObserverRun | None
    error: BaseException | None


class Observer(pykka.ThreadingActor):
    """Runs observations on ticks: every ``interval`` seconds (None: only by hand)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: Any | None = None,
        observations: Sequence[Observation] = (),
        *,
        interval: float | None = 60.0,
        gate: TickGate | None = None,
    ) -> None:
        super().__init__()
        if interval is not None and not interval > 0:
            raise ConfigError(f"observer interval must be > 0 seconds (or None), got {interval}")
        self.store = store
        self.clock = clock
        #: the query event manager's proxy (anything with ``publish(results)``), or None
        self.events = events
        self.interval = interval
        self._gate = gate
        self._observations: dict[str, Observation] = {}
        for observation in observations:
            self.observe(observation)
        self._busy = False
        self._waiting: list[pykka.ThreadingFuture[ObserverRun | None]] = []
        self._stopping = threading.Event()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="riaktq-observer")
        self._log = get_logger(component="observer")

    # -- lifecycle -----------------------------------------------------------------

    def on_start(self) -> None:
        if self.interval is not None:
            threading.Thread(target=self._timer, name="riaktq-observer-timer", daemon=True).start()
            self.actor_ref.tell(_Tick("start"))

    def on_stop(self) -> None:
        self._stopping.set()
        self._worker.shutdown(wait=True)

    def _timer(self) -> None:
        assert self.interval is not None
        while not self._stopping.wait(self.interval):
            try:
                self.actor_ref.tell(_Tick("interval"))
            except pykka.ActorDeadError:
                return

    # -- API ------------------------------------------------------------------------

    def observe(self, observation: Observation) -> None:
        """Add an observation; its name must be new."""
        if not isinstance(observation, Observation):
            raise ConfigError(f"expected an Observation, got {observation!r}")
        if observation.name in self._observations:
            raise ConfigError(f"an observation named {observation.name!r} already exists")
        self._observations[observation.name] = observation

    def tick(self) -> pykka.ThreadingFuture[ObserverRun | None]:
        """Run due reports now; the future gives the run, or None if one was running."""
        future: pykka.ThreadingFuture[ObserverRun | None] = pykka.ThreadingFuture()
        self._on_tick(_Tick("manual", future))
        return future

    # -- ticks ----------------------------------------------------------------------

    def on_receive(self, message: Any) -> None:
        if isinstance(message, _Tick):
            self._on_tick(message)
        elif isinstance(message, _RunDone):
            self._on_done(message)

    def _on_tick(self, message: _Tick) -> None:
        refused = None if self._gate is None else self._gate()
        if refused is not None:
            if message.future is not None:
                error = TickRefused(f"observer tick refused: {refused}")
                message.future.set_exception((TickRefused, error, None))
            return
        if self._busy:
            self._log.info("observer tick dropped: previous run still going", reason=message.reason)
            if message.future is not None:
                message.future.set(None)
            return
        self._busy = True
        if message.future is not None:
            self._waiting.append(message.future)
        self._worker.submit(self._run, tuple(self._observations.values()))

    def _run(self, observations: tuple[Observation, ...]) -> None:
        publish = None if self.events is None else self.events.publish
        try:
            done = _RunDone(run_due(self.store, observations, self.clock.now_us(), publish), None)
        except Exception as exc:
            done = _RunDone(None, exc)
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(done)

    def _on_done(self, done: _RunDone) -> None:
        self._busy = False
        if done.error is not None:
            self._log.error(
                "observer run crashed", error=f"{type(done.error).__name__}: {done.error}"
            )
        waiting, self._waiting = self._waiting, []
        for future in waiting:
            if done.error is not None:
                future.set_exception((type(done.error), done.error, done.error.__traceback__))
            else:
                future.set(done.run)
