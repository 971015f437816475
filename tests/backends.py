"""Store factories the contract suite runs against. Each backend adds one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from riaktq_py.store import SqliteStore, Store

StoreFactory = Callable[[Path], Iterator[Store]]


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


#: name -> factory; the ``store`` fixture is parametrized over these.
BACKENDS: dict[str, Callable[[Path], object]] = {
    "sqlite-memory": sqlite_memory,
    "sqlite-file": sqlite_file,
}
