"""``riaktq schedule add|get|list|update|pause|resume|delete|occurrences``.

Schedules live in the store (SQLite tables); a running ``riaktq serve`` (or
any started Riaktq on the same store) opens their occurrences. The handler is
stored by name: this command does not need it registered.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from riaktq_py.cli.common import comma_list, format_table, json_value, positive_int, store_url
from riaktq_py.clock import SystemClock
from riaktq_py.schedules.api import Schedules
from riaktq_py.schedules.model import (
    Misfire,
    Overlap,
    RecurringSchedule,
    ScheduleNotFound,
    iso_utc,
)
from riaktq_py.schedules.occurrences import times
from riaktq_py.schedules.store import schedule_store_for
from riaktq_py.store.url import open_store

#: how far ahead ``get`` looks for the next occurrence
_HORIZON_US = 400 * 24 * 3600 * 1_000_000


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schedule",
        help="recurring schedules: add, get, list, update, pause, resume, delete, occurrences",
        description="Manage recurring schedules (cron in a timezone, or a fixed interval).",
    )
    actions = parser.add_subparsers(dest="schedule_action", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="store a new schedule")
    add.add_argument("name", metavar="NAME")
    _definition_options(add, creating=True)
    _action(add, run_add)

    get = actions.add_parser("get", help="show one schedule and its next occurrence")
    get.add_argument("name", metavar="NAME")
    _action(get, run_get)

    lister = actions.add_parser("list", help="list every schedule")
    _action(lister, run_list)

    update = actions.add_parser(
        "update", help="change settings (a new --cron/--interval applies from now)"
    )
    update.add_argument("name", metavar="NAME")
    _definition_options(update, creating=False)
    _action(update, run_update)

    for verb, text in (
        ("pause", "stop opening its occurrences (they are recorded as skipped)"),
        ("resume", "open its occurrences again, from now on"),
        ("delete", "remove it and its occurrence records (its tasks stay)"),
    ):
        sub = actions.add_parser(verb, help=text)
        sub.add_argument("name", metavar="NAME")
        _action(sub, run_simple)

    occurrences = actions.add_parser(
        "occurrences", help="what happened to each occurrence (opened, or skipped and why)"
    )
    occurrences.add_argument("name", metavar="NAME")
    occurrences.add_argument(
        "--limit", type=positive_int, default=100, help="the last N records (default 100)"
    )
    occurrences.add_argument(
        "--audit",
        action="store_true",
        help="check that every occurrence due since the timing started was handled",
    )
    _action(occurrences, run_occurrences)


def _action(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int]) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(run=run)


def _definition_options(parser: argparse.ArgumentParser, *, creating: bool) -> None:
    timing = parser.add_mutually_exclusive_group(required=creating)
    timing.add_argument("--cron", metavar="EXPR", help="5-field cron expression, e.g. '0 9 * * *'")
    timing.add_argument("--interval", type=positive_int, metavar="SECONDS", help="fixed interval")
    parser.add_argument("--timezone", metavar="TZ", help="IANA timezone of --cron (default UTC)")
    parser.add_argument("--handler", metavar="NAME", help="the handler that runs its tasks")
    parser.add_argument("--tags", type=comma_list, metavar="A,B", help="tags of its tasks")
    parser.add_argument(
        "--input", type=json_value, metavar="JSON", help="each task's input (default null)"
    )
    parser.add_argument("--priority", type=int, help="priority of its tasks (default 0)")
    parser.add_argument("--retry", type=int, help="retries of its tasks (default 0)")
    parser.add_argument(
        "--misfire", choices=[m.value for m in Misfire], help="missed occurrences (default skip)"
    )
    parser.add_argument(
        "--catchup", type=positive_int, metavar="SECONDS", help="catch-up window of --misfire all"
    )
    parser.add_argument(
        "--overlap", choices=[o.value for o in Overlap], help="while the previous runs"
    )
    if creating:
        parser.add_argument("--paused", action="store_true", help="create it paused")


_OPTIONS = (
    "cron", "interval", "timezone", "handler", "tags", "input", "priority", "retry", "misfire",
    "catchup", "overlap",
)  # fmt: skip


def _given(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in _OPTIONS if getattr(args, name) is not None}


@contextmanager
def _schedules(args: argparse.Namespace) -> Iterator[Schedules]:
    store = open_store(store_url(args))
    try:
        yield Schedules(schedule_store_for(store), SystemClock())
    finally:
        store.close()


def _time(time_us: int | None) -> str:
    return "" if time_us is None else iso_utc(time_us)


def _next_due(schedule: RecurringSchedule, now_us: int) -> int | None:
    after = max(schedule.cursor, now_us)
    found = times(schedule, after, after + _HORIZON_US, 1)
    return found[0] if found else None


def _schedule_json(schedule: RecurringSchedule, now_us: int) -> dict[str, Any]:
    view = schedule.summary()
    view["next_due"] = None if schedule.paused else _next_due(schedule, now_us)
    return view


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _show(schedule: RecurringSchedule, args: argparse.Namespace, now_us: int) -> None:
    if args.json:
        _print_json(_schedule_json(schedule, now_us))
        return
    view = _schedule_json(schedule, now_us)
    rows = [
        ("name", schedule.name),
        ("timing", schedule.timing),
        ("handler", schedule.handler or ""),
        ("tags", ",".join(sorted(schedule.tags))),
        ("input", json.dumps(view["input"])),
        ("priority", schedule.priority),
        ("retry", schedule.retry),
        (
            "misfire",
            schedule.misfire.value + (f" ({schedule.catchup} s)" if schedule.catchup else ""),
        ),
        ("overlap", schedule.overlap.value),
        ("paused", "yes" if schedule.paused else "no"),
        ("last due", _time(schedule.last_due)),
        ("last task", schedule.last_task or ""),
        ("next due", _time(view["next_due"])),
    ]
    for label, value in rows:
        print(f"{label:<10} {value}")


def run_add(args: argparse.Namespace) -> int:
    with _schedules(args) as schedules:
        schedule = schedules.add(args.name, paused=args.paused, **_given(args))
        _show(schedule, args, schedules.clock.now_us())
    return 0


def run_get(args: argparse.Namespace) -> int:
    with _schedules(args) as schedules:
        _show(schedules.get(args.name), args, schedules.clock.now_us())
    return 0


def run_update(args: argparse.Namespace) -> int:
    with _schedules(args) as schedules:
        _show(schedules.update(args.name, **_given(args)), args, schedules.clock.now_us())
    return 0


def run_simple(args: argparse.Namespace) -> int:
    with _schedules(args) as schedules:
        if args.schedule_action == "delete":
            if not schedules.delete(args.name):
                raise ScheduleNotFound(f"no schedule {args.name!r}")
            if args.json:
                _print_json({"deleted": args.name})
            else:
                print(f"deleted schedule {args.name!r}")
            return 0
        act = schedules.pause if args.schedule_action == "pause" else schedules.resume
        _show(act(args.name), args, schedules.clock.now_us())
    return 0


def run_list(args: argparse.Namespace) -> int:
    with _schedules(args) as schedules:
        now = schedules.clock.now_us()
        found = schedules.list()
        if args.json:
            _print_json([_schedule_json(s, now) for s in found])
        elif found:
            headers = ("name", "timing", "route", "paused", "last due", "next due")
            rows = [
                [
                    s.name,
                    s.timing,
                    ",".join(sorted(s.task_tags)),
                    "yes" if s.paused else "",
                    _time(s.last_due),
                    "" if s.paused else _time(_next_due(s, now)),
                ]
                for s in found
            ]
            print(format_table(headers, rows))
        else:
            print("no schedules", file=sys.stderr)
    return 0


def run_occurrences(args: argparse.Namespace) -> int:
    with _schedules(args) as schedules:
        records = schedules.newest(args.name, args.limit)
        audit = schedules.audit(args.name) if args.audit else None
    if args.json:
        value: dict[str, Any] = {"occurrences": [r.summary() for r in records]}
        if audit is not None:
            value["audit"] = audit.summary()
        _print_json(value)
        return 0
    headers = ("due", "until", "count", "outcome", "reason", "task")
    rows = [
        [
            _time(r.due),
            "" if r.until == r.due else _time(r.until),
            "?" if r.count is None else r.count,
            r.outcome.value,
            r.reason,
            r.task_key or "",
        ]
        for r in records
    ]
    if rows:
        print(format_table(headers, rows))
    else:
        print("no occurrences recorded", file=sys.stderr)
    if audit is not None:
        missing = ", ".join(_time(t) for t in audit.unrecorded)
        print(
            f"audit: {audit.expected} due since {_time(audit.since)}: {audit.opened} opened,"
            f" {audit.skipped} skipped, {audit.unrecorded_count} not handled"
            + (f" ({missing})" if missing else "")
        )
    return 0
