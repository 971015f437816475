"""Store factories the contract suite runs against. Each backend adds one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from riaktq_py.store import SqliteStore, Store


@contextmanager
def sqlite_memory(tmp_path: Path) -> Iterator[Store]:
    store = SqliteStore(":memory:")
    try:
        yield store
    finally:
        store.close()


@contextmanager
def sqlite_file(tmp_path: Path) -> Iterator[Store]:
    store = SqliteStore(str(tmp_path / "tasks.db"))
    try:
        yield store
    finally:
        store.close()


@contextmanager
def riak_double(tmp_path: Path) -> Iterator[Store]:
    """A RiakStore on a protocol-level Riak double (tests/riak_double.py)."""
    from riaktq_py.store.riak import RiakStore
    from tests.riak_double import RiakDouble

    with RiakDouble() as node:
        store = RiakStore([node.node], "riaktq_task_t", "task", timeout=5.0, shards=4)
        try:
            yield store
        finally:
            store.close()


@contextmanager
def riak_real(tmp_path: Path) -> Iterator[Store]:
    """A RiakStore on the node RIAKTQ_RIAK_URL names (a fresh bucket per test)."""
    import os
    import uuid

    import pytest

    from riaktq_py.store.url import open_store

    url = os.environ.get("RIAKTQ_RIAK_URL")
    if not url:
        pytest.skip("RIAKTQ_RIAK_URL is not set (e.g. riak://127.0.0.1:8087/riaktq_task_t/task)")
    base, _, query = url.partition("?")
    store = open_store(f"{base}-{uuid.uuid4().hex[:12]}" + (f"?{query}" if query else ""))
    try:
        yield store
    finally:
        store.close()


#: name -> factory; the ``store`` fixture is parametrized over these.
BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Store]]] = {
    "sqlite-memory": sqlite_memory,
    "sqlite-file": sqlite_file,
    "riak-double": riak_double,
    "riak-real": riak_real,
}
