"""``riaktq open | get | list``: tasks in a store, as tables or ``--json``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from riaktq_py.app import Riaktq
from riaktq_py.cli.common import (
    TASK_HEADERS,
    comma_list,
    format_table,
    get_task,
    json_value,
    laf_text,
    positive_int,
    store_url,
    task_dict,
    task_row,
)
from riaktq_py.store.base import TaskQuery
from riaktq_py.store.url import open_store
from riaktq_py.task import Status, Task


def register(subparsers: Any) -> None:
    opener = subparsers.add_parser(
        "open",
        help="open (or re-open) a task",
        description="Open a task; re-opening an existing key runs it again with the new input.",
    )
    opener.add_argument("key", metavar="KEY")
    opener.add_argument(
        "input",
        metavar="INPUT-JSON",
        nargs="?",
        type=json_value,
        default=None,
        help="the task's input, as JSON (default: null)",
    )
    opener.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    opener.add_argument("--retry", type=int, default=0, help="restarts allowed (default 0)")
    opener.add_argument(
        "--tags", type=comma_list, default=[], metavar="A,B", help="tags an instance must have"
    )
    opener.add_argument(
        "--handler", metavar="NAME", help="the handler to run it (added to its tags)"
    )
    opener.add_argument("--delay", type=float, metavar="S", help="not before S seconds from now")
    opener.add_argument("--unique", metavar="U", help="no duplicate while one with U is active")
    opener.add_argument("--timeout", type=float, metavar="S", help="seconds one attempt may run")
    opener.add_argument("--json", action="store_true", help="print the task as JSON")
    opener.set_defaults(run=run_open)

    getter = subparsers.add_parser("get", help="show one task and its attempts")
    getter.add_argument("key", metavar="KEY")
    getter.add_argument("--json", action="store_true", help="print the task as JSON")
    getter.set_defaults(run=run_get)

    lister = subparsers.add_parser("list", help="list tasks, by key")
    lister.add_argument("--status", choices=[s.value for s in Status])
    lister.add_argument(
        "--tag", action="append", default=[], metavar="T", help="only tasks with this tag"
    )
    lister.add_argument("--limit", type=positive_int, default=100, help="at most N (default 100)")
    lister.add_argument("--json", action="store_true", help="print a JSON array")
    lister.set_defaults(run=run_list)


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def run_open(args: argparse.Namespace) -> int:
    store = open_store(store_url(args))
    try:
        tags = [*args.tags, *([args.handler] if args.handler else [])]
        task = Riaktq(store, interval=None, debounce=None).open(
            args.key,
            args.input,
            priority=args.priority,
            retry=args.retry,
            tags=tags,
            delay=args.delay,
            unique=args.unique,
            timeout=args.timeout,
        )
    finally:
        store.close()
    if args.json:
        _print_json(task_dict(task))
    else:
        print(format_table(TASK_HEADERS, [task_row(task)]))
    return 0


def run_get(args: argparse.Namespace) -> int:
    task = get_task(args)
    if args.json:
        _print_json(task_dict(task))
    else:
        _print_task(task)
    return 0


def _print_task(task: Task) -> None:
    info = task_dict(task)
    for field in ("key", "status", "priority", "retry", "attempts"):
        print(f"{field:<9} {info[field]}")
    print(f"{'tags':<9} {','.join(info['tags'])}")
    print(f"{'assignee':<9} {task.assignee or ''}")
    print(f"{'in':<9} {json.dumps(info['in'])}")
    print(f"{'out':<9} {json.dumps(info['out'])}")
    print(f"{'error':<9} {info['error'] or ''}")
    print(f"{'laf':<9} {laf_text(task.laf)}")
    if task.history:
        print()
        rows = [
            [a["number"], a["assignee"], a["outcome"], laf_text(a["laf"]), a["error"] or ""]
            for a in info["history"]
        ]
        print(format_table(("attempt", "assignee", "outcome", "laf", "error"), rows))


def run_list(args: argparse.Namespace) -> int:
    query = TaskQuery(
        status=Status(args.status) if args.status else None,
        tags=frozenset(args.tag) if args.tag else None,
        limit=args.limit,
    )
    store = open_store(store_url(args))
    try:
        tasks = store.find(query)
    finally:
        store.close()
    if args.json:
        _print_json([task_dict(t) for t in tasks])
    elif tasks:
        print(format_table(TASK_HEADERS, [task_row(t) for t in tasks]))
    else:
        print("no tasks", file=sys.stderr)
    return 0
