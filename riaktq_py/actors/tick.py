"""One scheduler tick (SPEC A2), as four named steps: commit, restart, assign, rollback.

Differences from riaktq (SPEC B):
- an instance that does not answer ``get`` in time is skipped, not fatal (B1);
- every step pages through the store in explicit batches, no silent caps (B2);
- rollback knows what this tick assigned, so a fresh assignment is never rolled
  back (B3);
- every call to an instance has a timeout (B9);
- instances take up to their capacity per tick, routed by tags (B7, B10).
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

from riaktq_py.actors.handles import InstanceHandle
from riaktq_py.actors.instance import Assignment, InstanceState
from riaktq_py.clock import seconds_to_us
from riaktq_py.engine import Engine
from riaktq_py.errors import ConfigError
from riaktq_py.events import TaskEvent
from riaktq_py.log import get_logger
from riaktq_py.task import Outcome, Task
from riaktq_py.transitions import Assign, Close, Restart, Rollback


@dataclasses.dataclass(frozen=True, slots=True)
class TickConfig:
    """How a tick works. ``batch_size`` bounds each step's work per tick."""

    batch_size: int = 1000
    call_timeout: float = 5.0
    #: seed for the retry backoff's jitter (None: unpredictable)
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.call_timeout <= 0:
            raise ConfigError(f"call_timeout must be > 0 seconds, got {self.call_timeout}")


@dataclasses.dataclass(frozen=True, slots=True)
class TickReport:
    """What one tick did."""

    committed: int = 0
    restarted: int = 0
    assigned: int = 0
    rolled_back: int = 0
    refused: int = 0
    unreachable: tuple[str, ...] = ()
    seconds: float = 0.0
    #: what each extra step did, as (step name, count); -1 when the step crashed
    steps: tuple[tuple[str, int], ...] = ()
    #: free places left in the reachable instances' input queues after assigning
    room: int = 0


class TickStep(Protocol):
    """An extra step (recurring schedules, aging ...), run after restart, before assign.

    ``run`` applies its transitions through the engine and returns how many it
    made. A step that raises is logged; the tick goes on with its other steps.
    """

    @property
    def name(self) -> str: ...

    def run(self, engine: Engine) -> int: ...


