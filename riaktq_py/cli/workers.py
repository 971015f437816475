"""``riaktq worker`` and ``riaktq scheduler``: instances and the scheduler in separate processes.

Both meet in the store (a SQLite file every process can open): workers
register their instances and heartbeats there, the scheduler that holds the
lease gives them work and commits their results. Start any number of each;
only the lease holder ticks, the other schedulers stand by.

The first SIGINT or SIGTERM stops gracefully (a worker returns its queued
tasks, lets running ones finish within ``--grace``, hands in their results; a
scheduler finishes its tick and releases the lease) and exits 0; a second one
exits at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import sys
from typing import Any
from urllib.parse import unquote

from riaktq_py.actors.scheduler import SchedulerConfig
from riaktq_py.actors.tick import TickConfig, TickStep
from riaktq_py.cli.common import (
    comma_list,
    format_table,
    positive_float,
    positive_int,
    store_url,
    write,
)
from riaktq_py.cli.signals import stop_on_signals
from riaktq_py.errors import ConfigError
from riaktq_py.handlers import import_object, load_handler
from riaktq_py.store.sqlite import SqliteStore
from riaktq_py.workers.coordination import SCHEDULER_LEASE
from riaktq_py.workers.lease import LeaseConfig
from riaktq_py.workers.service import SchedulerService, ServiceConfig
from riaktq_py.workers.sqlite_coordination import FencedSqliteStore, SqliteCoordination
from riaktq_py.workers.worker import Worker, WorkerConfig


def register(subparsers: Any) -> None:
    worker = subparsers.add_parser(
        "worker",
        help="run instances for the store's scheduler, until SIGINT/SIGTERM",
        description="Run --instances instances of a handler; they take their work from, and "
        "hand their results to, the scheduler through the store.",
    )
    worker.add_argument(
        "--handler",
        required=True,
        metavar="module:object",
        help="the handler (class, instance or function) every instance runs",
    )
    worker.add_argument("--instances", type=positive_int, default=1, help="default 1")
    worker.add_argument(
        "--tags", type=comma_list, default=[], metavar="A,B", help="the instances' tags"
    )
    worker.add_argument(
        "--capacity", type=positive_int, default=1, help="tasks each instance queues (default 1)"
    )
    worker.add_argument("--name", help="instance name prefix (default HOST-PID)")
    worker.add_argument(
        "--heartbeat", type=positive_float, default=1.0, help="seconds between heartbeats"
    )
    worker.add_argument(
        "--grace",
        type=positive_float,
        default=30.0,
        help="seconds running tasks get to finish on SIGTERM (default 30)",
    )
    _common(worker)
    worker.set_defaults(run=run_worker)

    scheduler = subparsers.add_parser(
        "scheduler",
        help="run a scheduler (one ticks, others stand by), until SIGINT/SIGTERM",
        description="Run a scheduler for the workers of the store. It ticks only while it "
        "holds the store's scheduler lease; otherwise it stands by and takes over when the "
        "holder stops renewing it.",
    )
    scheduler.add_argument(
        "--interval", type=positive_float, default=1.0, help="seconds between ticks (default 1)"
    )
    scheduler.add_argument(
        "--lease", type=positive_float, default=5.0, help="lease duration in seconds (default 5)"
    )
    scheduler.add_argument(
        "--dead-after",
        type=positive_int,
        default=5,
        metavar="N",
        help="an instance is dead after N of its heartbeat intervals without one (default 5)",
    )
    scheduler.add_argument("--batch-size", type=positive_int, default=1000)
    scheduler.add_argument(
        "--step",
        dest="steps",
        action="append",
        default=[],
        metavar="module:object",
        help="an extra tick step (a TickStep, or a class making one); repeatable",
    )
    scheduler.add_argument("--name", help="this scheduler's name in the lease")
    _common(scheduler)
    scheduler.set_defaults(run=run_scheduler)

    lister = subparsers.add_parser(
        "instances",
        help="list the registered remote instances and the scheduler lease",
        description="The instances workers registered in the store, their queues, and who "
        "holds the scheduler lease.",
    )
    lister.add_argument("--json", action="store_true", help="print JSON")
    lister.set_defaults(run=run_instances)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll", type=positive_float, default=0.05, help="seconds between store polls"
    )
    parser.add_argument(
        "--store-timeout",
        type=positive_float,
        default=5.0,
        help="seconds to wait for the store's write lock before failing (default 5)",
    )


def sqlite_file(url: str) -> str:
    """The SQLite file a store URL names (the store is not opened).

    Workers and schedulers in separate processes need a file every one of them can open.
    """
    scheme, sep, rest = url.partition("://")
    if sep and scheme == "riak":
        raise ConfigError(
            f"store {url!r}: workers and schedulers in separate processes need a SQLite store"
            " file (coordination over Riak is not implemented)"
        )
    path = url if not sep else unquote(rest) if scheme == "sqlite" else ""
    if not path.strip():
        raise ConfigError(f"store {url!r}: give a SQLite file (a path or sqlite://path)")
    if path == ":memory:":
        raise ConfigError(f"store {url!r}: separate processes cannot share ':memory:'; give a file")
    return path


def load_step(path: str) -> TickStep:
    """Import ``module:object``: a tick step, or a class whose instances are one."""
    obj: Any = import_object(path, "tick step")
    if inspect.isclass(obj):
        obj = obj()
    if not (isinstance(getattr(obj, "name", None), str) and callable(getattr(obj, "run", None))):
        raise ConfigError(f"tick step {path!r}: needs a str 'name' and a 'run(engine)' method")
    step: TickStep = obj
    return step


def _exit_at_once() -> None:
    print("riaktq: second signal: exiting at once", file=sys.stderr, flush=True)


def run_worker(args: argparse.Namespace) -> int:
    handler = load_handler(args.handler)
    config = WorkerConfig(
        instances=args.instances,
        capacity=args.capacity,
        tags=frozenset(args.tags),
        heartbeat=args.heartbeat,
        poll=args.poll,
        name=args.name,
    )
    store = SqliteStore(sqlite_file(store_url(args)), busy_timeout=args.store_timeout)
    try:
        worker = Worker(SqliteCoordination(store), handler, config, report=write)
        with stop_on_signals(_exit_at_once) as stop:
            worker.start()
            write(
                f"worker {worker.prefix}: {len(worker.names)} instance(s) ready"
                f" ({', '.join(worker.names)}); SIGINT or SIGTERM drains"
            )
            while not stop.wait(0.5):
                pass
            finished = worker.shutdown(args.grace)
            write(
                f"worker {worker.prefix}: stopped"
                + ("" if finished else " (grace period over: unfinished tasks go back to todo)")
            )
    finally:
        store.close()
    if not finished:  # a handler still runs on a thread that would hold the exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def run_scheduler(args: argparse.Namespace) -> int:
    steps = [load_step(path) for path in args.steps]
    config = ServiceConfig(
        scheduler=SchedulerConfig(
            interval=args.interval, tick=TickConfig(batch_size=args.batch_size)
        ),
        lease=LeaseConfig(duration=args.lease),
        poll=args.poll,
        dead_after=args.dead_after,
    )
    store = FencedSqliteStore(sqlite_file(store_url(args)), busy_timeout=args.store_timeout)
    try:
        service = SchedulerService(store, config, holder=args.name, steps=steps, report=write)
        with stop_on_signals(_exit_at_once) as stop:
            service.start()
            while not stop.wait(0.5):
                pass
            service.stop()
    finally:
        store.close()
    return 0


INSTANCE_HEADERS = (
    "instance",
    "worker",
    "tags",
    "capacity",
    "queued",
    "running",
    "results",
    "state",
)


def run_instances(args: argparse.Namespace) -> int:
    store = SqliteStore(sqlite_file(store_url(args)))
    try:
        coordination = SqliteCoordination(store)
        lease = coordination.lease_get(SCHEDULER_LEASE)
        rows: list[dict[str, Any]] = []
        for name, record in sorted(coordination.directory().items()):
            box = coordination.mailbox(name)
            state = "left" if record is None else "draining" if record.draining else "registered"
            rows.append(
                {
                    "instance": name,
                    "worker": None if record is None else record.worker,
                    "tags": [] if record is None else sorted(record.tags),
                    "capacity": 0 if record is None else record.capacity,
                    "queued": len(box.inputs) - len(box.taken),
                    "running": list(box.taken),
                    "results": len(box.outputs),
                    "state": state,
                    "beat": None if record is None else record.beat,
                }
            )
    finally:
        store.close()
    if lease is None:
        holder = "nobody ever took it"
    elif lease.released:
        holder = f"released by {lease.holder} at epoch {lease.epoch}"
    else:
        holder = f"{lease.holder} at epoch {lease.epoch}"
    if args.json:
        lease_view = None if lease is None else dataclasses.asdict(lease)
        write(json.dumps({"instances": rows, "lease": lease_view}, indent=2))
        return 0
    table = [
        [r["instance"], r["worker"] or "", ",".join(r["tags"]), r["capacity"], r["queued"],
         ",".join(r["running"]), r["results"], r["state"]]
        for r in rows
    ]  # fmt: skip
    write(format_table(INSTANCE_HEADERS, table))
    write(f"scheduler lease: {holder}")
    return 0
