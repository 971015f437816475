"""The ``riaktq`` command line: in-process through ``main`` and as real subprocesses."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog

from riaktq_py import cli
from riaktq_py.cli import main
from riaktq_py.cli.common import format_table
from riaktq_py.cli.demo import DEMO_TASKS

ROOT = Path(__file__).resolve().parent.parent
T = 60.0


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "tasks.db")


# -- open / get / list ----------------------------------------------------------------


def test_open_get_list_round_trip_as_json(capsys: pytest.CaptureFixture[str], db: str) -> None:
    """What `open` writes to a file store, `get` and `list` read back, as JSON."""
    code, out, _ = run(
        capsys,
        "--store", db, "open", "k1", '{"n": [1, 2], "s": "x"}',
        "--priority", "7", "--retry", "2", "--tags", "a,b", "--handler", "echo", "--json",
    )  # fmt: skip
    assert code == 0
    opened = json.loads(out)
    assert opened["key"] == "k1"
    assert opened["status"] == "todo"
    assert opened["tags"] == ["a", "b", "echo"]

    code, out, _ = run(capsys, "--store", db, "get", "k1", "--json")
    assert code == 0
    got = json.loads(out)
    assert got == opened
    assert got["in"] == {"n": [1, 2], "s": "x"}
    assert (got["priority"], got["retry"], got["attempts"], got["history"]) == (7, 2, 0, [])

    assert run(capsys, "--store", db, "open", "k2", "--json")[0] == 0
    code, out, _ = run(capsys, "--store", db, "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [t["key"] for t in listed] == ["k1", "k2"]
    assert listed[0] == opened
    assert listed[1]["in"] is None and listed[1]["priority"] == 0


def test_list_filters_by_status_tag_and_limit(capsys: pytest.CaptureFixture[str], db: str) -> None:
    for key, tags in [("a", "x"), ("b", "x,y"), ("c", "y")]:
        assert run(capsys, "--store", db, "open", key, "--tags", tags)[0] == 0

    def keys(*options: str) -> list[str]:
        code, out, _ = run(capsys, "--store", db, "list", "--json", *options)
        assert code == 0
        return [t["key"] for t in json.loads(out)]

    assert keys("--tag", "x") == ["a", "b"]
    assert keys("--tag", "x", "--tag", "y") == ["b"]
    assert keys("--status", "todo", "--limit", "2") == ["a", "b"]
    assert keys("--status", "done") == []


def test_reopen_overwrites_input_and_priority(capsys: pytest.CaptureFixture[str], db: str) -> None:
    run(capsys, "--store", db, "open", "k", "1", "--priority", "1")
    run(capsys, "--store", db, "open", "k", '"two"', "--priority", "5")
    got = json.loads(run(capsys, "--store", db, "get", "k", "--json")[1])
    assert (got["in"], got["priority"]) == ("two", 5)


def test_human_output_is_an_aligned_table(capsys: pytest.CaptureFixture[str], db: str) -> None:
    run(capsys, "--store", db, "open", "short", "--priority", "3")
    run(capsys, "--store", db, "open", "a-much-longer-key", "--priority", "12", "--tags", "t")
    code, out, _ = run(capsys, "--store", db, "list")
    assert code == 0
    header, rule, *rows = out.splitlines()
    assert header.split() == [
        "key", "status", "priority", "retry", "tags", "assignee", "attempts", "result"
    ]  # fmt: skip
    assert [row.split()[0] for row in rows] == ["a-much-longer-key", "short"]
    # every column starts at the same offset in every line
    status_at = header.index("status")
    assert all(row[status_at:].startswith("todo") for row in rows)
    assert rule.startswith("-" * len("a-much-longer-key") + "  ")
    # numbers right-aligned under their header
    priority_end = header.index("priority") + len("priority")
    assert [row[:priority_end].split()[-1] for row in rows] == ["12", "3"]


def test_get_human_output_names_the_fields(capsys: pytest.CaptureFixture[str], db: str) -> None:
    run(capsys, "--store", db, "open", "k", '{"a": 1}', "--retry", "3", "--tags", "x,y")
    code, out, _ = run(capsys, "--store", db, "get", "k")
    assert code == 0
    pairs = [line.split(None, 1) for line in out.splitlines()]
    fields = {pair[0]: pair[1] for pair in pairs if len(pair) == 2}
    assert fields["status"] == "todo"
    assert fields["retry"] == "3"
    assert fields["tags"] == "x,y"
    assert fields["in"] == '{"a": 1}'


def test_format_table_cuts_long_cells() -> None:
    table = format_table(("k", "v"), [["key", "x" * 100]])
    assert table.splitlines()[2].endswith("…")
    assert len(table.splitlines()[2]) < 60


# -- bad arguments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["bogus"], 2, "invalid choice: 'bogus'"),
        ([], 2, "required: COMMAND"),
        (["open", "k", "{bad"], 2, "invalid JSON input '{bad'"),
        (["open", "k", "--priority", "high"], 2, "--priority: invalid int value: 'high'"),
        (["open", "k", "--retry", "-1"], 1, "retry must be >= 0, got -1"),
        (["open", "k", "--tags", "a,,b"], 2, "--tags: invalid list 'a,,b'"),
        (["open", "", "1"], 1, "task key must be a non-empty string"),
        (["get", "nope"], 1, "no task 'nope'"),
        (["list", "--status", "lost"], 2, "--status: invalid choice: 'lost'"),
        (["list", "--limit", "0"], 2, "--limit: must be >= 1"),
        (["serve", "--handler", "e=no_such_module:X"], 1, "cannot import 'no_such_module'"),
        (["serve", "--handler", "e=riaktq_py.handlers:Nope"], 1, "has no 'Nope'"),
        (["serve", "--handler", "e"], 2, "expected NAME=module:object"),
        (["serve"], 2, "--handler"),
        (["demo", "--timeout", "0"], 2, "--timeout: must be > 0"),
    ],
)
def test_bad_arguments_give_one_clear_error(
    capsys: pytest.CaptureFixture[str], db: str, argv: list[str], code: int, message: str
) -> None:
    got, out, err = run(capsys, "--store", db, *argv)
    assert got == code
    assert message in err
    assert "Traceback" not in err
    assert out == ""
    if code == 1:  # a RiaktqError: exactly one line
        assert err.count("\n") == 1 and err.startswith("riaktq: error: ")


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("nosuch://x", "unknown scheme 'nosuch'"),
        ("riak://", "riak URL has no host:port"),
        ("/no/such/dir/tasks.db", "cannot open"),
    ],
)
def test_bad_store_is_an_error_naming_it(
    capsys: pytest.CaptureFixture[str], store: str, message: str
) -> None:
    code, out, err = run(capsys, "--store", store, "list")
    assert (code, out) == (1, "")
    assert message in err and "Traceback" not in err


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("open", "get", "list", "serve", "demo"):
        assert command in out


# -- registry and logging -------------------------------------------------------------


def test_a_command_group_is_one_module_in_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding a module with ``register(subparsers)`` to COMMANDS adds its commands."""

    def register(subparsers: Any) -> None:
        parser = subparsers.add_parser("ping")
        parser.add_argument("word")
        parser.set_defaults(run=lambda args: print(f"pong {args.word}") or 3)

    monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, SimpleNamespace(register=register)))
    assert run(capsys, "ping", "hi")[:2] == (3, "pong hi\n")
    assert all(callable(getattr(module, "register", None)) for module in cli.COMMANDS)


