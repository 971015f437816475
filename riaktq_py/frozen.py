"""Cheaper construction and copying of the frozen, slotted dataclasses on the hot path.

A task, its transitions and its events are frozen dataclasses: nobody may change
one after it is made (the SQLite store even shares Task objects between the rows
it remembers). The price is paid every time one is made: a frozen dataclass's
generated ``__init__`` must store each field with ``object.__setattr__``, its own
``__setattr__`` refusing. Every task makes about a dozen of these objects on its
way from open to done, so that price shows in the throughput.

- :func:`quick_init` gives such a class an ``__init__`` with the same signature
  that stores each field through its slot's descriptor (about half the cost).
- :func:`copier` makes a ``replace`` that fills a plain twin class with the same
  slots by ordinary attribute stores, then gives the copy the frozen class
  (about a third of the cost of filling the frozen one slot by slot).

Both refuse classes they would not copy faithfully: no ``__post_init__``, no
default factories, no keyword-only fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def _fields(cls: type[Any]) -> tuple[dataclasses.Field[Any], ...]:
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen dataclass with slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__, which would be skipped")
    fields = dataclasses.fields(cls)
    for field in fields:
        if field.default_factory is not dataclasses.MISSING or field.kw_only:
            raise TypeError(f"{cls.__name__}.{field.name}: default factories and"
                            " keyword-only fields are not supported")  # fmt: skip
    if tuple(cls.__slots__) != tuple(field.name for field in fields):
        raise TypeError(f"{cls.__name__} has slots other than its fields")
    return fields


def _compile(source: str, namespace: dict[str, Any], name: str) -> Any:
    exec(source, namespace)  # the text is built here from field names only
    return namespace[name]


def quick_init(cls: type[T]) -> type[T]:
    """Replace a frozen slotted dataclass's ``__init__`` by one storing through slots."""
    fields = _fields(cls)
    namespace: dict[str, Any] = {}
    params = []
    for field in fields:
        if field.default is dataclasses.MISSING:
            params.append(field.name)
        else:
            namespace[f"_default_{field.name}"] = field.default
            params.append(f"{field.name}=_default_{field.name}")
        namespace[f"_set_{field.name}"] = getattr(cls, field.name).__set__
    body = "".join(f"\n    _set_{f.name}(self, {f.name})" for f in fields)
    init = _compile(f"def __init__(self, {', '.join(params)}):{body}", namespace, "__init__")
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    setattr(cls, "__init__", init)  # noqa: B010 - mypy would refuse a method assignment
    return cls


def copier(cls: type[T]) -> Callable[[T, Mapping[str, Any]], T]:
    """``copy(obj, changes)``: a copy of ``obj`` (a ``cls``) with ``changes`` by field
    name; an unknown name is a TypeError, as with ``dataclasses.replace``."""
    names = [field.name for field in _fields(cls)]
    twin = type(f"_{cls.__name__}Draft", (), {"__slots__": tuple(names)})
    namespace: dict[str, Any] = {
        "_new": object.__new__,
        "_twin": twin,
        "_cls": cls,
        "_setters": {name: getattr(twin, name).__set__ for name in names},
    }
    copies = "".join(f"\n    new.{name} = obj.{name}" for name in names)
    source = (
        f"def copy(obj, changes):\n    new = _new(_twin){copies}"
        "\n    for name, value in changes.items():"
        "\n        try:\n            _setters[name](new, value)"
        "\n        except KeyError:"
        f"\n            raise TypeError(f'{cls.__name__} has no field {{name!r}}') from None"
        "\n    new.__class__ = _cls\n    return new"
    )
    copy: Callable[[T, Mapping[str, Any]], T] = _compile(source, namespace, "copy")
    return copy
