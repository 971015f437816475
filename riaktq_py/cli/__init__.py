"""The ``riaktq`` command line.

Each command group is one module exposing ``register(subparsers)``, which adds
its sub-commands and sets ``run`` (``args -> exit code``) as their default.
To add a group, write the module and add it to :data:`COMMANDS`.

Exit codes: 0 success, 1 a :class:`~riaktq_py.errors.RiaktqError` (one line on
stderr), 2 a usage error (argparse), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from riaktq_py import __version__
from riaktq_py.cli import changes, demo, observe, schedules, serve, tasks, workers
from riaktq_py.cli.common import DEFAULT_STORE, LOG_LEVELS, logging_configured
from riaktq_py.errors import RiaktqError

#: The command modules, in the order their commands appear in ``--help``.
COMMANDS: tuple[ModuleType, ...] = (
    tasks,
    schedules,
    changes,
    observe,
    serve,
    workers,
    demo,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="riaktq",
        description="riaktq-py: a persistent, distributed task queue with a scheduler.",
    )
    parser.add_argument("--version", action="version", version=f"riaktq-py {__version__}")
    parser.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help=f"where tasks are stored: a SQLite file path or a store URL (default {DEFAULT_STORE};"
        " demo: a fresh temporary file)",
    )
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="warning",
        help="structured logs at this level and above go to stderr (default warning)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version, usage errors (2)
        return exc.code if isinstance(exc.code, int) else 2
    with logging_configured(args.log_level, sys.stderr):
        try:
            code: int = args.run(args)
        except RiaktqError as exc:
            print(f"riaktq: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("riaktq: interrupted", file=sys.stderr)
            return 130
    return code
