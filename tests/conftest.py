from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

from riaktq_py.store import Store
from tests.backends import BACKENDS


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Every store backend, one after the other."""
    factory = BACKENDS[request.param]
    with factory(tmp_path) as backend:
        yield backend


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(timeout=10)
