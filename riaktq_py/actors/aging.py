"""Priority aging, as a tick step: a todo task that waited long gains priority.

Every tick, todo tasks waiting longer than ``after`` seconds (since they were
opened, or since they last gained priority) gain ``step`` priority, up to
``max_priority``. So a steady stream of high-priority work never starves a
low-priority task forever.
"""

from __future__ import annotations

import dataclasses

from riaktq_py.clock import seconds_to_us
from riaktq_py.engine import Engine
from riaktq_py.errors import ConfigError
from riaktq_py.transitions import Age


@dataclasses.dataclass(frozen=True, slots=True)
class Aging:
    """The ``aging`` tick step (see the module docstring)."""

    after: float = 300.0
    step: int = 1
    max_priority: int | None = None
    batch_size: int = 1000
    name: str = "aging"

    def __post_init__(self) -> None:
        if self.after <= 0:
            raise ConfigError(f"aging after must be > 0 seconds, got {self.after}")
        if self.step < 1:
            raise ConfigError(f"aging step must be >= 1, got {self.step}")
        if self.batch_size < 1:
            raise ConfigError(f"aging batch_size must be >= 1, got {self.batch_size}")

    def run(self, engine: Engine) -> int:
        now = engine.clock.now_us()
        waited = engine.store.waiting(now - seconds_to_us(self.after), self.batch_size)
        ages = [Age(task.key, at=now, step=self._step(task.priority)) for task in waited]
        return sum(event.ok for event in engine.apply(ages))

    def _step(self, priority: int) -> int:
        if self.max_priority is None:
            return self.step
        return max(0, min(self.step, self.max_priority - priority))
