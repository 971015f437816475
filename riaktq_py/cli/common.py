"""What the CLI's commands share: the store URL, logging, tables, JSON and event lines."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

from riaktq_py.errors import TaskNotFound
from riaktq_py.events import TaskEvent
from riaktq_py.observer.history import attempt_summary
from riaktq_py.store.url import open_store
from riaktq_py.task import Status, Task, jsonable

DEFAULT_STORE = "riaktq.db"
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_CELL = 48


def store_url(args: argparse.Namespace) -> str:
    """The ``--store`` given, or the default file."""
    url: str | None = args.store
    return DEFAULT_STORE if url is None else url


@contextmanager
def logging_configured(level: str, stream: TextIO) -> Iterator[None]:
    """Send structlog output to ``stream`` at ``level`` and above; restore on exit.

    The library never configures structlog; only the CLI does, and only while
    a command runs (so an in-process caller keeps its own configuration).
    """
    previous = structlog.get_config()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        structlog.configure(**previous)


def json_value(text: str) -> Any:
    """argparse type: a JSON document."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"invalid JSON input {text!r}: {exc}") from None


def comma_list(text: str) -> list[str]:
    """argparse type: ``a,b,c`` (empty items refused)."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"invalid list {text!r}: empty item")
    return items


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


# -- task views -----------------------------------------------------------------------


def get_task(args: argparse.Namespace) -> Task:
    """The task ``args.key`` in the ``--store`` (opened and closed here); TaskNotFound if none."""
    store = open_store(store_url(args))
    try:
        task = store.get(args.key)
    finally:
        store.close()
    if task is None:
        raise TaskNotFound(f"no task {args.key!r} in {store_url(args)}")
    return task


def task_dict(task: Task) -> dict[str, Any]:
    """The task as JSON: its summary plus the attempt history."""
    return {**task.summary(), "history": [attempt_summary(a) for a in task.history]}


def result_text(task: Task) -> str:
    """The output of a done task, the error of a failed one, or empty."""
    if task.status is Status.FAILED:
        return task.error or ""
    if task.status is Status.DONE:
        return json.dumps(jsonable(task.output_value))
    return ""


def laf_text(laf: int | None) -> str:
    return "" if laf is None else f"{laf / 1000:.1f}ms"


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An aligned text table; numbers right-aligned, long cells cut."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [
        bool(rows) and all(isinstance(row[i], int) for row in rows) for i in range(len(headers))
    ]

    def line(row: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


TASK_HEADERS = ("key", "status", "priority", "retry", "tags", "assignee", "attempts", "result")


def task_row(task: Task) -> list[object]:
    return [
        task.key,
        task.status.value,
        task.priority,
        task.retry,
        ",".join(sorted(task.tags)),
        task.assignee or "",
        task.attempts,
        result_text(task),
    ]


def event_line(event: TaskEvent, elapsed: float) -> str:
    """One transition as a line of text, for ``demo`` and ``serve``."""
    head = f"{elapsed:8.3f}s  {event.transition:<8}  {event.key:<14}"
    task = event.task
    if task is None:
        return f"{head}  refused: {event.error}"
    detail = ""
    if event.transition == "open":
        detail = f"priority {task.priority}, retry {task.retry}, tags {sorted(task.tags)}"
    elif event.transition == "assign":
        detail = f"to {task.assignee} (attempt {task.attempts + 1})"
    elif event.transition == "close":
        detail = f"{result_text(task)}  ({laf_text(task.laf)} on {task.assignee})"
    elif event.transition == "restart":
        detail = f"priority -> {task.priority}, retry -> {task.retry}"
    elif event.transition == "rollback":
        last = task.history[-1] if task.history else None
        detail = last.error or "" if last is not None else ""
    return f"{head}  -> {task.status.value:<7} {detail}".rstrip()


def write(text: str) -> None:
    """Print to stdout and flush (event lines come from other threads as they happen)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
