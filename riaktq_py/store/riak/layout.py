"""A Task as a Riak map: riaktq's layout, exactly (SPEC A1).

riaktq's fields, with riaktq's encodings:

=========  ========  ==============================================
field      type      encoding
=========  ========  ==============================================
status     register  ``todo`` | ``nextup`` | ``done`` | ``failed``
priority   register  decimal ASCII integer (``b"-1"``, ``b"5"``)
retry      register  decimal ASCII integer
tags       set       one element per tag, UTF-8
assignee   register  UTF-8 instance name; absent when unassigned
in         register  the input payload bytes (msgpack in riaktq-py)
out        register  the output, or the failure reason (bytes)
cat        register  created at, Unix microseconds, decimal ASCII
sat        register  started at, Unix microseconds, decimal ASCII
laf        register  lasted for, microseconds, decimal ASCII
=========  ========  ==============================================

riaktq-py's additions are extra registers riaktq never reads (its Solr
schema sends unknown fields to an ignored catch-all), one per other Task
field, named after it and written only when not the default: ``attempts``,
``token``, ``run_at``, ``aged_at`` (decimal ASCII), ``error``, ``unique``
(UTF-8), ``timeout`` (decimal float), ``history`` and ``backoff`` (msgpack),
any later field as msgpack; and ``rev`` (decimal ASCII; the store's write
revision, increasing per key and at least the write's time, which the index
uses to tell a stale entry from one whose task write is in flight). A map
written by riaktq has none of them and reads with their defaults.

Writes are diffs: only registers that changed are set, tags that went are
removed from the set, and fields that became empty are removed (both need
the context of the fetch the diff was computed from).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import msgpack

from riaktq_py import task as _task_module
from riaktq_py.errors import StoreError
from riaktq_py.store.riak import messages as pb
from riaktq_py.store.riak.maps import MapOps, MapValue
from riaktq_py.task import Status, Task, decode_history, encode_history


def _unpack(raw: bytes) -> Any:
    return msgpack.unpackb(raw, raw=False)


#: riaktq's registers, in the order riaktq's ``new_dt`` writes them, then the rest.
RIAKTQ_REGISTERS = ("status", "priority", "retry", "cat", "in", "assignee", "out", "sat", "laf")
TAGS = "tags"


def _int(value: int) -> bytes:
    return str(value).encode("ascii")


def _text(value: str) -> bytes:
    return value.encode("utf-8")


def _pack(value: Any) -> bytes:
    wire = value.to_wire() if hasattr(value, "to_wire") else value
    packed: bytes = msgpack.packb(wire, use_bin_type=True)
    return packed


#: How riaktq-py's extra Task fields are encoded (name -> (encode, decode)).
#: Fields not listed here (added later) are stored as msgpack.
_CODECS: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = {
    "attempts": (_int, int),
    "token": (_int, int),
    "run_at": (_int, int),
    "aged_at": (_int, int),
    "error": (_text, lambda raw: raw.decode("utf-8")),
    "unique": (_text, lambda raw: raw.decode("utf-8")),
    "timeout": (lambda v: repr(float(v)).encode("ascii"), float),
    "history": (encode_history, decode_history),
    "backoff": (_pack, lambda raw: _task_module.Backoff.from_wire(msgpack.unpackb(raw))),
}
#: Task attributes stored under riaktq's fields (attribute -> map field).
_RIAKTQ_ATTRS = {
    "status": "status",
    "priority": "priority",
    "retry": "retry",
    "cat": "cat",
    "input": "in",
    "assignee": "assignee",
    "out": "out",
    "sat": "sat",
    "laf": "laf",
    "tags": TAGS,
    "key": "",
}


#: Task fields stored as riaktq-py's extra registers (computed once).
_EXTRAS: tuple[dataclasses.Field[Any], ...] = tuple(
    f for f in dataclasses.fields(Task) if f.name not in _RIAKTQ_ATTRS
)
EXTRA_REGISTERS = (*(f.name for f in _EXTRAS), "rev")


def registers(task: Task, rev: int | None = None) -> dict[str, bytes]:
    """Every register a task has, encoded (absent optional fields are left out)."""
    values: dict[str, bytes | None] = {
        "status": task.status.value.encode("ascii"),
        "priority": _int(task.priority),
        "retry": _int(task.retry),
        "cat": _int(task.cat),
        "in": task.input,
        "assignee": None if task.assignee is None else task.assignee.encode("utf-8"),
        "out": task.out,
        "sat": None if task.sat is None else _int(task.sat),
        "laf": None if task.laf is None else _int(task.laf),
    }
    for extra in _EXTRAS:
        value = getattr(task, extra.name)
        if value is None or value == _default(extra):
            continue
        encoder = _CODECS[extra.name][0] if extra.name in _CODECS else _pack
        values[extra.name] = encoder(value)
    values["rev"] = None if rev is None else _int(rev)
    return {name: value for name, value in values.items() if value is not None}


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def encode(
    task: Task,
    *,
    rev: int | None = None,
    previous: Task | None = None,
    previous_rev: int | None = None,
) -> MapOps:
    """The map operations that turn ``previous`` (or nothing) into ``task``."""
    ops = MapOps()
    new = registers(task, rev)
    old = registers(previous, previous_rev) if previous is not None else {}
    for name, value in new.items():
        if old.get(name) != value:
            ops.set_register(name, value)
    for name in old.keys() - new.keys():
        ops.remove(name, pb.REGISTER)
    old_tags = previous.tags if previous is not None else frozenset()
    ops.add(TAGS, sorted(t.encode("utf-8") for t in task.tags - old_tags))
    ops.discard(TAGS, sorted(t.encode("utf-8") for t in old_tags - task.tags))
    return ops


def decode(key: str, value: MapValue) -> tuple[Task, int]:
    """The task stored in a map, and its ``rev`` (0 for maps riaktq wrote)."""
    reg = value.registers
    try:
        status = Status(reg["status"].decode("ascii"))
    except KeyError:
        raise StoreError(f"riak: task {key!r} has no status register") from None
    except ValueError:
        raise StoreError(f"riak: task {key!r} has an unknown status {reg['status']!r}") from None
    extras: dict[str, Any] = {}
    try:
        for extra in _EXTRAS:
            raw = reg.get(extra.name)
            if raw is not None:
                decoder = _CODECS[extra.name][1] if extra.name in _CODECS else _unpack
                extras[extra.name] = decoder(raw)
        task = Task(
            key=key,
            status=status,
            input=reg.get("in", b""),
            cat=_decode_int(reg, "cat") or 0,
            priority=_decode_int(reg, "priority") or 0,
            retry=_decode_int(reg, "retry") or 0,
            tags=frozenset(t.decode("utf-8") for t in value.sets.get(TAGS, ())),
            assignee=_decode_text(reg, "assignee"),
            out=reg.get("out"),
            sat=_decode_int(reg, "sat"),
            laf=_decode_int(reg, "laf"),
            **extras,
        )
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise StoreError(f"riak: task {key!r} has a malformed field: {exc}") from exc
    return task, _decode_int(reg, "rev") or 0


def _decode_int(reg: dict[str, bytes], name: str) -> int | None:
    raw = reg.get(name)
    if raw is None or raw == b"":
        return None
    try:
        return int(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{name} register {raw!r} is not a decimal integer") from None


def _decode_text(reg: dict[str, bytes], name: str) -> str | None:
    raw = reg.get(name)
    return None if raw is None else raw.decode("utf-8")
