"""``riaktq worker`` / ``riaktq scheduler``: bad arguments are refused with the problem named.

Running them is tested with real processes in tests/test_faults*.py.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest

import riaktq_py.cli.workers
from riaktq_py.cli import main
from riaktq_py.cli.signals import STOP_SIGNALS, stop_on_signals
from riaktq_py.cli.workers import INSTANCE_HEADERS, sqlite_file
from riaktq_py.errors import ConfigError
from riaktq_py.handlers import EchoHandler
from riaktq_py.store.sqlite import SqliteStore
from riaktq_py.testing import FakeClock
from riaktq_py.workers import Lease, SqliteCoordination, Worker, WorkerConfig

QUIET = "tests.test_faults_support:Quiet"
#: a structlog line in its default configuration: the set-up's own store (its checkpoint
#: thread) may print one at any moment, in the middle of a command's output
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


def command_output(capsys: pytest.CaptureFixture[str]) -> str:
    """What the command printed on stdout, without the library's log lines."""
    lines = capsys.readouterr().out.splitlines()
    return "\n".join(line for line in lines if not LOG_LINE.match(line))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_both_commands_are_registered(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    usage = capsys.readouterr().out
    assert "worker" in usage and "scheduler" in usage


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("--store", "riak://127.0.0.1:8087/t/b", "worker", "--handler", QUIET),
            "need a SQLite store file (coordination over Riak is not implemented)",
        ),
        (("--store", ":memory:", "scheduler"), "cannot share ':memory:'"),
        (("worker", "--handler", "no_such_module:x"), "cannot import 'no_such_module'"),
        (("scheduler", "--step", "nocolon"), "is not of the form module:object"),
        (("scheduler", "--step", QUIET), "needs a str 'name' and a 'run(engine)' method"),
        (("scheduler", "--step", "tests.test_faults_support:Nope"), "tick step"),
    ],
)
def test_bad_settings_fail_with_a_clear_error(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: tuple[str, ...],
    message: str,
) -> None:
    if "--store" not in argv:
        argv = ("--store", str(tmp_path / "q.db"), *argv)
    code, err = run(capsys, *argv)
    assert code == 1
    assert message in err and err.startswith("riaktq: error:")


@pytest.mark.parametrize(
    "argv",
    [
        ("worker",),  # --handler is required
        ("worker", "--handler", QUIET, "--instances", "0"),
        ("worker", "--handler", QUIET, "--grace", "-1"),
        ("scheduler", "--lease", "0"),
        ("scheduler", "--dead-after", "zero"),
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    code, err = run(capsys, *argv)
    assert code == 2 and "usage:" in err


def test_instances_lists_the_registry_and_the_lease_holder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = str(tmp_path / "q.db")
    store = SqliteStore(path)
    coordination = SqliteCoordination(store)
    worker = Worker(
        coordination, EchoHandler(), WorkerConfig(instances=2, name="w", tags=frozenset({"x"}))
    )
    worker.start(threads=False)
    try:
        assert Lease(coordination, FakeClock(), holder="sched-a").poll()
        capsys.readouterr()  # the set-up's own log lines
        assert main(["--store", path, "instances"]) == 0
        lines = command_output(capsys).splitlines()
        assert lines[0].split() == list(INSTANCE_HEADERS)
        assert [line.split()[:4] for line in lines[2:4]] == [
            ["w-1", "w", "x", "1"],
            ["w-2", "w", "x", "1"],
        ]
        assert lines[-1] == "scheduler lease: sched-a at epoch 1"
        assert main(["--store", path, "instances", "--json"]) == 0
        view = json.loads(command_output(capsys))
        assert [i["instance"] for i in view["instances"]] == ["w-1", "w-2"]
        assert (view["lease"]["holder"], view["lease"]["epoch"]) == ("sched-a", 1)
    finally:
        worker.stop()
        store.close()


def test_a_worker_that_cannot_start_closes_its_store_and_restores_the_signals(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "q.db")
    store = SqliteStore(path)
    taken = Worker(SqliteCoordination(store), EchoHandler(), WorkerConfig(name="w"))
    taken.start(threads=False)  # the names w-1... are taken: the CLI's Worker.start() raises
    closed: list[str] = []

    class Recorded(SqliteStore):
        def close(self) -> None:
            closed.append(self.path)
            super().close()

    monkeypatch.setattr(riaktq_py.cli.workers, "SqliteStore", Recorded)
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        code, err = run(capsys, "--store", path, "worker", "--handler", QUIET, "--name", "w")
        assert code == 1 and "riaktq: error:" in err
        assert closed == [path]
        assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == before
    finally:
        taken.stop()
        store.close()


def test_the_first_signal_sets_the_event_and_the_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as stop:
        assert not stop.is_set()
        signal.raise_signal(signal.SIGTERM)
        assert stop.is_set()
        signal.raise_signal(signal.SIGTERM)  # without on_second: nothing more
    assert signal.getsignal(signal.SIGTERM) is before


def test_sqlite_file_names_the_file_without_opening_it(tmp_path: Path) -> None:
    path = tmp_path / "a b.db"
    assert sqlite_file(f"sqlite://{str(path).replace(' ', '%20')}") == str(path)
    assert sqlite_file(str(path)) == str(path)
    assert not path.exists()
    with pytest.raises(ConfigError, match="give a SQLite file"):
        sqlite_file("sqlite://")