def test_logs_go_to_stderr_at_the_chosen_level_and_config_is_restored(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    before = structlog.get_config()
    code, out, err = run(capsys, "--store", db, "open", "quiet")
    assert code == 0 and err == ""  # the open transition logs at info: hidden by default
    code, out, err = run(capsys, "--store", db, "--log-level", "info", "open", "loud")
    assert code == 0
    assert re.search(r"\[info\s*\] open .*key=loud", err)
    assert "loud" in out and "key=loud" not in out
    assert structlog.get_config() == before


# -- demo ------------------------------------------------------------------------------


def _summary(out: str) -> dict[str, list[str]]:
    lines = out.split("summary (", 1)[1].splitlines()
    header = lines[1].split()
    assert header == [
        "key", "status", "priority", "retry", "attempts", "assignee", "output/error", "laf"
    ]  # fmt: skip
    rows: dict[str, list[str]] = {}
    for line in lines[3:]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells
    return rows


def _check_demo_output(out: str) -> None:
    for transition in ("open", "assign", "close", "restart"):
        assert re.search(rf"s  {transition}\s+\S+\s+-> ", out), transition
    rows = _summary(out)
    assert set(rows) == {key for key, *_ in DEMO_TASKS}
    for key, (_, status, _priority, retry, *_rest) in rows.items():
        assert status == "done" or (status == "failed" and retry == "0"), key
    # retried once at lower priority, then done; the failed attempt kept in its history
    assert rows["charge-card"][1:6] == ["done", "5", "1", "2", "flaky-1"]
    assert re.search(r"close\s+charge-card\s+-> failed\s+RuntimeError: attempt 1 failed", out)
    assert re.search(r"restart\s+charge-card\s+-> todo\s+priority -> 5, retry -> 1", out)
    history = out.split("attempt history of charge-card", 1)[1].splitlines()
    assert history[3].split()[:3] == ["1", "flaky-1", "failed"]
    assert history[4].split()[:3] == ["2", "flaky-1", "done"]
    # out of retries: final failed
    assert rows["doomed"][1:6] == ["failed", "2", "0", "2", "flaky-1"]
    # the tagged task went to the tagged instance; untagged echo tasks to echo instances
    assert rows["render-scene"][5] == "render-1"
    assert all(rows[k][5].startswith("echo-") for k in ("thumb-low", "thumb-high", "backup"))


def test_demo_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "demo")
    assert code == 0, err
    _check_demo_output(out)
    assert "rollback" not in out  # nothing lost, nothing run twice


