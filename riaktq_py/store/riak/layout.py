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

riaktq-py's additions are extra fields riaktq never reads (its Solr schema
sends unknown fields to an ignored catch-all): registers ``attempts`` and
``token`` (decimal ASCII), ``error`` (UTF-8), ``history`` (msgpack list of
attempts) and ``rev`` (decimal ASCII; the store's write counter, which the
index uses to tell a stale entry from one whose task write is in flight).
A map written by riaktq has none of them and reads with their defaults.

Writes are diffs: only registers that changed are set, tags that went are
removed from the set, and fields that became empty are removed (both need
the context of the fetch the diff was computed from).
"""

from __future__ import annotations

from riaktq_py.errors import StoreError
from riaktq_py.store.riak import messages as pb
from riaktq_py.store.riak.maps import MapOps, MapValue
from riaktq_py.task import Status, Task, decode_history, encode_history

#: riaktq's registers, in the order riaktq's ``new_dt`` writes them, then the rest.
RIAKTQ_REGISTERS = ("status", "priority", "retry", "cat", "in", "assignee", "out", "sat", "laf")
EXTRA_REGISTERS = ("attempts", "token", "error", "history", "rev")
TAGS = "tags"


def _int(value: int) -> bytes:
    return str(value).encode("ascii")


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
        "attempts": _int(task.attempts) if task.attempts else None,
        "token": _int(task.token) if task.token else None,
        "error": None if task.error is None else task.error.encode("utf-8"),
        "history": encode_history(task.history) if task.history else None,
        "rev": None if rev is None else _int(rev),
    }
    return {name: value for name, value in values.items() if value is not None}


def encode(
    task: Task, *, rev: int | None = None, previous: Task | None = None,
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
    try:
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
            attempts=_decode_int(reg, "attempts") or 0,
            token=_decode_int(reg, "token") or 0,
            error=_decode_text(reg, "error"),
            history=decode_history(reg.get("history")),
        )
    except (ValueError, UnicodeDecodeError) as exc:
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
