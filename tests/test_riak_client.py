"""The Riak client: framing, map operations with context, quorum options, pool, timeouts."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from riaktq_py.errors import ConfigError, StoreError, StoreUnavailable
from riaktq_py.store.riak import MapOps, Node, Pool, Quorum, RiakClient
from riaktq_py.store.riak import messages as pb
from riaktq_py.store.riak.connection import Connection
from tests.riak_double import RiakDouble


@pytest.fixture
def node() -> Iterator[RiakDouble]:
    with RiakDouble() as double:
        yield double


@pytest.fixture
def client(node: RiakDouble) -> Iterator[RiakClient]:
    c = RiakClient(Pool([node.node], size=2, timeout=5.0), "riaktq_task_t")
    yield c
    c.close()


def test_framing_ping_is_length_one_code_one(node: RiakDouble) -> None:
    """A ping is the frame 00000001 01; the reply is 00000001 02 (length counts the code)."""
    connection = Connection(node.node, timeout=5.0)
    assert connection.request(pb.PING_REQ, b"", timeout=5.0) == (pb.PING_RESP, b"")
    connection.close()


def test_fetch_missing_key_is_none(client: RiakClient) -> None:
    """Not found is a fetch reply without a value."""
    assert client.fetch("b", "nothing") is None


def test_update_then_fetch_every_field_type(client: RiakClient) -> None:
    """Registers, sets, counters and flags round-trip; the fetch carries a context."""
    ops = MapOps().set_register("r", b"v").add("s", [b"a", b"b"]).increment("c", 5).flag("f", True)
    client.update("b", "k", ops)
    value = client.fetch("b", "k")
    assert value is not None and value.context
    assert (value.registers, value.sets, value.counters, value.flags) == (
        {"r": b"v"}, {"s": frozenset({b"a", b"b"})}, {"c": 5}, {"f": True})
    client.update("b", "k", MapOps().set_register("r", b"w").increment("c", -2).flag("f", False))
    value = client.fetch("b", "k")
    assert value is not None
    assert (value.registers["r"], value.counters["c"], value.flags["f"]) == (b"w", 3, False)


def test_removals_need_a_context(client: RiakClient, node: RiakDouble) -> None:
    """Field and element removal are refused client-side without a context; with one they work."""
    client.update("b", "k", MapOps().set_register("r", b"v").add("s", [b"a", b"b"]))
    with pytest.raises(StoreError, match="needs the context"):
        client.update("b", "k", MapOps().remove("r", pb.REGISTER))
    value = client.fetch("b", "k")
    assert value is not None
    client.update("b", "k", MapOps().remove("r", pb.REGISTER).discard("s", [b"a"]),
                  context=value.context)
    after = client.fetch("b", "k")
    assert after is not None and after.registers == {} and after.sets == {"s": frozenset({b"b"})}


def test_removal_keeps_what_the_context_did_not_see(client: RiakClient) -> None:
    """An element added after the fetch survives a removal made with that fetch's context."""
    client.update("b", "k", MapOps().add("s", [b"a"]))
    seen = client.fetch("b", "k")
    assert seen is not None
    client.update("b", "k", MapOps().add("s", [b"a"]))  # re-added concurrently
    client.update("b", "k", MapOps().discard("s", [b"a"]), context=seen.context)
    value = client.fetch("b", "k")
    assert value is not None and value.sets["s"] == frozenset({b"a"})


def test_return_body_and_delete(client: RiakClient) -> None:
    """return_body gives the new value; delete makes the key not found."""
    value = client.update("b", "k", MapOps().increment("n", 3), return_body=True)
    assert value is not None and value.counters == {"n": 3}
    client.delete("b", "k")
    assert client.fetch("b", "k") is None


def test_quorum_defaults_are_riaktqs_and_configurable(node: RiakDouble) -> None:
    """Reads send pr=quorum and writes pw=quorum by default; r/w/pr/pw are configurable."""
    client = RiakClient(Pool([node.node]), "riaktq_task_t")
    client.fetch("b", "k")
    client.update("b", "k", MapOps().set_register("r", b"v"))
    (_, fetch), (_, update) = node.requests[-2:]
    assert (fetch.pr, fetch.HasField("r")) == (pb.QUORUM_VALUES["quorum"], False)
    assert (update.pw, update.HasField("w")) == (pb.QUORUM_VALUES["quorum"], False)
    assert fetch.timeout == update.timeout == 5000
    tuned = RiakClient(Pool([node.node]), "riaktq_task_t", quorum=Quorum(r=2, pr="one", w="all"))
    tuned.fetch("b", "k")
    tuned.update("b", "k", MapOps().set_register("r", b"w"))
    (_, fetch), (_, update) = node.requests[-2:]
    assert (fetch.r, fetch.pr) == (2, pb.QUORUM_VALUES["one"])
    assert (update.w, update.pw) == (pb.QUORUM_VALUES["all"], pb.QUORUM_VALUES["quorum"])
    with pytest.raises(ConfigError, match="pr"):
        Quorum(pr="most")
    client.close()
    tuned.close()


def test_error_reply_names_node_and_operation(client: RiakClient, node: RiakDouble) -> None:
    """A Riak error reply becomes StoreError with the node and the operation."""
    other = RiakClient(client.pool, "no_such_type")
    with pytest.raises(StoreError, match=rf"riak 127\.0\.0\.1:{node.port}: fetch b/k: .*no bucket"):
        other.fetch("b", "k")
    node.fail, node.fail_message = 1, "timeout"
    with pytest.raises(StoreUnavailable, match="update b/k: error reply: timeout"):
        client.update("b", "k", MapOps().set_register("r", b"v"))
    client.ping()  # the connection is still good after an error reply


def test_request_times_out(node: RiakDouble) -> None:
    """A node that never answers makes the request fail after the timeout."""
    client = RiakClient(Pool([node.node], timeout=0.2), "riaktq_task_t")
    node.stall.set()
    with pytest.raises(StoreUnavailable, match=r"fetch b/k failed on every node: .*timed out"):
        client.fetch("b", "k")
    assert node.stalled.is_set()
    node.released.set()
    client.close()


def test_pool_size_bounds_connections(node: RiakDouble) -> None:
    """With size 1, a request waits for the one connection; once free, it is reused."""
    pool = Pool([node.node], size=1, timeout=5.0, acquire_timeout=0.1)
    client = RiakClient(pool, "riaktq_task_t")
    node.stall.set()
    held: list[BaseException] = []

    def stalled_request() -> None:
        try:
            client.ping()
        except StoreUnavailable as exc:
            held.append(exc)

    thread = threading.Thread(target=stalled_request)
    thread.start()
    assert node.stalled.wait(5)  # the only connection is busy
    with pytest.raises(StoreUnavailable, match=r"no free connection within 0\.1s \(pool size 1\)"):
        client.ping()
    node.stall.clear()
    node.released.set()  # the double drops the held request
    thread.join(5)
    assert held and "connection closed by the node" in str(held[0])
    client.ping()
    client.ping()
    assert pool.idle_connections() == 1
    client.close()


def test_pool_refuses_bad_configuration() -> None:
    """Pool size, timeout and node list are checked."""
    with pytest.raises(ConfigError, match="size"):
        Pool([Node("h")], size=0)
    with pytest.raises(ConfigError, match="timeout"):
        Pool([Node("h")], timeout=0)
    with pytest.raises(ConfigError, match="node"):
        Pool([])


def test_closed_pool_refuses_requests(client: RiakClient) -> None:
    """After close, requests fail with StoreError."""
    client.close()
    with pytest.raises(StoreError, match="closed"):
        client.ping()