def test_demo_gives_up_at_its_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo never hangs: past ``--timeout`` it names what is not final and exits 1."""
    # its debounce is 50 ms, so no task can be final within 1 ms
    code, _out, err = run(capsys, "demo", "--timeout", "0.001")
    assert code == 1
    assert "demo timed out after 0.001 s; not final: " in err
    assert "charge-card" in err


def test_demo_on_a_given_store_keeps_the_tasks(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    assert run(capsys, "--store", db, "demo")[0] == 0
    listed = json.loads(run(capsys, "--store", db, "list", "--json")[1])
    assert {t["key"] for t in listed} == {key for key, *_ in DEMO_TASKS}
    charge = next(t for t in listed if t["key"] == "charge-card")
    assert [a["outcome"] for a in charge["history"]] == ["failed", "done"]
    assert charge["history"][0]["error"] == "RuntimeError: attempt 1 failed on purpose"


def test_demo_as_a_subprocess() -> None:
    """``python -m riaktq_py demo``: the README's main job, in a few seconds."""
    done = subprocess.run(
        [sys.executable, "-m", "riaktq_py", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=T,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    _check_demo_output(done.stdout)


# -- serve -----------------------------------------------------------------------------


class Lines:
    """A subprocess's stdout, line by line, with a timeout on each wait."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=self._read, args=(stdout,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = T) -> str:
        while True:
            line = self._queue.get(timeout=timeout)
            if line is None:
                raise AssertionError(f"output ended before {pattern!r}; saw {self.seen}")
            self.seen.append(line)
            if re.search(pattern, line):
                return line


@pytest.fixture
def serve(db: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "riaktq_py", "--store", db, "serve",
            "--handler", "echo=riaktq_py.handlers:EchoHandler",
            "--instances", "2", "--interval", "0.1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=T)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_runs_tasks_until_a_signal_then_stops_cleanly(
    capsys: pytest.CaptureFixture[str],
    db: str,
    serve: subprocess.Popen[str],
    signum: signal.Signals,
) -> None:
    """Tasks opened before and while ``serve`` runs (from another process) get done."""
    assert run(capsys, "--store", db, "open", "before", '{"x": 1}', "--handler", "echo")[0] == 0
    lines = Lines(serve)
    lines.wait_for(r"^serving .*handlers echo")
    lines.wait_for(r"close\s+before\s+-> done")
    assert run(capsys, "--store", db, "open", "during", "[2]", "--handler", "echo")[0] == 0
    lines.wait_for(r"close\s+during\s+-> done")
    serve.send_signal(signum)
    lines.wait_for(r"^stopped$")
    assert serve.wait(timeout=T) == 0
    assert serve.stderr is not None
    assert "Traceback" not in serve.stderr.read()
    got = {
        key: json.loads(run(capsys, "--store", db, "get", key, "--json")[1])
        for key in ("before", "during")
    }
    assert got["before"]["status"] == "done" and got["before"]["out"] == {"x": 1}
    assert got["during"]["status"] == "done" and got["during"]["out"] == [2]
    assert got["during"]["assignee"] in {"echo-1", "echo-2"}
