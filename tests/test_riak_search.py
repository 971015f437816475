"""The whole store contract on the Yokozuna (Solr) query path, against the double's search.

The contract tests are imported from ``test_store_contract`` and run here with
a ``store`` fixture that is a RiakStore configured with a search index.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from riaktq_py.store import Store
from riaktq_py.store.riak import RiakStore
from tests import test_store_contract
from tests.riak_double import RiakDouble

for _name in dir(test_store_contract):
    if _name.startswith("test_"):
        globals()[_name] = getattr(test_store_contract, _name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A RiakStore querying the index ``riaktq_task`` (riaktq's Riak 2.x set-up)."""
    with RiakDouble() as node:
        node.indexes["riaktq_task"] = "riaktq_task_t"
        riak = RiakStore([node.node], search_index="riaktq_task")
        try:
            yield riak
        finally:
            riak.close()
