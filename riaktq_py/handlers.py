"""Handlers: the user code an instance runs for each task.

riaktq's behaviour (``init(options) -> state``; ``handle(task_id, input, tags,
state) -> output``, raising for a failure) is the :class:`Handler` protocol.
Plain functions of one argument (the decoded input) are wrapped by
:class:`FunctionHandler`. :class:`EchoHandler` is the complete example.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from riaktq_py.errors import ConfigError, UnknownHandler


@runtime_checkable
class Handler(Protocol):
    """riaktq's handler behaviour."""

    def init(self, options: Mapping[str, Any]) -> Any:
        """Called once when an instance starts; returns the instance's state."""

    def handle(self, task_id: str, input: Any, tags: frozenset[str], state: Any) -> Any:
        """Run one task and return its output; raise to fail it."""


class EchoHandler:
    """Returns its input: the smallest complete handler."""

    def init(self, options: Mapping[str, Any]) -> Any:
        return dict(options)

    def handle(self, task_id: str, input: Any, tags: frozenset[str], state: Any) -> Any:
        return input


class FunctionHandler:
    """Wraps ``fn(input) -> output`` as a :class:`Handler`."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __repr__(self) -> str:
        return f"FunctionHandler({getattr(self.fn, '__qualname__', self.fn)!r})"

    def init(self, options: Mapping[str, Any]) -> Any:
        return None

    def handle(self, task_id: str, input: Any, tags: frozenset[str], state: Any) -> Any:
        return self.fn(input)


def as_handler(obj: object, *, where: str = "handler") -> Handler:
    """A :class:`Handler` from a handler instance, a handler class or a function."""
    if inspect.isclass(obj):
        try:
            obj = obj()
        except TypeError as exc:
            raise ConfigError(
                f"{where}: cannot instantiate {getattr(obj, '__qualname__', obj)}: {exc}"
            ) from exc
    if isinstance(obj, Handler):
        return obj
    if callable(obj):
        return FunctionHandler(obj)
    raise ConfigError(
        f"{where}: {obj!r} is neither a handler (init/handle) nor a function of the input"
    )


def import_object(path: str, what: str) -> object:
    """Import ``module:object`` (``object`` may be dotted); ``what`` names it in errors."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{what} {path!r} is not of the form module:object")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownHandler(f"{what} {path!r}: cannot import {module_name!r}: {exc}") from exc
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UnknownHandler(f"{what} {path!r}: {module_name!r} has no {attr!r}") from None
    return obj


def load_handler(path: str) -> Handler:
    """Import ``module:object`` and make a handler of it."""
    return as_handler(import_object(path, "handler"), where=f"handler {path!r}")
