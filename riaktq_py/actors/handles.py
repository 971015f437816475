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
    """An instance actor in this process, reached through its pykka proxy."""

    def __init__(self, name: str, ref: pykka.ActorRef[Any]) -> None:
        self._name = name
        self.ref = ref
        self._proxy = ref.proxy()

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"LocalInstance({self._name!r})"

    def get(self, timeout: float) -> InstanceState:
        state: InstanceState = self._proxy.get().get(timeout=timeout)
        return state

    def put(self, assignments: Sequence[Assignment], timeout: float) -> list[str]:
        keys: list[str] = self._proxy.put(list(assignments)).get(timeout=timeout)
        return keys

    def commit(self, entries: Sequence[tuple[str, int]], timeout: float) -> int:
        count: int = self._proxy.commit(list(entries)).get(timeout=timeout)
        return count

    def cancel(self, entries: Sequence[tuple[str, int]], timeout: float) -> list[str]:
        dropped: list[str] = self._proxy.cancel(list(entries)).get(timeout=timeout)
        return dropped