class Tick:
    """Runs one tick over a store and a set of instances."""

    def __init__(
        self,
        engine: Engine,
        instances: Sequence[InstanceHandle],
        config: TickConfig,
        steps: Sequence[TickStep] = (),
        rng: random.Random | None = None,
        scan_lost: bool = True,
    ) -> None:
        """``scan_lost=False`` skips the rollback scan, unless an instance was unreachable
        or refused a put in this tick (the scheduler scans at least once a second)."""
        self.scan_lost = scan_lost
        self._trouble = False
        self.engine = engine
        self.steps = list(steps)
        self.store = engine.store
        self.instances = list(instances)
        self.config = config
        self._log = get_logger(component="tick")
        self._refused = 0
        self._random = rng or random.Random(config.seed)

    def run(self) -> TickReport:
        started = time.perf_counter()
        states, unreachable = self.read_instances()
        committed = self.commit(states)
        self.tell_canceled(states)
        restarted = self.restart()
        steps = tuple((step.name, self.run_step(step)) for step in self.steps)
        placed = self.assign(states)
        scan = self.scan_lost or self._trouble or bool(unreachable)
        rolled_back = self.rollback(states, placed) if scan else 0
        assigned = sum(len(keys) for keys in placed.values())
        return TickReport(
            committed,
            restarted,
            assigned,
            rolled_back,
            self._refused,
            tuple(unreachable),
            time.perf_counter() - started,
            steps,
            sum(state.free for _, state in states.values()) - assigned,
        )

    def run_step(self, step: TickStep) -> int:
        try:
            return step.run(self.engine)
        except Exception as exc:
            self._log.error(
                "tick step crashed", step=step.name, error=f"{type(exc).__name__}: {exc}"
            )
            return -1

    def _apply(self, transitions: Sequence[Assign | Close | Restart | Rollback]) -> list[TaskEvent]:
        events = self.engine.apply(transitions)
        self._refused += sum(not e.ok for e in events)
        return events

    def read_instances(self) -> tuple[dict[str, tuple[InstanceHandle, InstanceState]], list[str]]:
        """Ask every instance for its state; skip those that do not answer in time (B1)."""
        states: dict[str, tuple[InstanceHandle, InstanceState]] = {}
        unreachable: list[str] = []
        for handle in self.instances:
            try:
                states[handle.name] = (handle, handle.get(self.config.call_timeout))
            except Exception as exc:
                unreachable.append(handle.name)
                self._log.warning(
                    "instance unreachable; skipped",
                    instance=handle.name,
                    error=f"{type(exc).__name__}: {exc}",
                )
        return states, unreachable

    def commit(self, states: dict[str, tuple[InstanceHandle, InstanceState]]) -> int:
        """Step 1: close every output entry (one store batch), then let each instance drop it."""
        budget = self.config.batch_size
        taken: dict[str, list[tuple[str, int]]] = {}
        closes: list[Close] = []
        for name, (_, state) in states.items():
            outputs = state.outputs[: max(0, budget - len(closes))]
            if outputs:
                taken[name] = [(r.key, r.token) for r in outputs]
                closes += [
                    Close(r.key, name, r.token, r.outcome, r.sat, r.laf, r.out, r.error)
                    for r in outputs
                ]
        committed = sum(e.ok for e in self._apply(closes))
        # refused closes are final too (recorded in the log): drop them as well
        for name, entries in taken.items():
            try:
                states[name][0].commit(entries, self.config.call_timeout)
            except Exception as exc:
                self._log.warning(
                    "commit to instance failed", instance=name, error=f"{type(exc).__name__}: {exc}"
                )
        return committed

    def tell_canceled(self, states: dict[str, tuple[InstanceHandle, InstanceState]]) -> None:
        """Cooperative cancel: instances drop canceled tasks they have not started."""
        held = {key: name for name, (_, state) in states.items() for key in state.inputs}
        by_instance: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for key, token in self.store.canceled_among(list(held)) if held else ():
            by_instance[held[key]].append((key, token))
        for name, entries in by_instance.items():
            cancel = getattr(states[name][0], "cancel", None)
            if cancel is None:
                continue
            try:
                cancel(entries, self.config.call_timeout)
            except Exception as exc:
                self._log.warning(
                    "cancel to instance failed", instance=name, error=f"{type(exc).__name__}: {exc}"
                )

    def restart(self) -> int:
        """Step 2: failed tasks with retries left go back to todo, one priority lower."""
        tasks = self.store.restartable(self.config.batch_size)
        now = self.engine.clock.now_us()
        restarts = [Restart(t.key, run_at=self._retry_at(t, now)) for t in tasks]
        return sum(e.ok for e in self._apply(restarts))

    def _retry_at(self, task: Task, now: int) -> int | None:
        """When a restarted task is due again: its backoff after this failure, or at once."""
        if task.backoff is None:
            return None
        failures = sum(a.outcome is Outcome.FAILED for a in task.history) or 1
        delay = task.backoff.delay(failures, self._random.random())
        return now + seconds_to_us(delay)

    def assign(
        self, states: dict[str, tuple[InstanceHandle, InstanceState]]
    ) -> dict[str, list[str]]:
        """Step 3: fill idle capacity with todo tasks, routed by tags (B7).

        Instances with fewer tags choose first, so a task only a richer instance
        can run is left for it.
        """
        free = {name: state.free for name, (_, state) in states.items() if state.free > 0}
        groups: dict[frozenset[str], list[str]] = defaultdict(list)
        for name in free:
            groups[states[name][1].tags].append(name)
        now = self.engine.clock.now_us()
        plan: list[tuple[str, str]] = []
        planned: set[str] = set()
        for tags in sorted(groups, key=lambda t: (len(t), sorted(t))):
            budget = self.config.batch_size - len(plan)
            if budget <= 0:
                break
            names = groups[tags]
            wanted = min(budget, sum(free[n] for n in names))
            # a task an earlier group took is still todo in the store: ask for more, skip it
            tasks = self.store.todo(wanted + len(planned), tags=tags, now=now)
            fresh = [t for t in tasks if t.key not in planned][:wanted]
            group_plan = _spread(fresh, names, free)
            planned.update(key for key, _ in group_plan)
            plan += group_plan
        events = self._apply([Assign(key, name) for key, name in plan])
        by_instance: dict[str, list[Assignment]] = defaultdict(list)
        for event, (_, name) in zip(events, plan, strict=True):
            if event.task is not None:
                t = event.task
                by_instance[name].append(Assignment(t.key, t.token, t.input, t.tags, t.timeout))
        placed: dict[str, list[str]] = {}
        for name, assignments in by_instance.items():
            try:
                placed[name] = states[name][0].put(assignments, self.config.call_timeout)
            except Exception as exc:  # rolled back below: not in any queue
                self._trouble = True
                self._log.warning(
                    "put to instance failed", instance=name, error=f"{type(exc).__name__}: {exc}"
                )
        return placed

    def rollback(
        self,
        states: dict[str, tuple[InstanceHandle, InstanceState]],
        placed: dict[str, list[str]],
    ) -> int:
        """Step 4: nextup tasks in no live instance's queues go back to todo (B3-safe)."""
        held: dict[str, set[str]] = {
            name: {*state.inputs, *(r.key for r in state.outputs), *placed.get(name, ())}
            for name, (_, state) in states.items()
        }
        lost: list[Rollback] = []
        after: str | None = None
        while len(lost) < self.config.batch_size:
            page = self.store.nextup(self.config.batch_size, after)
            for key, assignee in page:
                name = assignee or ""
                if name not in held:
                    lost.append(Rollback(key, f"instance {name!r} is not live"))
                elif key not in held[name]:
                    lost.append(Rollback(key, f"instance {name!r} does not hold it"))
            if len(page) < self.config.batch_size:
                break
            after = page[-1][0]
        return sum(e.ok for e in self._apply(lost[: self.config.batch_size]))


def _spread(tasks: Sequence[Task], names: list[str], free: dict[str, int]) -> list[tuple[str, str]]:
    """Deal tasks round-robin to the instances that have room, emptiest first."""
    order = sorted(names, key=lambda n: -free[n])
    slots = [n for depth in range(max(free[n] for n in names)) for n in order if free[n] > depth]
    return [(task.key, name) for task, name in zip(tasks, slots, strict=False)]
