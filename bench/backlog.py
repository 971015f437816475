"""A SQLite store holding a backlog of todo tasks, built once and cached.

Building 1M tasks through ``SqliteStore.apply`` takes a while, so each backlog
is built once into a cache directory and copied for every run (a run changes
the store). The cache file's name carries a hash of the modules that decide
the stored layout, so a layout change rebuilds it.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from riaktq_py import payload
from riaktq_py.actors.instance import Assignment, InstanceState, Result
from riaktq_py.store.sqlite import SqliteStore
from riaktq_py.task import Outcome
from riaktq_py.transitions import Open

TAGS = frozenset({"noop"})
BUILD_BATCH = 10_000
PRIORITIES = 10
LAYOUT_MODULES = (
    "store/sqlite.py",
    "store/sqlite_rows.py",
    "store/sqlite_apply.py",
    "store/sqlite_writes.py",
    "task.py",
    "transitions.py",
)
EMPTY_INPUT = payload.encode(None, limit=payload.DEFAULT_MAX_PAYLOAD, what="input")


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "riaktq-bench-cache"


def parse_size(text: str) -> int:
    """``10k`` -> 10000, ``1M`` -> 1000000, ``2500`` -> 2500."""
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    digits = text[:-1] if factor > 1 else text
    if not digits.isdigit() or int(digits) < 1:
        raise ValueError(f"a size is a positive whole number, optionally with k or M: {text!r}")
    return int(digits) * factor


def _layout_hash() -> str:
    root = Path(payload.__file__).resolve().parent
    digest = hashlib.sha256()
    for name in LAYOUT_MODULES:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:12]


def opens(keys: Sequence[str], cat: int, rng: random.Random) -> list[Open]:
    """Open transitions for backlog tasks: tag ``noop``, priorities 0-9, one µs apart."""
    return [
        Open(key, EMPTY_INPUT, cat=cat + n, priority=rng.randrange(PRIORITIES), tags=TAGS)
        for n, key in enumerate(keys)
    ]


def build(path: Path, size: int, seed: int = 7) -> float:
    """Open ``size`` todo tasks in ``path``; the seconds it took."""
    rng = random.Random(seed)
    started = time.perf_counter()
    store = SqliteStore(str(path))
    try:
        cat = 1_700_000_000_000_000
        for start in range(0, size, BUILD_BATCH):
            keys = [f"task-{n:08d}" for n in range(start, min(size, start + BUILD_BATCH))]
            store.apply(opens(keys, cat + start, rng), at=cat + start)
    finally:
        store.close()
    return time.perf_counter() - started


def backlog_copy(size: int, directory: Path, cache_dir: Path | None) -> tuple[Path, float]:
    """A fresh copy of a store with ``size`` todo tasks in ``directory``.

    Returns the copy's path and the seconds spent building (0 when cached).
    ``cache_dir=None`` builds straight into ``directory`` without caching.
    """
    target = directory / f"backlog-{size}.db"
    if cache_dir is None:
        return target, build(target, size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = cache_dir / f"todo-{size}-{_layout_hash()}.db"
    seconds = 0.0
    if not cached.exists():
        for stale in cache_dir.glob(f"todo-{size}-*.db"):  # built for an older layout
            stale.unlink(missing_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        seconds = build(partial, size)
        partial.replace(cached)
    shutil.copyfile(cached, target)
    return target, seconds


class FakeInstance:
    """An instance handle with no actor behind it (the InstanceHandle protocol).

    It keeps what it is given. With ``finish=True``, every ``get`` reports the
    tasks it holds as done results (as if they ran instantly), so each tick
    commits the previous tick's batch and assigns a new one.
    """

    def __init__(self, name: str, capacity: int, finish: bool = False) -> None:
        self._name = name
        self.capacity = capacity
        self.finish = finish
        self.held: list[Assignment] = []
        self.outputs: list[Result] = []
        self.committed: list[str] = []  # keys of committed results, oldest first

    @property
    def name(self) -> str:
        return self._name

    def get(self, timeout: float) -> InstanceState:
        if self.finish and self.held:
            now = time.time_ns() // 1000
            self.outputs += [Result(a.key, a.token, Outcome.DONE, now, 1) for a in self.held]
            self.held = []
        return InstanceState(
            self._name,
            TAGS,
            self.capacity,
            False,
            tuple(a.key for a in self.held),
            tuple(self.outputs),
        )

    def put(self, assignments: Sequence[Assignment], timeout: float) -> list[str]:
        accepted = list(assignments[: self.capacity - len(self.held)])
        self.held += accepted
        return [a.key for a in accepted]

    def commit(self, entries: Sequence[tuple[str, int]], timeout: float) -> int:
        done = set(entries)
        kept = [r for r in self.outputs if (r.key, r.token) not in done]
        self.committed += [r.key for r in self.outputs if (r.key, r.token) in done]
        count = len(self.outputs) - len(kept)
        self.outputs = kept
        return count
