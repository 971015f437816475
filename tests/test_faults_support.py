"""Support for the fault tests (no tests here): CLI processes, handlers, checks.

The handlers and the tick step are imported by the ``riaktq worker`` and
``riaktq scheduler`` processes the tests start (``--handler
tests.test_faults_support:Loud``), so they live in an importable module.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from riaktq_py import payload
from riaktq_py.clock import SystemClock
from riaktq_py.engine import Engine
from riaktq_py.store.sqlite import SqliteStore
from riaktq_py.task import Outcome, Status
from riaktq_py.transitions import Open

ROOT = Path(__file__).resolve().parent.parent
T = 30.0
#: settings that make liveness and takeover quick (seconds)
HEARTBEAT = 0.1
DEAD_AFTER = 10
LEASE = 1.5


# -- what the processes run ----------------------------------------------------------------


class Quiet:
    """Returns its input; ``{"sleep": s}`` works for ``s`` seconds first."""

    def init(self, options: Mapping[str, Any]) -> None:
        return None

    def handle(self, task_id: str, input: Any, tags: frozenset[str], state: Any) -> Any:
        seconds = input.get("sleep", 0) if isinstance(input, dict) else 0
        if seconds:
            time.sleep(seconds)  # the task's work
        return input


class Loud(Quiet):
    """Prints ``started KEY`` first; with RIAKTQ_TEST_HOLD set, never finishes."""

    def handle(self, task_id: str, input: Any, tags: frozenset[str], state: Any) -> Any:
        print(f"started {task_id}", flush=True)
        if os.environ.get("RIAKTQ_TEST_HOLD"):
            threading.Event().wait()  # until the process is killed
        return super().handle(task_id, input, tags, state)


class HangMidTick:
    """A tick step that, once RIAKTQ_TEST_HANG_AFTER_DONE tasks are done, hangs the tick.

    It runs after the tick's commit and restart steps, before assign and
    rollback: the process is then killed in the middle of a tick.
    """

    name = "hang"

    def __init__(self) -> None:
        self.after = int(os.environ.get("RIAKTQ_TEST_HANG_AFTER_DONE", "0"))

    def run(self, engine: Engine) -> int:
        if self.after and engine.store.count_by_status()[Status.DONE] >= self.after:
            print("hanging mid-tick", flush=True)
            threading.Event().wait()
        return 0


# -- processes ------------------------------------------------------------------------------


class Proc:
    """A ``python -m riaktq_py`` process; its output lines are collected as they come."""

    def __init__(self, store: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
        command = [sys.executable, "-m", "riaktq_py", "--store", str(store), *args]
        self.args = args
        self.popen = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.lines: dict[str, list[str]] = {"out": [], "err": []}
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(name, stream), daemon=True)
            for name, stream in (("out", self.popen.stdout), ("err", self.popen.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def __repr__(self) -> str:
        return f"Proc({' '.join(self.args[:3])}, pid {self.popen.pid})"

    def _read(self, name: str, stream: Any) -> None:
        for line in stream:
            with self._cond:
                self.lines[name].append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, text: str, *, stream: str = "out", timeout: float = T) -> str:
        """The first line of ``stream`` containing ``text``; waits for it up to ``timeout``."""
        found: list[str] = []

        def seen() -> bool:
            found[:] = [line for line in self.lines[stream] if text in line][:1]
            return bool(found) or self.popen.poll() is not None

        with self._cond:
            self._cond.wait_for(seen, timeout)
            if not found:
                raise AssertionError(
                    f"{self}: no {stream} line with {text!r} within {timeout} s"
                    f" (exit code {self.popen.poll()});\nout: {self.lines['out'][-20:]}"
                    f"\nerr: {self.lines['err'][-20:]}"
                )
            return found[0]

    def text(self, stream: str = "err") -> str:
        with self._cond:
            return "\n".join(self.lines[stream])

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def kill(self) -> None:
        """kill -9, and reap it."""
        self.popen.kill()
        self.popen.wait(T)

    def wait(self, timeout: float = T) -> int:
        """Its exit code, once it exited and all its output was read."""
        code = self.popen.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def cleanup(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGCONT)
            self.popen.kill()
        self.popen.wait(T)


def worker(store: Path, name: str, *extra: str, handler: str = "Quiet", **env: str) -> Proc:
    return Proc(
        store,
        "worker",
        "--handler",
        f"tests.test_faults_support:{handler}",
        "--name",
        name,
        "--heartbeat",
        str(HEARTBEAT),
        "--poll",
        "0.02",
        *extra,
        env=env,
    )


def scheduler(store: Path, name: str, *extra: str, **env: str) -> Proc:
    return Proc(
        store,
        "scheduler",
        "--name",
        name,
        "--interval",
        "0.3",
        "--lease",
        str(LEASE),
        "--dead-after",
        str(DEAD_AFTER),
        "--poll",
        "0.02",
        *extra,
        env=env,
    )


# -- the store, seen from the test -------------------------------------------------------------


def open_tasks(store: SqliteStore, items: Iterable[tuple[str, Any]], **options: Any) -> None:
    now = SystemClock().now_us()
    opens = [Open(key, payload.encode(value), cat=now, **options) for key, value in items]
    for start in range(0, len(opens), 1000):
        Engine(store, SystemClock()).apply(opens[start : start + 1000])


def wait_until(condition: Callable[[], bool], what: str, timeout: float = T) -> None:
    """Poll the store (another process changes it) until ``condition`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)  # polling another process's writes, not synchronising threads


def done(store: SqliteStore) -> int:
    return store.count_by_status()[Status.DONE]


def assert_done_exactly_once(store: SqliteStore, keys: Sequence[str]) -> None:
    """Every task done, with exactly one committed attempt: in the store and in the log."""
    tasks = store.get_many(keys)
    assert len(tasks) == len(keys)
    not_done = [k for k, t in tasks.items() if t.status is not Status.DONE]
    assert not not_done, f"not done: {not_done[:10]}"
    twice = [k for k, t in tasks.items() if sum(a.outcome is Outcome.DONE for a in t.history) != 1]
    assert not twice, f"not exactly one done attempt: {twice[:10]}"
    commits: Counter[str] = Counter()
    position = 0
    while page := store.events_after(position, 5000):
        commits.update(e.key for e in page if e.transition == "close" and e.ok)
        position = page[-1].position
    wrong = {k: commits[k] for k in keys if commits[k] != 1}
    assert not wrong, f"committed != 1 times in the log: {dict(list(wrong.items())[:10])}"
