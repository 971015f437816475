"""``riaktq update | cancel | retry | delete``: change tasks already in a store."""

from __future__ import annotations

import argparse
import datetime
import json
from collections.abc import Callable
from typing import Any

from riaktq_py.app import Riaktq
from riaktq_py.cli.common import (
    TASK_HEADERS,
    comma_list,
    format_table,
    json_value,
    store_url,
    task_dict,
    task_row,
)
from riaktq_py.errors import ConfigError
from riaktq_py.store.url import open_store
from riaktq_py.task import Task
from riaktq_py.transitions import KEEP


def aware_time(text: str) -> datetime.datetime:
    """An ISO 8601 time with a UTC offset, e.g. 2030-01-01T09:00:00+01:00."""
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a UTC offset (e.g. {text}+00:00), got {text!r}")
    return when


def register(subparsers: Any) -> None:
    updater = subparsers.add_parser("update", help="change a todo task")
    updater.add_argument("key", metavar="KEY")
    updater.add_argument("--input", type=json_value, default=KEEP, metavar="JSON")
    updater.add_argument("--priority", type=int, default=KEEP)
    updater.add_argument("--tags", type=comma_list, default=KEEP, metavar="A,B")
    updater.add_argument("--run-at", type=aware_time, default=KEEP, metavar="ISO-TIME")
    updater.add_argument("--json", action="store_true", help="print the task as JSON")
    updater.set_defaults(run=run_update)

    canceler = subparsers.add_parser("cancel", help="cancel a todo or nextup task")
    canceler.add_argument("key", metavar="KEY")
    canceler.add_argument("--reason", default="canceled")
    canceler.add_argument("--json", action="store_true", help="print the task as JSON")
    canceler.set_defaults(run=run_cancel)

    retrier = subparsers.add_parser("retry", help="run a failed or canceled task again")
    retrier.add_argument("key", metavar="KEY")
    retrier.add_argument("--retries", type=int, default=0, help="automatic restarts left")
    retrier.add_argument("--json", action="store_true", help="print the task as JSON")
    retrier.set_defaults(run=run_retry)

    deleter = subparsers.add_parser("delete", help="remove a done, failed or canceled task")
    deleter.add_argument("key", metavar="KEY")
    deleter.set_defaults(run=run_delete)


def _with_queue(args: argparse.Namespace, change: Callable[[Riaktq], Task | None]) -> Task | None:
    store = open_store(store_url(args))
    try:
        return change(Riaktq(store, interval=None, debounce=None))
    finally:
        store.close()


def _show(args: argparse.Namespace, task: Task | None) -> int:
    assert task is not None
    if args.json:
        print(json.dumps(task_dict(task), indent=2, sort_keys=True))
    else:
        print(format_table(TASK_HEADERS, [task_row(task)]))
    return 0


def run_update(args: argparse.Namespace) -> int:
    changes = {
        name: getattr(args, name)
        for name in ("input", "priority", "tags", "run_at")
        if getattr(args, name) is not KEEP
    }
    if not changes:
        raise ConfigError("update: give at least one of --input, --priority, --tags, --run-at")
    return _show(args, _with_queue(args, lambda tq: tq.update(args.key, **changes)))


def run_cancel(args: argparse.Namespace) -> int:
    return _show(args, _with_queue(args, lambda tq: tq.cancel(args.key, args.reason)))


def run_retry(args: argparse.Namespace) -> int:
    return _show(args, _with_queue(args, lambda tq: tq.retry(args.key, args.retries)))


def run_delete(args: argparse.Namespace) -> int:
    _with_queue(args, lambda tq: tq.delete(args.key))
    print(f"deleted {args.key}")
    return 0
