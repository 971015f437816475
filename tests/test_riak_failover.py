"""Failures: dropped connections, error replies, stopped nodes, failover, reconnect."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from riaktq_py import payload
from riaktq_py.errors import StoreError, StoreUnavailable
from riaktq_py.store import TaskQuery
from riaktq_py.store.riak import MapOps, Pool, RiakClient, RiakStore
from riaktq_py.store.riak import messages as pb
from riaktq_py.task import Status
from riaktq_py.transitions import Assign, Open
from tests.riak_double import RiakDouble


@pytest.fixture
def a() -> Iterator[RiakDouble]:
    with RiakDouble() as node:
        yield node


@pytest.fixture
def b() -> Iterator[RiakDouble]:
    with RiakDouble() as node:
        yield node


def _dispatched(node: RiakDouble, code: int) -> int:
    return sum(1 for c, _ in node.requests if c == code)


def test_reconnect_after_a_dropped_pooled_connection(a: RiakDouble) -> None:
    """A pooled connection dropped mid-request is replaced and the request retried once."""
    client = RiakClient(Pool([a.node]), "riaktq_task_t")
    client.update("b", "k", MapOps().set_register("r", b"v"))  # leaves a pooled connection
    a.drop = 1
    value = client.fetch("b", "k")
    assert value is not None and value.registers == {"r": b"v"}
    assert a.drop == 0 and _dispatched(a, pb.DT_FETCH_REQ) == 1
    client.close()


def test_node_dropping_every_request_fails_with_node_and_operation(a: RiakDouble) -> None:
    """A node that drops connections mid-request gives StoreUnavailable naming it and the op."""
    client = RiakClient(Pool([a.node]), "riaktq_task_t")
    a.drop = -1
    with pytest.raises(StoreUnavailable,
                       match=rf"fetch b/k failed on every node: 127\.0\.0\.1:{a.port}: "
                             "connection closed by the node"):
        client.fetch("b", "k")
    a.drop = 0
    assert client.fetch("b", "k") is None
    client.close()


def test_failover_to_the_next_node_and_stay_there(a: RiakDouble, b: RiakDouble) -> None:
    """When the first node drops requests, the second answers, and is asked first afterwards."""
    client = RiakClient(Pool([a.node, b.node]), "riaktq_task_t")
    a.drop = -1
    client.update("b", "k", MapOps().set_register("r", b"v"))
    a.drop = 0
    assert client.fetch("b", "k") is not None
    assert _dispatched(a, pb.DT_UPDATE_REQ) == 0 and _dispatched(a, pb.DT_FETCH_REQ) == 0
    assert _dispatched(b, pb.DT_UPDATE_REQ) == 1 and _dispatched(b, pb.DT_FETCH_REQ) == 1
    client.close()


def test_stopped_node_fails_over_and_a_restarted_one_is_used_again(
    a: RiakDouble, b: RiakDouble
) -> None:
    """A stopped node is skipped; when every node is down the error lists each of them."""
    client = RiakClient(Pool([a.node, b.node], timeout=2.0), "riaktq_task_t")
    client.ping()
    a.stop()
    client.ping()
    assert _dispatched(a, pb.PING_REQ) == 1 and _dispatched(b, pb.PING_REQ) == 1
    b.stop()
    with pytest.raises(StoreUnavailable) as caught:
        client.ping()
    message = str(caught.value)
    assert f"127.0.0.1:{a.port}" in message and f"127.0.0.1:{b.port}" in message
    assert message.startswith("riak: ping failed on every node")
    a.restart()
    client.update("b", "k", MapOps().set_register("r", b"v"))
    assert _dispatched(a, pb.DT_UPDATE_REQ) == 1
    client.close()


def test_error_replies_do_not_fail_over(a: RiakDouble, b: RiakDouble) -> None:
    """An error reply is an answer: StoreError from that node, the next node is not asked."""
    client = RiakClient(Pool([a.node, b.node]), "riaktq_task_t")
    a.fail, a.fail_message = -1, "{precondition,{not_present,x}}"
    with pytest.raises(StoreError, match=rf"riak 127\.0\.0\.1:{a.port}: update b/k: error reply"):
        client.update("b", "k", MapOps().set_register("r", b"v"))
    assert not b.requests
    client.close()


def test_store_keeps_working_through_a_node_failure(a: RiakDouble, b: RiakDouble) -> None:
    """A store on two nodes (sharing data, as a cluster does) survives the first one stopping."""
    b.maps = a.maps  # one cluster, two endpoints
    store = RiakStore([a.node, b.node], shards=2, timeout=2.0)
    store.apply([Open("t", payload.encode(1), cat=1)], at=1)
    a.stop()
    [event] = store.apply([Assign("t", "i")], at=2)
    assert event.ok
    assert [t.key for t in store.find(TaskQuery(assignee="i"))] == ["t"]
    assert store.count_by_status()[Status.NEXTUP] == 1
    assert [e.transition for e in store.events_after(0, 10)] == ["open", "assign"]
    b.drop = -1
    with pytest.raises(StoreUnavailable, match="failed on every node"):
        store.get("t")
    store.close()
