"""Store backends behind one contract (:class:`Store`)."""

from riaktq_py.store.base import Store, TaskQuery
from riaktq_py.store.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store", "TaskQuery"]
