"""``riaktq report | events | history``: the observer's reports, the transition log, attempts."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from riaktq_py.cli.common import (
    format_table,
    get_task,
    laf_text,
    positive_float,
    positive_int,
    store_url,
)
from riaktq_py.cli.common import write as write_line
from riaktq_py.cli.signals import stop_on_signals
from riaktq_py.clock import SystemClock
from riaktq_py.errors import ConfigError
from riaktq_py.events import TaskEvent
from riaktq_py.observer.config import observations_from_config
from riaktq_py.observer.health import ScheduleHealth, ScheduleHealthResult
from riaktq_py.observer.history import attempt_summary
from riaktq_py.observer.observer import Observation, run_now
from riaktq_py.observer.queries import (
    Query,
    QueryResult,
    ReportResult,
    StatusCounts,
    StatusCountsResult,
    WindowStats,
    WindowStatsResult,
)
from riaktq_py.observer.replay import follow_log, read_log
from riaktq_py.observer.schedule import Interval
from riaktq_py.schedules.store import ScheduleStore, schedule_store_for
from riaktq_py.store.base import Store
from riaktq_py.store.url import open_store
from riaktq_py.task import Status, jsonable


def register(subparsers: Any) -> None:
    report = subparsers.add_parser(
        "report",
        help="run report queries now and print them",
        description="Run the queries of --queries FILE, or the one query the criteria options"
        " describe, or by default the status counts and the finished-task statistics of the"
        " last --window seconds. Every match is listed unless --limit is given; the count is"
        " always exact.",
    )
    report.add_argument("--queries", metavar="FILE", type=Path, help="a JSON list of queries")
    report.add_argument("--key", default="query", help="the name of the query given by options")
    report.add_argument("--status", choices=[s.value for s in Status])
    report.add_argument("--age", type=float, metavar="S", help="created at least S seconds ago")
    report.add_argument("--tag", action="append", default=[], metavar="T", help="has tag T")
    report.add_argument("--assignee", metavar="NAME")
    report.add_argument("--priority-min", type=int, metavar="N")
    report.add_argument("--priority-max", type=int, metavar="N")
    report.add_argument("--limit", type=positive_int, help="list at most N tasks per query")
    report.add_argument(
        "--window", type=positive_float, default=86_400.0, help="seconds (default 86400)"
    )
    report.add_argument("--json", action="store_true", help="print a JSON array of results")
    report.set_defaults(run=run_report)

    events = subparsers.add_parser(
        "events",
        help="print the transition log",
        description="Print the recorded transitions after --from (each line starts with its"
        " position: resume from the last one). --follow keeps printing new ones until"
        " SIGINT or SIGTERM.",
    )
    events.add_argument("--from", dest="start", type=int, default=0, metavar="POS")
    events.add_argument("--follow", action="store_true", help="wait for new transitions")
    events.add_argument(
        "--poll", type=positive_float, default=0.5, help="seconds between reads when following"
    )
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.set_defaults(run=run_events)

    history = subparsers.add_parser("history", help="every attempt of one task")
    history.add_argument("key", metavar="KEY")
    history.add_argument("--json", action="store_true", help="print the history as JSON")
    history.set_defaults(run=run_history)


# -- report ---------------------------------------------------------------------------


ANYTIME = Interval(1)  # the report command runs everything now, whatever its schedule


def _observations(args: argparse.Namespace, store: Store) -> list[Observation]:
    if args.queries is not None:
        try:
            entries = json.loads(args.queries.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read queries from {str(args.queries)!r}: {exc}") from None
        return observations_from_config(entries)
    criteria = {
        "status": args.status,
        "age": args.age,
        "tags": frozenset(args.tag) or None,
        "assignee": args.assignee,
        "priority_min": args.priority_min,
        "priority_max": args.priority_max,
    }
    if any(v is not None for v in criteria.values()) or args.limit is not None:
        return [Observation(args.key, Query(**criteria, limit=args.limit), ANYTIME)]
    defaults = [
        Observation("status", StatusCounts(), ANYTIME),
        Observation(f"last-{args.window:g}s", WindowStats(args.window), ANYTIME),
    ]
    schedules = _schedule_store(store)
    if schedules is not None and schedules.list():
        health = ScheduleHealth(args.window, schedule_store=schedules)
        defaults.append(Observation("schedules", health, ANYTIME))
    return defaults


def _schedule_store(store: Store) -> ScheduleStore | None:
    try:
        return schedule_store_for(store)
    except ConfigError:  # a store without schedule storage
        return None


def run_report(args: argparse.Namespace) -> int:
    store = open_store(store_url(args))
    try:
        results = run_now(store, _observations(args, store), SystemClock().now_us())
    finally:
        store.close()
    if args.json:
        print(json.dumps([jsonable(r.to_dict()) for r in results], indent=2, sort_keys=True))
    else:
        print("\n\n".join(_result_text(r) for r in results))
    return 0


def _time(at: int) -> str:
    moment = dt.datetime.fromtimestamp(at / 1_000_000, dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _result_text(result: ReportResult) -> str:
    head = f"{result.key} (at {_time(result.at)})"
    if isinstance(result, StatusCountsResult):
        rows = [[s.value, result.counts.get(s, 0)] for s in Status]
        return f"{head}\n{format_table(('status', 'tasks'), rows)}"
    if isinstance(result, WindowStatsResult):
        rate = "-" if result.failure_rate is None else f"{result.failure_rate:.1%}"
        return (
            f"{head}: finished {_time(result.start)} .. {_time(result.end)}\n"
            f"done {result.done}, failed {result.failed}, failure rate {rate}\n"
            f"laf p50 {laf_text(result.laf_p50) or '-'}, p95 {laf_text(result.laf_p95) or '-'},"
            f" max {laf_text(result.laf_max) or '-'}"
        )
    if isinstance(result, ScheduleHealthResult):
        rows = [
            [
                s.name,
                s.timing,
                "paused" if s.paused else "BEHIND" if s.behind else "ok",
                s.opened,
                s.skipped,
                s.last_task or "",
                s.last_task_status or "",
            ]
            for s in result.schedules
        ]
        headers = ("schedule", "timing", "health", "opened", "skipped", "last task", "status")
        return f"{head}: since {_time(result.start)}\n{format_table(headers, rows)}"
    if isinstance(result, QueryResult):
        shown = f", {len(result.tasks)} shown" if result.truncated else ""
        lines = [f"{head}: {result.count} task(s){shown}"]
        lines += [f"  {bucket}  {key}" for bucket, key in result.tasks]
        return "\n".join(lines)
    return f"{head}\n{json.dumps(jsonable(result.to_dict()), sort_keys=True)}"


# -- events ---------------------------------------------------------------------------


def event_dict(event: TaskEvent) -> dict[str, Any]:
    task = event.task
    return {
        "position": event.position,
        "at": event.at,
        "transition": event.transition,
        "bucket": event.bucket,
        "key": event.key,
        "status": None if task is None else task.status.value,
        "assignee": None if task is None else task.assignee,
        "error": event.error,
    }


def event_text(event: TaskEvent) -> str:
    head = f"{event.position:>8}  {_time(event.at)}  {event.transition:<8}  {event.key}"
    if event.task is None:
        return f"{head}  refused: {event.error}"
    assignee = f" on {event.task.assignee}" if event.task.assignee else ""
    return f"{head}  -> {event.task.status.value}{assignee}"


def run_events(args: argparse.Namespace) -> int:
    if args.start < 0:
        raise ConfigError(f"--from must be a log position >= 0, got {args.start}")
    store = open_store(store_url(args))

    def show(event: TaskEvent) -> None:
        write_line(json.dumps(event_dict(event)) if args.json else event_text(event))

    try:
        if not args.follow:
            for event in read_log(store, args.start):
                show(event)
            return 0
        with stop_on_signals() as stop:
            for event in follow_log(store, args.start, stop, poll_interval=args.poll):
                show(event)
    finally:
        store.close()
    return 0


# -- history --------------------------------------------------------------------------


def run_history(args: argparse.Namespace) -> int:
    task = get_task(args)
    attempts = [attempt_summary(a) for a in task.history]
    if args.json:
        info = {"key": task.key, "status": task.status.value, "attempts": attempts}
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    print(f"{task.key}: {task.status.value}, {len(attempts)} attempt(s)")
    if attempts:
        rows = [
            [
                a["number"],
                a["assignee"],
                a["outcome"],
                "" if a["sat"] is None else _time(a["sat"]),
                laf_text(a["laf"]),
                a["error"] or ("" if a["out"] is None else json.dumps(a["out"])),
            ]
            for a in attempts
        ]
        print(format_table(("attempt", "assignee", "outcome", "started", "laf", "result"), rows))
    return 0
