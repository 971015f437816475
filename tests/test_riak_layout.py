"""riaktq's map layout, byte for byte: what riaktq (Erlang) writes, riaktq-py reads, and back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from riaktq_py import payload
from riaktq_py.store.riak import MapOps, RiakClient, RiakStore, layout
from riaktq_py.store.riak import messages as pb
from riaktq_py.store.riak.maps import MapValue
from riaktq_py.task import Attempt, Outcome, Status, Task
from riaktq_py.transitions import Assign, Close, Open
from tests.riak_double import RiakDouble

CAT = 1_700_000_000_123_456  # µs


def _register(name: bytes, value: bytes) -> object:
    return pb.MapEntry(field=pb.MapField(name=name, type=pb.REGISTER), register_value=value)


def riaktq_new_dt(inp: bytes, tags: list[bytes], priority: int, retry: int) -> list[object]:
    """The entries riaktq's ``riaktq_task:new_dt/6`` produces, as Riak returns them."""
    return [
        _register(b"status", b"todo"),
        _register(b"priority", b"%d" % priority),
        _register(b"retry", b"%d" % retry),
        pb.MapEntry(field=pb.MapField(name=b"tags", type=pb.SET), set_value=tags),
        _register(b"cat", b"%d" % CAT),
        _register(b"in", inp),
    ]


def test_map_entry_wire_bytes_use_riak_pb_field_numbers() -> None:
    """A register entry encodes as riak_dt.proto says: field=1{name=1,type=2}, register_value=4."""
    entry = _register(b"status", b"todo")
    assert entry.SerializeToString() == (  # type: ignore[attr-defined]
        b"\x0a\x0a" + b"\x0a\x06status" + b"\x10\x03" + b"\x22\x04todo"
    )
    tags = pb.MapEntry(field=pb.MapField(name=b"tags", type=pb.SET), set_value=[b"gpu"])
    assert tags.SerializeToString() == b"\x0a\x08\x0a\x04tags\x10\x02" + b"\x1a\x03gpu"


def test_riaktq_written_map_decodes_to_the_right_task() -> None:
    """riaktq's registers and set decode with riaktq's encodings; absent extras take defaults."""
    entries = riaktq_new_dt(b"raw input", [b"gpu", b"big"], priority=5, retry=2)
    task, rev = layout.decode("k1", MapValue.from_entries(entries))
    assert task == Task(key="k1", status=Status.TODO, input=b"raw input", cat=CAT, priority=5,
                        retry=2, tags=frozenset({"gpu", "big"}))
    assert rev == 0


def test_riaktq_nextup_and_done_maps_decode() -> None:
    """assignee, out, sat and laf registers as riaktq's instance and scheduler write them."""
    entries = [
        *riaktq_new_dt(b"x", [], priority=-1, retry=0),
        _register(b"assignee", b"instance-7"), _register(b"out", b"result bytes"),
        _register(b"sat", b"%d" % (CAT + 10)), _register(b"laf", b"250"),
    ]
    entries[0] = _register(b"status", b"done")
    task, _ = layout.decode("k", MapValue.from_entries(entries))
    assert (task.status, task.priority, task.assignee) == (Status.DONE, -1, "instance-7")
    assert (task.out, task.sat, task.laf) == (b"result bytes", CAT + 10, 250)


def test_encoding_a_task_produces_riaktqs_exact_registers() -> None:
    """Encoding a new task sets exactly riaktq's registers (decimal ASCII, µs) and the tags set."""
    task = Task(key="k", status=Status.TODO, input=b"\x91\x01", cat=CAT, priority=5, retry=2,
                tags=frozenset({"gpu"}))
    ops = layout.encode(task, rev=1)
    assert ops.registers() == {
        "status": b"todo", "priority": b"5", "retry": b"2", "cat": b"1700000000123456",
        "in": b"\x91\x01", "rev": b"1",
    }
    map_op = ops.to_pb()
    [tags] = [u for u in map_op.updates if u.field.name == b"tags"]
    assert (tags.field.type, list(tags.set_op.adds)) == (pb.SET, [b"gpu"])
    assert not map_op.removes


def test_riaktq_py_fields_are_extra_registers_and_round_trip() -> None:
    """attempts, token, error, history go into extra registers riaktq never reads."""
    attempt = Attempt(1, "i", 3, Outcome.FAILED, sat=5, laf=6, out=b"o", error="boom")
    task = Task(key="k", status=Status.FAILED, input=b"\xc0", cat=1, assignee="i", out=b"o",
                sat=5, laf=6, attempts=1, token=3, error="boom", history=(attempt,))
    registers = layout.registers(task, rev=4)
    assert set(registers) - set(layout.RIAKTQ_REGISTERS) <= set(layout.EXTRA_REGISTERS)
    assert (registers["attempts"], registers["token"], registers["error"]) == (b"1", b"3", b"boom")
    value = MapValue(registers=registers, sets={})
    assert layout.decode("k", value) == (task, 4)


def test_rollback_style_diff_removes_assignee_field() -> None:
    """A task that loses its assignee removes the register (as riaktq's rollback_dt erases it)."""
    before = Task(key="k", status=Status.NEXTUP, input=b"", cat=1, assignee="i", token=1)
    after = before.replace(status=Status.TODO, assignee=None)
    ops = layout.encode(after, rev=2, previous=before, previous_rev=1)
    assert ops.registers() == {"status": b"todo", "rev": b"2"}
    assert [(f.name, f.type) for f in ops.to_pb().removes] == [(b"assignee", pb.REGISTER)]
    assert ops.needs_context


@pytest.fixture
def node() -> Iterator[RiakDouble]:
    with RiakDouble() as double:
        yield double


def test_riaktq_written_task_runs_on_riaktq_py_and_back(node: RiakDouble) -> None:
    """A map written the way riaktq writes it is read, indexed, assigned and closed by the store,
    and the result is in the registers riaktq reads."""
    store = RiakStore([node.node], shards=2)
    raw = RiakClient(store.client.pool, "riaktq_task_t")
    ops = MapOps()
    for entry in riaktq_new_dt(payload.encode("hi"), [b"gpu"], priority=3, retry=0):
        name = entry.field.name.decode()  # type: ignore[attr-defined]
        if name == "tags":
            ops.add(name, entry.set_value)  # type: ignore[attr-defined]
        else:
            ops.set_register(name, entry.register_value)  # type: ignore[attr-defined]
    raw.update("task", "erl-1", ops)
    assert store.todo(10) == []  # no index entry yet: riaktq does not write one
    assert store.repair(["erl-1"]) == 1
    [task] = store.todo(10, tags=frozenset({"gpu"}))
    assert (task.key, task.input_value, task.priority, task.cat) == ("erl-1", "hi", 3, CAT)
    store.apply([Assign("erl-1", "inst")], at=CAT + 1)
    store.apply([Close("erl-1", "inst", 1, Outcome.DONE, sat=CAT + 2, laf=7,
                       out=b"out")], at=CAT + 9)
    value = raw.fetch("task", "erl-1")
    assert value is not None
    reg = value.registers
    assert (reg["status"], reg["assignee"], reg["out"], reg["sat"], reg["laf"]) == (
        b"done", b"inst", b"out", b"%d" % (CAT + 2), b"7")
    assert (reg["priority"], reg["cat"], value.sets["tags"]) == (b"3", b"%d" % CAT,
                                                                 frozenset({b"gpu"}))
    store.apply([Open("erl-1", b"\x01", cat=CAT)], at=CAT + 10)
    assert "assignee" not in (raw.fetch("task", "erl-1") or MapValue()).registers
    store.close()
