"""``riaktq serve``: a scheduler and instances from handler import paths, until a signal.

On a SQLite file, ``serve`` joins the store's coordination (see
:mod:`riaktq_py.workers._embedded`): any number of ``serve`` (and ``worker``,
``scheduler``) processes may share the file; one scheduler ticks, holding the
lease, and gives work to every process's instances. Each ``serve`` prints
every transition of the store (from its log), whichever process made it.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from riaktq_py.app import Riaktq
from riaktq_py.cli.common import (
    event_line,
    positive_float,
    positive_int,
    store_url,
    write,
)
from riaktq_py.cli.signals import stop_on_signals
from riaktq_py.events import TaskEvent
from riaktq_py.handlers import load_handler
from riaktq_py.store.url import open_store
from riaktq_py.workers import CoordinationConfig, LeaseConfig
from riaktq_py.workers._embedded import shared_file


def handler_spec(text: str) -> tuple[str, str]:
    """argparse type: ``NAME=module:object``."""
    name, sep, path = text.partition("=")
    if not sep or not name or ":" not in path:
        raise argparse.ArgumentTypeError(f"invalid handler {text!r}: expected NAME=module:object")
    return name, path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run a scheduler with instances until SIGINT/SIGTERM",
        description="Run a scheduler and, for every --handler, its instances; print each "
        "transition. Stops cleanly on SIGINT or SIGTERM.",
    )
    parser.add_argument(
        "--handler",
        dest="handlers",
        action="append",
        type=handler_spec,
        required=True,
        metavar="NAME=module:object",
        help="a handler (class, instance or function) and the name its tasks use",
    )
    parser.add_argument(
        "--instances", type=positive_int, default=1, help="instances per handler (default 1)"
    )
    parser.add_argument(
        "--capacity", type=positive_int, default=1, help="tasks each instance queues (default 1)"
    )
    parser.add_argument(
        "--interval", type=positive_float, default=1.0, help="seconds between ticks (default 1)"
    )
    parser.add_argument(
        "--lease",
        type=positive_float,
        default=5.0,
        help="scheduler lease duration in seconds, on a shared SQLite file (default 5)",
    )
    parser.add_argument(
        "--heartbeat", type=positive_float, default=1.0, help="seconds between heartbeats"
    )
    parser.add_argument(
        "--dead-after",
        type=positive_int,
        default=5,
        metavar="N",
        help="an instance is dead after N of its heartbeat intervals without one (default 5)",
    )
    parser.add_argument(
        "--grace",
        type=positive_float,
        default=10.0,
        help="seconds running tasks get to finish on SIGTERM (default 10)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    handlers = [(name, load_handler(path)) for name, path in args.handlers]
    store = open_store(store_url(args))
    try:
        coordination = CoordinationConfig(
            lease=LeaseConfig(duration=args.lease),
            heartbeat=args.heartbeat,
            dead_after=args.dead_after,
            grace=args.grace,
            report=write,
        )
        queue = Riaktq(
            store,
            interval=args.interval,
            coordinate=coordination if shared_file(store) else None,
        )
        for name, handler in handlers:
            queue.add_handler(name, handler, instances=args.instances, capacity=args.capacity)
        _serve(queue, args)
    finally:
        store.close()
    return 0


def _serve(queue: Riaktq, args: argparse.Namespace) -> None:
    started = time.monotonic()

    def show(event: object) -> None:
        if isinstance(event, TaskEvent):
            write(event_line(event, time.monotonic() - started))

    with stop_on_signals() as stop:
        with queue:
            queue.subscribe(show)
            names = ", ".join(name for name, _ in args.handlers)
            write(
                f"serving {store_url(args)}: handlers {names}, {args.instances} instance(s) "
                f"each; SIGINT or SIGTERM stops",
            )
            while not stop.wait(0.5):
                pass
        write("stopped")
