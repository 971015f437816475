"""Two processes on one SQLite file: a producer, and ``riaktq serve`` running the tasks.

    python -m bench.cluster                  # N=20000, 4 instances, capacity 64
    python -m bench.cluster --n 5000 --instances 2

Not a target check (issue 7's targets are for the embedded queue): the figure
for scaling out. This process opens N no-op tasks through a queue that does
not tick (``Riaktq(path, interval=None, debounce=None)``), while a ``riaktq
serve`` subprocess on the same file (scheduler and instances, coordinated
through the store: its instances are registered workers fed through their
mailboxes) runs them. The clock runs from the first open until the store
counts N tasks done; it is read every 20 ms, so the figure is good to about
that much.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as a file: python bench/cluster.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import configure_logs, machine, positive_int
from riaktq_py import Riaktq, Status
from riaktq_py.store.sqlite import SqliteStore
from riaktq_py.workers import SqliteCoordination

HANDLER = "echo=riaktq_py.handlers:EchoHandler"
POLL = 0.02


def _serve(path: str, instances: int, capacity: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "riaktq_py", "--store", path, "serve", "--handler", HANDLER]
    command += ["--instances", str(instances), "--capacity", str(capacity)]
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, cwd=root)


def _wait_serving(store: SqliteStore, serve: subprocess.Popen[bytes], timeout: float) -> None:
    """Until the serving process has registered its instances (or died)."""
    registry = SqliteCoordination(store)
    deadline = time.monotonic() + timeout
    while not registry.directory():
        if serve.poll() is not None:
            raise RuntimeError(f"riaktq serve exited with status {serve.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"riaktq serve registered no instance in {timeout} s")
        time.sleep(POLL)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    p.add_argument("--n", type=positive_int, default=20_000, help="tasks")
    p.add_argument("--instances", type=positive_int, default=4, help="instances of the server")
    p.add_argument("--capacity", type=positive_int, default=64, help="tasks queued per instance")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds for the whole run")
    args = p.parse_args(argv)
    configure_logs("off")
    print(f"machine: {machine()}")
    print(f"N={args.n}, riaktq serve with {args.instances} instances x capacity {args.capacity}")
    with tempfile.TemporaryDirectory(prefix="riaktq-bench-") as directory:
        path = os.path.join(directory, "tasks.db")
        store = SqliteStore(path)
        serve = _serve(path, args.instances, args.capacity)
        try:
            _wait_serving(store, serve, 30.0)
            with Riaktq(store, interval=None, debounce=None) as tq:
                started = time.perf_counter()
                for number in range(args.n):
                    tq.open(f"task-{number:07d}", number, tags=["echo"])
                opened = time.perf_counter()
                deadline = time.monotonic() + args.timeout
                while store.count_by_status().get(Status.DONE, 0) < args.n:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"not all {args.n} tasks done in {args.timeout} s")
                    time.sleep(POLL)
                finished = time.perf_counter()
        finally:
            serve.terminate()
            serve.wait(30)
            store.close()
    seconds = finished - started
    print(
        f"opened in {opened - started:.2f} s; all done after {seconds:.2f} s:"
        f" {args.n / seconds:.0f} tasks/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
