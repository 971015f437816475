"""The Riak KV store: riaktq's task maps on a Riak cluster, over protocol buffers."""

from riaktq_py.store.riak.connection import Node, Pool
from riaktq_py.store.riak.maps import MapOps, MapValue, Quorum, RiakClient
from riaktq_py.store.riak.store import RiakStore

__all__ = ["MapOps", "MapValue", "Node", "Pool", "Quorum", "RiakClient", "RiakStore"]
