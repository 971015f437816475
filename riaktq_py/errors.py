"""The exceptions riaktq-py raises.

All of them derive from :class:`RiaktqError`::

    RiaktqError
    ├── ConfigError            bad configuration (names the setting)
    ├── PayloadError           a payload was refused at the door
    │   ├── PayloadTooLarge    encoded size above the configured limit
    │   ├── UnencodablePayload value msgpack cannot encode
    │   └── UndecodablePayload bytes that are not one msgpack value
    ├── UnknownHandler         no handler registered under that name
    ├── TaskNotFound           no task under that key
    ├── TransitionError        "expected X, found Y": a transition refused
    └── StoreError             the store failed (driver errors translated)
        └── StoreUnavailable   the store cannot be reached right now
"""

from __future__ import annotations


class RiaktqError(Exception):
    """Base class of every error riaktq-py raises on purpose."""


class ConfigError(RiaktqError, ValueError):
    """A configuration value is invalid; the message names the setting."""


class PayloadError(RiaktqError, ValueError):
    """A task payload was refused."""


class PayloadTooLarge(PayloadError):
    """An encoded payload is larger than the configured limit."""


class UnencodablePayload(PayloadError):
    """A value cannot be encoded as msgpack."""


class UndecodablePayload(PayloadError):
    """Bytes that do not decode as exactly one msgpack value."""


class UnknownHandler(RiaktqError, LookupError):
    """No handler is registered under the given name."""


class TaskNotFound(RiaktqError, LookupError):
    """No task is stored under the given key."""


class TransitionError(RiaktqError):
    """A transition found the task in another status than it expects."""

    def __init__(self, transition: str, key: str, expected: str, found: str) -> None:
        self.transition = transition
        self.key = key
        self.expected = expected
        self.found = found
        super().__init__(f"{transition} {key!r}: expected {expected}, found {found}")

    @classmethod
    def from_message(cls, transition: str, key: str, message: str) -> TransitionError:
        """Rebuild the error from its text (as a refused event carries it)."""
        expected, _, found = message.partition(": expected ")[2].rpartition(", found ")
        return cls(transition, key, expected or "?", found or message)


class StoreError(RiaktqError):
    """The store failed to carry out an operation."""


class StoreUnavailable(StoreError):
    """The store cannot be reached right now; the operation may be retried."""
