"""riaktq_py.frozen: the quicker __init__ and copy behave as the dataclass's own."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from riaktq_py.events import TaskEvent
from riaktq_py.frozen import copier, quick_init
from riaktq_py.task import Attempt, Backoff, Outcome, Status, Task
from riaktq_py.transitions import Close, Open


@dataclasses.dataclass(frozen=True, slots=True)
class Plain:
    name: str
    size: int = 3
    tags: frozenset[str] = frozenset()


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class Quick:
    name: str
    size: int = 3
    tags: frozenset[str] = frozenset()


def test_quick_init_takes_the_same_arguments_as_the_dataclass_init() -> None:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        (("a",), {}),
        (("a", 5), {}),
        (("a",), {"tags": frozenset("x")}),
        ((), {"name": "a", "size": 7}),
    ]
    for args, kwargs in calls:
        plain, quick = Plain(*args, **kwargs), Quick(*args, **kwargs)
        assert (quick.name, quick.size, quick.tags) == (plain.name, plain.size, plain.tags)
    with pytest.raises(TypeError):
        Quick()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Quick("a", nope=1)  # type: ignore[call-arg]


def test_classes_with_a_quick_init_stay_frozen_and_compare_as_before() -> None:
    task = Task("k", Status.TODO, b"\xc0", 1, priority=2, tags=frozenset({"t"}))
    assert task == Task(key="k", status=Status.TODO, input=b"\xc0", cat=1, priority=2,
                        tags=frozenset({"t"}))  # fmt: skip
    assert hash(task) == hash(dataclasses.replace(task))
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.status = Status.DONE  # type: ignore[misc]
    assert [p.name for p in inspect.signature(Task).parameters.values()] == [
        f.name for f in dataclasses.fields(Task)
    ]
    event = TaskEvent("open", "b", "k", 5, task)
    assert (event.error, event.position, event.ok) == (None, 0, True)
    close = Close("k", "i-1", 1, Outcome.DONE, 2, 3)
    assert (close.out, close.error, close.name) == (None, None, "close")
    assert Open("k", b"\xc0", 1).only_new is False
    assert Attempt(1, "i", 1, Outcome.LOST).sat is None


def test_task_replace_is_dataclasses_replace() -> None:
    task = Task("k", Status.TODO, b"\xc0", 1, tags=frozenset({"t"}), backoff=Backoff())
    changes: dict[str, Any] = {"status": Status.NEXTUP, "assignee": "i-1", "token": 1}
    copy = task.replace(**changes)
    assert type(copy) is Task
    assert copy == dataclasses.replace(task, **changes)
    assert task.status is Status.TODO and task.assignee is None  # the original is untouched
    assert task.replace() == task
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.token = 2  # type: ignore[misc]
    with pytest.raises(TypeError, match="Task has no field 'nope'"):
        task.replace(nope=1)
    with pytest.raises(TypeError, match="no field '__class__'"):
        task.replace(__class__=Plain)


def test_classes_that_would_not_be_copied_faithfully_are_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class KeywordOnly:
        a: int

    for cls in (NoSlots, NotFrozen, Factory, KeywordOnly, Backoff):  # Backoff: __post_init__
        with pytest.raises(TypeError):
            quick_init(cls)
        with pytest.raises(TypeError):
            copier(cls)
