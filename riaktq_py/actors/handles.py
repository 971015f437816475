"""How the scheduler talks to an instance: one small protocol, every call timed out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import pykka

from riaktq_py.actors.instance import Assignment, InstanceState


class InstanceHandle(Protocol):
    """An instance as the scheduler sees it, local or remote."""

    @property
    def name(self) -> str: ...

    def get(self, timeout: float) -> InstanceState: ...

    def put(self, assignments: Sequence[Assignment], timeout: float) -> list[str]: ...

    def commit(self, entries: Sequence[tuple[str, int]], timeout: float) -> int: ...

    # optional: ``cancel(entries, timeout) -> dropped keys`` (cooperative cancel)


class LocalInstance:
    """An instance actor in this process.

    Its queues are guarded by one lock that the instance's own thread and
    worker also take, so the scheduler calls their operations directly (a
    timeout on the lock instead of an actor round trip per call); a stopped
    instance raises :class:`pykka.ActorDeadError`, as a message to it would.
    """

    def __init__(self, name: str, ref: pykka.ActorRef[Any], timeout: float = 10.0) -> None:
        self._name = name
        self.ref = ref
        self._queues = ref.proxy().queues().get(timeout=timeout)

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"LocalInstance({self._name!r})"

    def _live(self) -> Any:
        if not self.ref.is_alive():
            raise pykka.ActorDeadError(f"instance {self._name!r} is not running")
        return self._queues

    def get(self, timeout: float) -> InstanceState:
        state: InstanceState = self._live().get(timeout)
        return state

    def put(self, assignments: Sequence[Assignment], timeout: float) -> list[str]:
        keys: list[str] = self._live().put(list(assignments), timeout)
        return keys

    def commit(self, entries: Sequence[tuple[str, int]], timeout: float) -> int:
        count: int = self._live().commit(list(entries), timeout)
        return count

    def cancel(self, entries: Sequence[tuple[str, int]], timeout: float) -> list[str]:
        dropped: list[str] = self._live().cancel(list(entries), timeout)
        return dropped
